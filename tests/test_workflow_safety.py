"""Fast checks of what the generated workflows do with what reaches them (issue 9): which tags
start CD and which of them move the image's `latest`, what a workflow reads from an event's
payload, a dispatch input on its way into a shell, and the pull requests' labels.

The workflows run here with harness/gha/; the Makefile with real make.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.gha import (
    ACTIONS,
    EVENT_KEYS,
    GITHUB_EXPRESSION,
    Job,
    JobResult,
    LocalRunner,
    action_name,
    condition,
    evaluate,
    filter_matches,
    github_context,
    interpolate,
    load_workflow,
    oidc_subject,
)
from harness.project import Project, git

MODEL = "my-model"
REPOSITORY = "octo/my-model"


def _workflows(project: Project) -> list[Path]:
    return sorted((project.path / ".github" / "workflows").glob("*.yml"))


# --- CD: which tags start it ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "starts"),
    [
        ("v1.2.0", True),
        (f"{MODEL}@v0.3.0", True),  # gto register
        (f"{MODEL}#prod#3", True),  # gto assign
        (f"{MODEL}@v0.3.0!#4", False),  # gto deregister: a withdrawal builds nothing
        (f"{MODEL}#prod!#5", False),  # gto unassign
        (f"{MODEL}@deprecated#6", False),  # gto deprecate
        ("main", False),
    ],
)
def test_cd_starts_on_releases_never_on_withdrawals(
    baked: Callable[..., Project], tag: str, starts: bool
) -> None:
    cd = load_workflow(baked().path / ".github" / "workflows" / "cd.yml")
    assert filter_matches(cd["on"]["push"]["tags"], tag) is starts


# --- CD: when the image's `latest` moves ---------------------------------------------------------

# On one commit: releases (v1.10.0 the newest, sorted as versions, not as text), a pre-release
# above it, and model-registry tags.
TAGS = ["v1.0.0", "v1.9.0", "v1.10.0", "v1.11.0-rc.1", f"{MODEL}@v0.3.0", f"{MODEL}#prod#1"]


@pytest.fixture(scope="module")
def tagged(baked: Callable[..., Project], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare repository of the default project with the tags above."""
    base = tmp_path_factory.mktemp("tagged")
    work = base / MODEL
    shutil.copytree(baked().path, work)
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "--no-verify", "-m", "Initial commit")
    for tag in TAGS:
        git(work, "tag", tag)
    origin = base / "origin.git"
    git(base, "clone", "--quiet", "--bare", str(work), str(origin))
    return origin


@pytest.mark.parametrize(
    ("tag", "latest"),
    [
        ("v1.10.0", True),
        ("v1.9.0", False),  # an older release, pushed (or re-run) later
        ("v1.11.0-rc.1", False),
        (f"{MODEL}@v0.3.0", False),
        (f"{MODEL}#prod#1", False),
    ],
)
def test_latest_moves_only_with_the_newest_release(
    tagged: Path, baked: Callable[..., Project], tmp_path: Path, tag: str, latest: bool
) -> None:
    pushed: list[str] = []

    def build_push(job: Job, with_: dict[str, Any]) -> None:
        pushed.extend(str(with_["tags"]).split())

    runner = LocalRunner(
        tagged,
        tmp_path,
        base_env={"PATH": os.environ["PATH"]},
        github=github_context(
            "push",
            repository=REPOSITORY,
            ref=f"refs/tags/{tag}",
            sha=git(tagged, "rev-parse", f"{tag}^{{commit}}").strip(),
        ),
        secrets={"GITHUB_TOKEN": "fake"},
        actions={**ACTIONS, "docker/build-push-action": build_push},
    )
    (runner.artifacts / "model").mkdir()
    (runner.artifacts / "model" / "model.joblib").write_bytes(b"model")
    cd = baked().path / ".github" / "workflows" / "cd.yml"
    results = runner.run(cd, ["image"], {"model": JobResult("model", "success")})
    assert results["image"].result == "success"
    image = f"ghcr.io/{REPOSITORY}"
    assert f"{image}:{re.sub(r'[^a-zA-Z0-9._-]+', '-', tag)}" in pushed, pushed
    assert (f"{image}:latest" in pushed) is latest, pushed


