"""Unit tests of harness/gha.py, the local runner of workflow steps: its `${{ }}` expressions and
contexts give GitHub's documented results ("Evaluate expressions in workflows and actions" on
docs.github.com, and GitHub's own expression test data in actions/languageservices), first for
what the generated workflows (template/.github/workflows/) use, then for the rest of the language.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.gha import (
    EVENT_KEYS,
    Event,
    ExpressionError,
    GitHubRepo,
    JobResult,
    LocalRunner,
    StepFailed,
    cancelled_runs,
    condition,
    evaluate,
    filter_matches,
    github_context,
    hash_files,
    interpolate,
    triggered,
)

CONTEXT: dict[str, Any] = {
    "github": {
        "repository": "octo/churn",
        "ref": "refs/tags/v1.2.0",
        "ref_name": "v1.2.0",
        "sha": "0123abcd",
        "run_id": 7,
        "event_name": "push",
        "event": {
            "repository": {"default_branch": "main"},
            "issue": {"labels": [{"name": "bug"}, {"name": "help wanted"}]},
        },
    },
    "vars": {"AWS_ROLE_ARN": "arn:aws:iam::1:role/ci", "RETRAIN_ON_DRIFT": "false"},
    "inputs": {"current": ""},
    "env": {"DVC_PULL": "true"},
    "steps": {
        "data": {"outputs": {"available": "true"}, "outcome": "success"},
        "verdict": {"outputs": {"drift": "false"}, "outcome": "success"},
    },
    "needs": {
        "pipeline": {"result": "success", "outputs": {"trained": "true"}},
        "drift": {"result": "failure", "outputs": {"drift": "true"}},
    },
}


def _kind(value: Any) -> tuple[str, Any]:
    """A value with its GitHub type, so that True and 1, or 2 and 2.0, compare as GitHub's do."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", [_kind(v) for v in value])
    return ("object", {k: _kind(v) for k, v in value.items()})


# What template/.github/workflows/ use (grep '${{' and 'if:'), as the generated workflows run them.
TEMPLATE_EXPRESSIONS = [
    ("steps.data.outputs.available == 'true'", True),
    ("env.DVC_PULL == 'true'", True),
    ("needs.pipeline.outputs.trained == 'true'", True),
    ("needs.drift.outputs.drift == 'true' && vars.RETRAIN_ON_DRIFT != 'false'", False),
    ("needs.drift.outputs.drift == 'true' && vars.NOT_SET != 'false'", True),
    ("vars.AWS_ROLE_ARN != ''", True),
    ("vars.GCP_WORKLOAD_IDENTITY_PROVIDER != ''", False),  # unset: null, which equals ''
    ("vars.AWS_REGION || 'us-east-1'", "us-east-1"),
    ("inputs.current || 'data/current/customers.csv'", "data/current/customers.csv"),
    ("github.event.repository.default_branch", "main"),
    ("github.ref_name", "v1.2.0"),
    ("steps.verdict.outputs.drift", "false"),
    ("steps.no_such_step.outputs.drift", None),
    ("github.run_id", 7),
]

