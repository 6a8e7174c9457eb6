"""harness/gha/runner.py: LocalRunner runs a workflow's jobs as GitHub's runner would: in the
order of their needs, with step outputs, continue-on-error, the status functions, job outputs,
and the event payload GitHub sends; an action it does not know fails the step."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.gha.job import JobResult, StepFailed
from harness.gha.runner import LocalRunner

# Step outputs, continue-on-error, failure() and always(), job outputs through needs, and a
# summary job that sees every other job's result (needs.*.result).
STEPS_AND_NEEDS = textwrap.dedent(
    """\
    on: push
    jobs:
      first:
        runs-on: ubuntu-latest
        outputs:
          ready: ${{ steps.check.outputs.ready }}
        steps:
          - id: check
            run: echo "ready=YES" >> "$GITHUB_OUTPUT"
          - id: flaky
            run: exit 3
            continue-on-error: true
          - name: After a tolerated failure
            if: steps.flaky.outcome == 'failure' && steps.check.outputs.ready == 'yes'
            run: echo tolerated
          - name: Only on failure
            if: failure()
            run: echo never
      second:
        needs: first
        if: needs.first.outputs.ready == 'yes'
        runs-on: ubuntu-latest
        steps:
          - run: echo "$READY"
            env:
              READY: ${{ format('ready={0}', needs.first.outputs.ready) }}
      skipped:
        needs: first
        if: needs.first.outputs.ready == 'no'
        runs-on: ubuntu-latest
        steps:
          - run: exit 1
      summary:
        needs: [first, second, skipped]
        if: always()
        runs-on: ubuntu-latest
        steps:
          - name: Every job passed or was skipped
            if: contains(needs.*.result, 'failure') || contains(needs.*.result, 'cancelled')
            run: exit 1
    """
)


def test_runner_steps_and_needs(tmp_path: Path) -> None:
    workflow = tmp_path / "workflow.yml"
    workflow.write_text(STEPS_AND_NEEDS)
    runner = LocalRunner(tmp_path, tmp_path / "work", base_env={"PATH": "/usr/bin:/bin"}, github={})
    results = runner.run(workflow)
    assert {job: result.result for job, result in results.items()} == {
        "first": "success",
        "second": "success",
        "skipped": "skipped",
        "summary": "success",
    }
    first = results["first"]
    assert first.outputs == {"ready": "YES"}
    assert [step.conclusion for step in first.steps] == ["success", "success", "success", "skipped"]
    assert first.steps[1].outcome == "failure"  # tolerated: its conclusion is success
    assert "ready=YES" in results["second"].steps[0].output
    assert results["summary"].steps[0].conclusion == "skipped"


def test_runner_status_functions_in_a_jobs_if(tmp_path: Path) -> None:
    # In a job's `if:`, success() needs every needed job to have succeeded, and failure() is
    # true when any ancestor failed; the job's own steps start with a clean slate.
    workflow = tmp_path / "workflow.yml"
    workflow.write_text(
        textwrap.dedent(
            """\
            on: push
            jobs:
              broken:
                runs-on: ubuntu-latest
                steps: [{run: exit 1}]
              after:
                needs: broken
                runs-on: ubuntu-latest
                steps: [{run: exit 0}]
              report:
                needs: after
                if: failure()
                runs-on: ubuntu-latest
                steps: [{run: echo reported}]
              tidy:
                needs: after
                runs-on: ubuntu-latest
                steps: [{run: exit 0}]
            """
        )
    )
    runner = LocalRunner(tmp_path, tmp_path / "work", base_env={"PATH": "/usr/bin:/bin"}, github={})
    done = {"broken": JobResult("broken", "failure"), "after": JobResult("after", "skipped")}
    results = runner.run(workflow, ["report", "tidy"], done)
    assert results["report"].result == "success"
    assert results["report"].steps[0].conclusion == "success"
    assert results["tidy"].result == "skipped"


def test_the_runner_refuses_a_payload_github_never_sends(tmp_path: Path) -> None:
    """A schedule's payload with a repository in it would hide a workflow reading one."""
    wrong = {"event_name": "schedule", "event": {"repository": {"default_branch": "main"}}}
    with pytest.raises(ValueError, match="has no \\['repository'\\] on GitHub"):
        LocalRunner(tmp_path, tmp_path / "work", base_env={}, github=wrong)
    # Without a payload, the runner gives the event's own.
    runner = LocalRunner(
        tmp_path, tmp_path / "work", base_env={}, github={"event_name": "schedule"}
    )
    assert set(runner.github["event"]) == {"schedule", "workflow"}


def test_an_action_without_a_local_mapping_fails_its_step(tmp_path: Path) -> None:
    """A workflow is never green here because a step was silently skipped."""
    workflow = tmp_path / "workflow.yml"
    workflow.write_text(
        "on: push\njobs:\n  only:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: octo/unknown-action@0123456789abcdef0123456789abcdef01234567\n"
    )
    runner = LocalRunner(tmp_path, tmp_path / "work", base_env={"PATH": "/usr/bin:/bin"}, github={})
    with pytest.raises(StepFailed, match=r"no local mapping for action 'octo/unknown-action'"):
        runner.run(workflow)


def test_an_expression_inside_run_fails_its_step(tmp_path: Path) -> None:
    """`${{ }}` in a script is an injection risk: the runner refuses it, as zizmor does."""
    workflow = tmp_path / "workflow.yml"
    workflow.write_text(
        "on: push\njobs:\n  only:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.ref }}\n"
    )
    runner = LocalRunner(tmp_path, tmp_path / "work", base_env={"PATH": "/usr/bin:/bin"}, github={})
    with pytest.raises(StepFailed, match="an expression inside `run:`; pass it through env"):
        runner.run(workflow)