def test_the_latest_rule_is_documented(baked: Callable[..., Project]) -> None:
    project = baked()
    cd = project.read(".github/workflows/cd.yml")
    assert re.search(r"#.*`?latest`? moves only", cd), "cd.yml: a comment saying when"
    docs = project.read("docs/ci-cd.md")
    assert re.search(r"`latest`[^.]*only[^.]*newest release", docs), "docs/ci-cd.md: says when"


# --- event payloads ------------------------------------------------------------------------------


def _expressions(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [e for item in value.values() for e in _expressions(item)]
    if isinstance(value, list):
        return [e for item in value for e in _expressions(item)]
    if isinstance(value, str):
        return [m.group(1) for m in GITHUB_EXPRESSION.finditer(value)]
    return []


@pytest.mark.parametrize("answers", [{}, {"dvc_remote": "s3"}])
def test_what_a_workflow_reads_from_its_event_is_there_for_each_trigger(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    """Each `${{ }}` that reads github.event gives a value under every event that starts the
    workflow, with the payload GitHub sends for that event (a schedule's has no repository)."""
    checked = 0
    for path in _workflows(baked(**answers)):
        workflow = load_workflow(path)
        triggers = workflow["on"] if isinstance(workflow["on"], dict) else {workflow["on"]: None}
        reads = [e for e in _expressions(workflow) if "github.event." in e]
        for event in triggers:
            assert event in EVENT_KEYS, f"{path.name}: no payload known for {event!r}"
            context = {"github": github_context(event, repository=REPOSITORY), "inputs": {}}
            for expression in reads:
                value = evaluate(expression, context)
                assert value not in (None, ""), f"{path.name} on {event}: ${{{{{expression}}}}}"
                checked += 1
    assert checked, "no workflow reads github.event: nothing checked"


def test_the_monitor_dispatches_retraining_on_the_default_branch_from_a_schedule(
    baked: Callable[..., Project], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gh.jsonl"
    gh = bin_dir / "gh"
    gh.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        "open(os.environ['FAKE_GH_LOG'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    runner = LocalRunner(
        tmp_path,  # the job checks nothing out
        tmp_path / "run",
        base_env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_GH_LOG": str(log)},
        github=github_context("schedule", repository=REPOSITORY, default_branch="trunk"),
        variables={},
    )
    drift = JobResult("drift", "success", outputs={"drift": "true", "new_data": "true"})
    monitor = baked().path / ".github" / "workflows" / "monitor.yml"
    assert runner.run(monitor, ["retrain"], {"drift": drift})["retrain"].result == "success"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["workflow", "run", "retrain.yml", "--ref", "trunk"]]


# --- a dispatch input on its way to a shell ------------------------------------------------------

HOSTILE = """a b"; touch injected-quote; echo "$(touch injected-dollar)`touch injected-tick`;'c'"""


def test_the_monitors_current_input_reaches_the_monitor_as_one_argument(
    bake: Callable[..., Project], tmp_path: Path
) -> None:
    """monitor.yml passes inputs.current through env to `make ci-monitor` (as `make monitor`
    would): real make, the generated Makefile, a stand-in uv that records its arguments."""
    project = bake()
    workflow = load_workflow(project.path / ".github" / "workflows" / "monitor.yml")
    drift = workflow["jobs"]["drift"]
    assert "inputs.current" in drift["env"]["CURRENT"]
    step = next(s for s in drift["steps"] if s.get("id") == "monitor")
    assert step["run"] == "make ci-monitor"

    record = tmp_path / "argv.json"
    uv = tmp_path / "uv"
    uv.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    uv.chmod(uv.stat().st_mode | stat.S_IEXEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env["CURRENT"] = HOSTILE
    dry = subprocess.run(
        ["make", "-n", "ci-monitor", f"UV={uv}"],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr
    assert "touch" not in dry.stdout, f"the value is shell text in the recipe:\n{dry.stdout}"
    done = subprocess.run(
        ["make", "ci-monitor", f"UV={uv}"],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not list(project.path.glob("injected-*")), "the value ran as shell code"
    package = project.answers.get("package_name") or "my_model"
    assert json.loads(record.read_text()) == [
        "run",
        "python",
        "-m",
        f"{package}.monitoring",
        "--current",
        HOSTILE,
    ]
    # Without CURRENT, no --current: the monitor's default (data.current in params.yaml).
    env.pop("CURRENT")
    subprocess.run(
        ["make", "monitor", f"UV={uv}"], cwd=project.path, env=env, check=True, capture_output=True
    )
    assert json.loads(record.read_text()) == ["run", "python", "-m", f"{package}.monitoring"]


def test_the_template_sync_version_input_reaches_copier_as_one_argument(
    bake: Callable[..., Project], tmp_path: Path
) -> None:
    """template-sync.yml passes inputs.version through env to `make template-sync`, which put
    it into its recipe text: a quote ended the string, `$(shell ...)` ran in make."""
    project = bake()
    workflow = load_workflow(project.path / ".github" / "workflows" / "template-sync.yml")
    sync = workflow["jobs"]["sync"]
    assert "inputs.version" in sync["env"]["TEMPLATE_VERSION"]
    assert next(s for s in sync["steps"] if s.get("id") == "sync")["run"].startswith(
        "make template-sync"
    )
    git(project.path, "init", "--quiet", "--initial-branch=main")
    git(project.path, "add", "--all")
    git(project.path, "commit", "--quiet", "--no-verify", "-m", "Initial commit")

    record = tmp_path / "argv.json"
    uv = tmp_path / "uv"
    uv.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    uv.chmod(uv.stat().st_mode | stat.S_IEXEC)
    hostile = f'v1"; echo INJECTED; $(shell touch injected-make) {HOSTILE}'
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env["TEMPLATE_VERSION"] = hostile
    make = ["make", "template-sync", f"UV={uv}", "OUT=reports/template-sync.md"]
    dry = subprocess.run(
        [make[0], "-n", *make[1:]], cwd=project.path, env=env, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    assert "INJECTED" not in dry.stdout and "touch" not in dry.stdout, dry.stdout
    assert not list(project.path.glob("injected-*")), "make ran the value while reading it"
    done = subprocess.run(make, cwd=project.path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "INJECTED" not in done.stdout
    assert not list(project.path.glob("injected-*")), "the value ran as shell code"
    argv = json.loads(record.read_text())
    assert argv[argv.index("--vcs-ref") + 1] == hostile, argv
    assert (project.path / "reports" / "template-sync.md").is_file(), "OUT reached the script"


@pytest.mark.parametrize(
    ("conflicts", "operation", "draft"),
    [
        ("true", "created", True),
        ("true", "updated", True),  # create-pull-request's `draft: true` did this on create only
        ("true", "none", False),  # nothing pushed: the pull request is left as it is
        ("false", "updated", False),
    ],
)
def test_a_conflicted_template_sync_pull_request_is_made_a_draft_on_create_and_update(
    baked: Callable[..., Project], conflicts: str, operation: str, draft: bool
) -> None:
    workflow = load_workflow(baked().path / ".github" / "workflows" / "template-sync.yml")
    steps = workflow["jobs"]["sync"]["steps"]
    pr = next(s for s in steps if s.get("id") == "pr")
    assert "draft" not in pr["with"], "a draft it cannot open leaves no pull request at all"
    step = next(s for s in steps if s.get("run", "").startswith("gh pr ready --undo"))
    assert step["continue-on-error"] is True, "no drafts on the plan: the title says it anyway"
    context = {
        "github": github_context("schedule", repository=REPOSITORY),
        "env": {},
        "steps": {
            "sync": {"outputs": {"conflicts": conflicts}},
            "pr": {"outputs": {"pull-request-operation": operation}},
        },
    }
    assert condition(step["if"], context, {"success": lambda: True}) is draft


# --- pull requests' labels -----------------------------------------------------------------------


def test_pull_requests_get_only_labels_their_token_may_set(baked: Callable[..., Project]) -> None:
    """create-pull-request adds labels through the issues API after opening the pull request:
    without `issues: write`, or for a label the repository lacks, that step fails."""
    found = 0
    for path in _workflows(baked()):
        for job_id, job in load_workflow(path)["jobs"].items():
            for step in job["steps"]:
                if action_name(step.get("uses", "")) != "peter-evans/create-pull-request":
                    continue
                found += 1
                labels = step.get("with", {}).get("labels")
                assert not labels or job["permissions"].get("issues") == "write", (
                    f"{path.name}:{job_id}: labels {labels!r} without issues: write"
                )
    assert found == 2, "retrain.yml and template-sync.yml each open a pull request"


# --- the monitor's job summary ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (
            {
                "verdict": "not enough traffic",
                "drift_detected": False,
                "current_rows": 0,
                "min_rows": 200,
                "current": "logs/predictions (last 7 days)",
            },
            [
                "### Drift: not enough traffic to decide",
                "0 rows at `logs/predictions",
                "(200)",
                "repository variable `PREDICTION_LOG`",
                "run this workflow by hand",
            ],
        ),
        (
            {
                "verdict": "drift",
                "drift_detected": True,
                "current_rows": 500,
                "current": "x.csv",
                "drifted_share": 0.5,
                "drifted_columns": ["age", "plan"],
            },
            ["### Drift detected", "50% of the input columns", "`age`, `plan`"],
        ),
        (
            {
                "verdict": "no drift",
                "drift_detected": False,
                "current_rows": 500,
                "current": "x.csv",
                "drifted_share": 0.0,
                "drifted_columns": [],
            },
            ["### No drift", "500 rows at `x.csv`"],
        ),
        (
            {"verdict": "error", "error": "the quality report failed: KeyError: 'c'"},
            ["### Monitor failed: no verdict", "the quality report failed: KeyError: 'c'"],
        ),
    ],
    ids=["no-traffic", "drift", "no-drift", "error"],
)
def test_the_monitors_job_summary_says_the_verdict_or_what_to_configure(
    baked: Callable[..., Project], tmp_path: Path, report: dict, expected: list[str]
) -> None:
    path = tmp_path / "drift.json"
    path.write_text(json.dumps(report))
    made = subprocess.run(
        ["make", "--silent", "drift-summary", f"REPORT={path}"],
        cwd=baked().path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    for text in expected:
        assert text in made.stdout, made.stdout
    assert "PREDICTION_LOG" not in made.stdout or report["verdict"] == "not enough traffic"
    # The verdict for the workflow's outputs: none after a failed run (exit 2 or 3).
    verdict = subprocess.run(
        ["make", "--silent", "drift-verdict", f"REPORT={path}"],
        cwd=baked().path,
        capture_output=True,
        text=True,
        check=False,
    )
    if report["verdict"] == "error":
        assert verdict.returncode != 0 and "the monitor failed, no verdict" in verdict.stderr
    else:
        expected_drift = "true" if report["drift_detected"] else "false"
        assert verdict.stdout == f"drift={expected_drift}\n", verdict.stderr


# --- OIDC: who may write the DVC remote ------------------------------------------------------

# What docs/ci-cd.md tells a user to trust, per identity (OWNER/REPO is the repository). AWS
# matches trust-policy subjects with wildcards; Azure matches a federated credential exactly
# (a flexible credential may use `*`); GitHub's subject names the ref, or the pull request.
CLOUDS: dict[str, dict[str, Any]] = {
    "s3": {
        "login": "aws-actions/configure-aws-credentials",
        "input": "role-to-assume",
        "vars": {"AWS_ROLE_ARN": "read-identity", "AWS_WRITE_ROLE_ARN": "write-identity"},
        "read": ["repo:OWNER/REPO:*"],
    },
    "azure": {
        "login": "azure/login",
        "input": "client-id",
        "vars": {"AZURE_CLIENT_ID": "read-identity", "AZURE_WRITE_CLIENT_ID": "write-identity"},
        "read": [
            "repo:OWNER/REPO:ref:refs/heads/main",
            "repo:OWNER/REPO:pull_request",
            "repo:OWNER/REPO:ref:refs/*",  # the flexible credential for tags and branches
        ],
    },
}
WRITE_SUBJECT = "repo:OWNER/REPO:ref:refs/heads/main"


@pytest.mark.parametrize("remote", sorted(CLOUDS))
def test_the_ci_cd_page_gives_each_identity_the_subjects_github_sends(
    baked: Callable[..., Project], remote: str
) -> None:
    """Azure: a credential for `repo:OWNER/REPO` never matched (the subject names the ref), so
    a tag's CD could not log in. S3: one read-write role trusted for `repo:OWNER/REPO:*` let
    every same-repository pull request write the remote."""
    docs = " ".join(baked(dvc_remote=remote).read("docs/ci-cd.md").split())
    for subject in [*CLOUDS[remote]["read"], WRITE_SUBJECT]:
        assert f"`{subject}`" in docs, subject
    if remote == "azure":  # exact subjects: the page names the tag's and the branch's form
        assert "`repo:OWNER/REPO:ref:refs/tags/TAG`" in docs
        assert "`repo:OWNER/REPO:ref:refs/heads/BRANCH`" in docs
    assert "`repo:OWNER/REPO:pull_request`" in docs
    write_variable = next(name for name in CLOUDS[remote]["vars"] if "WRITE" in name)
    assert f"`{write_variable}` (the read-write" in docs
    assert "federated credential for `repo:OWNER/REPO`," not in docs
    assert "allows `repo:OWNER/REPO:*`, with read and write" not in docs


def _runs(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    """A github context for each way the workflow starts (a dispatch also from a feature
    branch: anyone with write access can start one there)."""
    on = workflow["on"]
    runs = []
    for event in on:
        if event == "push":
            tags = (on["push"] or {}).get("tags")
            refs = ["refs/tags/v1.2.0"] if tags else ["refs/heads/main"]
        elif event == "workflow_dispatch":
            refs = ["refs/heads/main", "refs/heads/feature"]
        elif event == "pull_request":
            refs = ["refs/pull/7/merge"]
        else:
            refs = ["refs/heads/main"]
        runs += [github_context(event, repository=REPOSITORY, ref=ref) for ref in refs]
    return runs


@pytest.mark.parametrize("remote", sorted(CLOUDS))
def test_only_the_default_branch_logs_in_to_write_the_dvc_remote(
    baked: Callable[..., Project], remote: str
) -> None:
    """Each OIDC login, under each event that starts its workflow: the identity it asks for is
    trusted (in docs/ci-cd.md) for the subject GitHub sends, and `dvc push` runs only with the
    write identity, whose one subject is the default branch."""
    cloud = CLOUDS[remote]
    pushes = 0
    for path in _workflows(baked(dvc_remote=remote)):
        workflow = load_workflow(path)
        for job_id, job in workflow["jobs"].items():
            login = next(
                (s for s in job["steps"] if action_name(s.get("uses", "")) == cloud["login"]),
                None,
            )
            if login is None:
                continue
            for github in _runs(workflow):
                context: dict[str, Any] = {
                    "github": github,
                    "vars": cloud["vars"],
                    "secrets": {},
                    "inputs": {},
                    "env": {},
                }
                for key, value in (job.get("env") or {}).items():
                    context["env"][key] = str(interpolate(value, context))
                identity = interpolate(login["with"][cloud["input"]], context)
                subject = oidc_subject(github).replace(REPOSITORY, "OWNER/REPO")
                where = f"{path.name}:{job_id} on {github['event_name']} at {github['ref']}"
                if identity == "write-identity":
                    assert subject == WRITE_SUBJECT, where
                else:
                    assert identity == "read-identity", where
                    assert any(fnmatch.fnmatchcase(subject, s) for s in cloud["read"]), where
                for step in job["steps"]:
                    if "dvc push" not in step.get("run", ""):
                        continue
                    runs = condition(step.get("if"), context, {"success": lambda: True})
                    assert not runs or identity == "write-identity", where
                    pushes += runs
    assert pushes, "the retrain workflow pushes on the default branch"