# The rest of the language, each with the result GitHub documents.
LANGUAGE = [
    # literals
    ("null", None),
    ("true", True),
    ("false", False),
    ("711", 711),
    ("-9.2", -9.2),
    ("0xff", 255),
    ("-2.99e-2", -0.0299),
    ("'It''s open source!'", "It's open source!"),
    # ! and what is falsy: false, 0, -0, '', null; everything else is truthy
    ("!false", True),
    ("!0", True),
    ("!-0", True),
    ("!''", True),
    ("!null", True),
    ("!'false'", False),
    ("!'0'", False),
    ("!fromJSON('[]')", False),
    ("!fromJSON('{}')", False),
    # && and || give an operand, not a boolean; && binds tighter than ||
    ("1 == 1 && 2", 2),
    ("'a' == 'a' && 'b'", "b"),
    ("false || ''", ""),
    ("0 || 0 || 2 || 3", 2),
    ("false || null", None),
    ("false && 0 || null", None),
    ("1 || 2 && 3", 1),
    ("(1 || 2) && 3", 3),
    # precedence: ! before comparisons, comparisons before ==, each left to right
    ("!2 < 3", True),
    ("!(2 < 3)", False),
    ("3 < 2 < 1", True),
    ("2 > 2 > 0", False),
    ("2 <= 3 == true", True),
    ("2 == 2 == 1", True),
    ("2 == (2 == 1)", False),
    # loose equality: strings ignore case; different types compare as numbers
    ("'ABC' == 'abc'", True),
    ("'ü' == 'Ü'", True),
    ("'abc' != 'ABC'", False),
    ("'abc' < 'ABD'", True),
    ("'a' < '['", True),  # compared in upper case: 'A' < '['
    ("null == 0", True),
    ("null == ''", True),
    ("'' == 0", True),
    ("true == 1", True),
    ("false == 0", True),
    ("'1' == 1", True),
    ("' 0xff ' == 255", True),
    ("'true' == true", False),  # 'true' is not a number: NaN
    ("'abc' == 0", False),
    ("'abc' < 1 || 'abc' >= 1", False),  # NaN compares false with everything
    ("fromJSON('[]') == fromJSON('[]')", False),  # arrays and objects: the same instance only
    ("github.event == github.event", True),
    ("1 < 2", True),
    ("false < true", True),
    # property access: case-insensitive, null when missing, index, object filters
    ("github.EVENT.Repository.DEFAULT_BRANCH", "main"),
    ("github['ref_name']", "v1.2.0"),
    ("github.event.issue.labels[1].name", "help wanted"),
    ("github.event.issue.labels.*.name", ["bug", "help wanted"]),
    ("needs.*.result", ["success", "failure"]),
    ("github.event.no.such.thing", None),
    ('fromJSON(\'{"one": "one val"}\').one', "one val"),
    # contains: an element of an array, or a substring of a string; case-insensitive
    ("contains('Hello world', 'llo')", True),
    ("contains('Hello world', 'LLO')", True),
    ("contains(github.event.issue.labels.*.name, 'BUG')", True),
    ("contains(github.event.issue.labels.*.name, 'help')", False),
    ('contains(fromJSON(\'["push", "pull_request"]\'), github.event_name)', True),
    ("contains(needs.*.result, 'failure')", True),
    ("contains(true, 'ru')", True),  # values cast to strings
    # startsWith, endsWith: case-insensitive, values cast to strings
    ("startsWith('Hello world', 'he')", True),
    ("startsWith(github.ref, 'refs/tags/')", True),
    ("endsWith('Hello world', 'LD')", True),
    ("endsWith(github.run_id, '7')", True),
    # format: {N}, braces escaped by doubling, values cast to strings
    ("format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat')", "Hello Mona the Octocat"),
    ("format('{{Hello {0} {1} {2}!}}', 'Mona', 'the', 'Octocat')", "{Hello Mona the Octocat!}"),
    ("format('{0}{0}', 'ab')", "abab"),
    ("format('[{0}|{1}|{2}|{3}|{4}]', null, true, 2.0, 0.5, 1.2e2)", "[|true|2|0.5|120]"),
    # join: the default separator is ','
    ("join(github.event.issue.labels.*.name, ', ')", "bug, help wanted"),
    ("join(fromJSON('[1, true, \"a\"]'))", "1,true,a"),
    ("join('abc')", "abc"),
    # toJSON: pretty-printed; fromJSON: any JSON value
    ("toJSON(fromJSON('[1, 2]'))", "[\n  1,\n  2\n]"),
    ("toJSON(needs.pipeline.outputs)", '{\n  "trained": "true"\n}'),
    ("toJSON('abc')", '"abc"'),
    ("toJSON(null)", "null"),
    ("toJSON(true)", "true"),
    ("fromJSON('true')", True),
    ("fromJSON('null')", None),
    ("fromJSON(' 3 ') == 3", True),
    ("fromJSON('{\"a\": [1]}')", {"a": [1]}),
    # function names are case-insensitive
    ("fromjson('1')", 1),
    ("CONTAINS('abc', 'B')", True),
]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [pytest.param(e, r, id=e) for e, r in TEMPLATE_EXPRESSIONS + LANGUAGE],
)
def test_expression(expression: str, expected: Any) -> None:
    assert _kind(evaluate(expression, CONTEXT)) == _kind(expected)


@pytest.mark.parametrize(
    "expression",
    [
        "\"double quotes\" == 'x'",  # strings take single quotes only
        "format('{0}')",  # a placeholder without a value
        "format('{0', 'x')",  # an unclosed brace
        "format('}', 'x')",
        "no_such_context.x",
        "no_such_function()",
        "1 +",
        "(true",
        "fromJSON('{not json')",
    ],
)
def test_invalid_expressions_are_errors(expression: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(expression, CONTEXT)


def test_interpolation_makes_strings() -> None:
    text = "${{ github.repository }}:${{ github.ref_name }}-${{ github.run_id }}"
    assert interpolate(text, CONTEXT) == "octo/churn:v1.2.0-7"
    assert interpolate("[${{ null }}|${{ true }}|${{ 1.50 }}|${{ 0xff }}]", CONTEXT) == (
        "[|true|1.5|255]"
    )
    assert interpolate("no expression", CONTEXT) == "no expression"
    assert interpolate(5, CONTEXT) == 5  # not a string: as it is


def _status(failed: bool) -> dict[str, Any]:
    return {
        "success": lambda: not failed,
        "failure": lambda: failed,
        "always": lambda: True,
        "cancelled": lambda: False,
    }


@pytest.mark.parametrize(
    ("text", "after_success", "after_failure"),
    [
        (None, True, False),  # no `if:` is success()
        ("always()", True, True),
        ("${{ always() }}", True, True),
        ("failure()", False, True),
        ("${{ ALWAYS() }}", True, True),
        ("!cancelled()", True, True),
        # without a status function, `success() && (...)` is implied
        ("steps.data.outputs.available == 'true'", True, False),
        ("${{ steps.data.outputs.available == 'true' }}", True, False),
        ("failure() && steps.data.outputs.available == 'true'", False, True),
        ("'false'", True, False),  # a non-empty string is true, whatever it says
        ("vars.NOT_SET", False, False),
        ("needs.pipeline.outputs.trained == 'TRUE'", True, False),
        (True, True, True),
        (False, False, False),
    ],
)
def test_if_conditions(text: Any, after_success: bool, after_failure: bool) -> None:
    assert condition(text, CONTEXT, _status(failed=False)) is after_success
    assert condition(text, CONTEXT, _status(failed=True)) is after_failure


def test_hash_files(tmp_path: Path) -> None:
    (tmp_path / "dvc.lock").write_text("stages: {}\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.csv.dvc").write_text("outs: []\n")
    (tmp_path / "data" / "skip.dvc").write_text("outs: [1]\n")
    assert hash_files(tmp_path, "no-such-file") == ""
    single = hash_files(tmp_path, "dvc.lock")
    per_file = hashlib.sha256(b"stages: {}\n").digest()
    assert single == hashlib.sha256(per_file).hexdigest()  # a SHA-256 of the files' SHA-256s
    both = hash_files(tmp_path, "dvc.lock", "**/*.dvc")
    assert both not in {"", single}
    assert hash_files(tmp_path, "dvc.lock", "**/*.dvc", "!data/skip.dvc") not in {"", both}
    (tmp_path / "data" / "raw.csv.dvc").write_text("outs: [2]\n")
    assert hash_files(tmp_path, "dvc.lock", "**/*.dvc") != both
    expression = "hashFiles('dvc.lock') != '' && hashFiles('nothing') == ''"
    assert evaluate(expression, {}, {"hashFiles": lambda *p: hash_files(tmp_path, *p)}) is True


def test_runner_steps_and_needs(tmp_path: Path) -> None:
    # Step outputs, continue-on-error, failure() and always(), job outputs through needs, and
    # a summary job that sees every other job's result (needs.*.result).
    workflow = tmp_path / "workflow.yml"
    workflow.write_text(
        textwrap.dedent(
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
    )
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


# --- filter patterns and event payloads ----------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "name", "selected"),
    [
        # The examples of GitHub's "Filter pattern cheat sheet".
        (["feature/*"], "feature/my-branch", True),
        (["feature/*"], "feature/your-branch/x", False),
        (["feature/**"], "feature/beta-a/my-branch", True),
        (["main", "releases/mona-the-octocat"], "releases/mona-the-octocat", True),
        (["*"], "releases", True),
        (["*"], "releases/v1", False),
        (["**"], "releases/10", True),
        (["*feature"], "mona-feature", True),
        (["v2*"], "v2.0.0", True),
        (["v[12].[0-9]+.[0-9]+"], "v1.10.1", True),
        (["v[12].[0-9]+.[0-9]+"], "v3.0.0", False),
        (["[CB]at"], "Bat", True),
        (["[1-2]00"], "200", True),
        (["Octoc?t"], "Octot", True),  # ? : zero or one of the preceding character
        (["Octoc?t"], "Octoct", True),
        (["Octoc?t"], "Octocct", False),
        (["releases/**", "!releases/**-alpha"], "releases/beta/3-alpha", False),
        (["releases/**", "!releases/**-alpha"], "releases/beta/3", True),
        # The last matching pattern decides: a positive one after a negative one includes again.
        (["*", "!v*", "v1*"], "v1.0", True),
        (["*", "!v*", "v1*"], "v2.0", False),
        # `!` is special only at the start; `#` is an ordinary character.
        (["a!b"], "a!b", True),
        (["*#*", "!*!#*"], "model#prod!#2", False),
        (["*#*", "!*!#*"], "model#prod#2", True),
        ([r"v1\.0\+"], "v1.0+", True),
        ([r"v1\.0\+"], "v1.00", False),
    ],
)
def test_filter_patterns(patterns: list[str], name: str, selected: bool) -> None:
    assert filter_matches(patterns, name) is selected


def test_event_payloads_are_shaped_per_event() -> None:
    schedule = github_context("schedule", repository="octo/churn", default_branch="trunk")
    assert schedule["ref"] == "refs/heads/trunk" and schedule["ref_name"] == "trunk"
    assert evaluate("github.event.repository.default_branch", {"github": schedule}) is None
    assert evaluate("github.event.schedule", {"github": schedule})
    for event in ("push", "pull_request", "workflow_dispatch", "repository_dispatch"):
        github = github_context(event, repository="octo/churn", default_branch="trunk")
        assert set(github["event"]) <= EVENT_KEYS[event], event
        assert evaluate("github.event.repository.default_branch", {"github": github}) == "trunk"
    dispatch = github_context("workflow_dispatch", inputs={"current": "x.csv"})
    assert evaluate("github.event.inputs.current", {"github": dispatch}) == "x.csv"
    with pytest.raises(ValueError, match="no payload known"):
        github_context("check_run")


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


# --- the GitHub side: pull requests, tokens and the workflows an event starts --------------------

PROPOSE = """\
on: workflow_dispatch
jobs:
  propose:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@0123456789abcdef0123456789abcdef01234567
        with:
          persist-credentials: false
      - run: echo "$CHANGE" >> "${FILE:-notes.txt}"
        env:
          CHANGE: ${{ vars.CHANGE }}
          FILE: ${{ vars.FILE }}
      - name: Open the pull request
        id: pr
        uses: peter-evans/create-pull-request@0123456789abcdef0123456789abcdef01234567
        with:
          token: ${{ secrets.PR_TOKEN || github.token }}
          branch: proposal
          delete-branch: true
          title: A proposal
          draft: ${{ vars.DRAFT || 'false' }}
      - if: steps.pr.outputs.pull-request-operation == 'created'
        run: gh workflow run checks.yml --ref proposal
        env:
          GH_TOKEN: ${{ github.token }}
      - name: Make it a draft
        if: vars.MAKE_DRAFT == 'true'
        run: gh pr ready --undo "$NUMBER"
        env:
          GH_TOKEN: ${{ github.token }}
          NUMBER: ${{ steps.pr.outputs.pull-request-number }}
"""
CHECKS = """\
on:
  push:
    branches: [main]
  pull_request:
  workflow_dispatch:
jobs:
  test:
    runs-on: ubuntu-latest
    steps: [{run: exit 0}]
"""


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository with a workflow that proposes a change and one that checks pull requests."""
    work = tmp_path / "work"
    (work / ".github" / "workflows").mkdir(parents=True)
    (work / ".github" / "workflows" / "propose.yml").write_text(PROPOSE)
    (work / ".github" / "workflows" / "checks.yml").write_text(CHECKS)
    (work / "notes.txt").write_text("first\n")
    _git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    _git(work, "add", "--all")
    _git(work, "commit", "--quiet", "-m", "first")
    _git(tmp_path, "clone", "--quiet", "--bare", str(work), str(tmp_path / "origin.git"))
    return tmp_path / "origin.git"


def _git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Ana", "-c", "user.email=ana@example.com"]
    return subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def _propose(
    origin: Path,
    workdir: Path,
    repo: GitHubRepo,
    change: str,
    secrets: dict[str, str] | None = None,
    **variables: str,
) -> JobResult:
    runner = LocalRunner(
        origin,
        workdir,
        base_env={"PATH": os.environ["PATH"], "HOME": str(workdir)},
        github=github_context("workflow_dispatch", repository="octo/churn", token="the-job-token"),
        variables={"CHANGE": change, **variables},
        secrets=secrets,
        repo=repo,
        gh=True,
    )
    return runner.run(origin.parent / "work" / ".github" / "workflows" / "propose.yml")["propose"]


def test_a_pull_request_opened_with_github_token_starts_no_workflow_but_a_dispatch_does(
    origin: Path, tmp_path: Path
) -> None:
    repo = GitHubRepo()
    job = _propose(origin, tmp_path / "run1", repo, "second")
    assert job.step("Open the pull request").outputs["pull-request-operation"] == "created"
    assert [(e.name, e.by_github_token) for e in repo.events] == [
        ("push", True),
        ("pull_request", True),
        ("workflow_dispatch", True),
    ]
    # Neither the push nor the pull request starts a workflow; the dispatch is exempt.
    assert [(name, event.name) for name, event in repo.runs(origin)] == [
        ("checks.yml", "workflow_dispatch")
    ]
    assert _git(origin, "show", "proposal:notes.txt") == "first\nsecond"

    # With a person's token, the pull request's own events start the checks.
    repo = GitHubRepo()
    _git(origin, "branch", "-D", "proposal")
    _propose(origin, tmp_path / "run2", repo, "second", secrets={"PR_TOKEN": "a-person"})
    started = [(name, event.name, event.action) for name, event in repo.runs(origin)]
    assert ("checks.yml", "pull_request", "opened") in started, started


def test_draft_applies_on_create_and_always_true_on_update(origin: Path, tmp_path: Path) -> None:
    repo = GitHubRepo()
    _propose(origin, tmp_path / "run1", repo, "second", DRAFT="false")
    assert not repo.pull_requests[0].draft
    _propose(origin, tmp_path / "run2", repo, "third", DRAFT="true")
    assert not repo.pull_requests[0].draft, "`true` is applied on create only"
    job = _propose(origin, tmp_path / "run3", repo, "fourth", DRAFT="always-true")
    assert job.step("Open the pull request").outputs["pull-request-operation"] == "updated"
    assert repo.pull_requests[0].draft and len(repo.pull_requests) == 1


def test_drafts_are_refused_where_the_plan_has_none(origin: Path, tmp_path: Path) -> None:
    repo = GitHubRepo(drafts=False)
    with pytest.raises(StepFailed, match="Draft pull requests are not supported"):
        _propose(origin, tmp_path / "run1", repo, "second", DRAFT="true")
    assert not repo.pull_requests
    _propose(origin, tmp_path / "run2", repo, "second", DRAFT="false")
    assert len(repo.pull_requests) == 1
    # Converting one to a draft (gh pr ready --undo) fails there too.
    with pytest.raises(StepFailed, match=r"(?s)at step 'Make it a draft'.*not supported"):
        _propose(origin, tmp_path / "run3", repo, "third", MAKE_DRAFT="true")
    repo.drafts = True
    _propose(origin, tmp_path / "run4", repo, "fourth", MAKE_DRAFT="true")
    assert repo.pull_requests[0].draft


def test_an_update_resets_the_branch_over_a_persons_commit(origin: Path, tmp_path: Path) -> None:
    """What create-pull-request does to commits pushed to its branch (its source's reset rule)."""
    repo = GitHubRepo()
    _propose(origin, tmp_path / "run1", repo, "second")
    clone = tmp_path / "person"
    _git(tmp_path, "clone", "--quiet", "--branch", "proposal", str(origin), str(clone))
    (clone / "notes.txt").write_text("first\nsecond, reviewed\n")
    _git(clone, "commit", "--quiet", "-am", "Reviewed")
    _git(clone, "push", "--quiet", "origin", "proposal")
    job = _propose(origin, tmp_path / "run2", repo, "second")
    assert job.step("Open the pull request").outputs["pull-request-operation"] == "updated"
    assert _git(origin, "show", "proposal:notes.txt") == "first\nsecond", "the commit is gone"


def test_github_token_cannot_push_a_workflow_change(origin: Path, tmp_path: Path) -> None:
    repo = GitHubRepo()
    workflow = ".github/workflows/checks.yml"
    with pytest.raises(StepFailed, match=f"update workflow `{workflow}` without `workflows`"):
        _propose(origin, tmp_path / "run1", repo, "# changed", FILE=workflow)
    assert not _git(origin, "branch", "--list", "proposal")
    job = _propose(
        origin, tmp_path / "run2", repo, "# changed", {"PR_TOKEN": "a-person"}, FILE=workflow
    )
    assert job.step("Open the pull request").outputs["pull-request-operation"] == "created"


@pytest.mark.parametrize(
    ("on", "event", "started"),
    [
        ({"push": {"branches": ["main"]}}, Event("push", "refs/heads/main", False), True),
        ({"push": {"branches": ["main"]}}, Event("push", "refs/heads/x", False), False),
        ({"push": {"branches": ["main"]}}, Event("push", "refs/tags/v1", False), False),
        ({"push": {"tags": ["v*"]}}, Event("push", "refs/tags/v1", False), True),
        ({"push": {"tags": ["v*"]}}, Event("push", "refs/heads/main", False), False),
        ("push", Event("push", "refs/heads/x", False), True),
        (
            ["pull_request"],
            Event("pull_request", "refs/heads/x", False, "opened", "", "main"),
            True,
        ),
        (
            {"pull_request": {"branches": ["dev"]}},
            Event("pull_request", "x", False, "opened", "", "main"),
            False,
        ),
        ({"pull_request": None}, Event("pull_request", "x", False, "closed", "", "main"), False),
        (
            {"workflow_dispatch": None},
            Event("workflow_dispatch", "x", True, workflow="w.yml"),
            True,
        ),
        (
            {"workflow_dispatch": None},
            Event("workflow_dispatch", "x", True, workflow="o.yml"),
            False,
        ),
    ],
)
def test_triggers(on: Any, event: Event, started: bool) -> None:
    assert triggered(on, event, "w.yml") is started


def test_concurrency_cancels_the_pending_run_even_without_cancel_in_progress() -> None:
    workflow = {"concurrency": {"group": "g-${{ github.ref }}", "cancel-in-progress": False}}
    runs = [github_context("push", ref="refs/heads/main") for _ in range(3)]
    assert cancelled_runs(workflow, runs) == [1], "one runs, one waits: the next replaces it"
    workflow["concurrency"]["cancel-in-progress"] = "${{ github.event_name == 'push' }}"
    assert cancelled_runs(workflow, runs) == [0, 1]
    other = github_context("push", ref="refs/heads/other")
    assert cancelled_runs(workflow, [runs[0], other]) == [], "another group"
    assert cancelled_runs({}, runs) == [], "no concurrency: every run runs"
