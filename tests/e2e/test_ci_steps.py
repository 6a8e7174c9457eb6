"""End to end: the generated project's workflows, run here step by step (harness/gha/).

A default project is generated, set up, run and committed as a user would before the first
push, then pushed to a bare repository that stands in for GitHub. Each job starts from a fresh
clone of it, as on a runner: nothing the user's working copy has but git does not (the
virtual environment, the DVC-tracked data, the model) is there. So a wrong command, a missing
file or a target that only works on the author's machine fails here as it would on GitHub.

What cannot run here is said, not skipped silently: the image build has no Docker engine
(tests/e2e/test_container.py builds and runs the image with podman); GitHub's API is a fake
`gh` that records what it is asked.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.gha import (
    GitHubRepo,
    JobResult,
    LocalRunner,
    StepFailed,
    filter_matches,
    github_context,
    load_workflow,
)
from harness.gha.gh_recorder import fake_gh, gh_calls
from harness.project import Project, bake_project, git, run, tool_env

pytestmark = pytest.mark.e2e

REPOSITORY = "octo/my-model"
MODEL = "my-model"

FAKE_GH = """#!/usr/bin/env python3
# A stand-in for the GitHub CLI: records each call, answers like GitHub would.
import json, os, sys
args = sys.argv[1:]
body = sys.stdin.read() if args[-2:] == ["--body-file", "-"] or "-" in args[-1:] else None
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "stdin": body, "token": os.environ.get("GH_TOKEN"),
                          "repo": os.environ.get("GH_REPO")}) + "\\n")
if args[:2] == ["issue", "list"]:
    print(os.environ.get("FAKE_GH_OPEN_ISSUES", "[]"))
elif args[:2] == ["issue", "create"]:
    print("https://github.com/octo/my-model/issues/8")
elif args[:2] == ["release", "view"]:
    sys.exit(0 if os.environ.get("FAKE_GH_RELEASE_EXISTS") else 1)
"""


@pytest.fixture(scope="module")
def pushed(trained_project: Project) -> tuple[Project, Path]:
    """The default project after `make setup`, `make pipeline` and the first commit, pushed."""
    project = trained_project
    base = project.path.parent
    project.commit("Initial commit")
    origin = base / "origin.git"
    git(base, "clone", "--quiet", "--bare", str(project.path), str(origin))
    return project, origin


def _base_env(extra_path: Path | None = None, **extra: str) -> dict[str, str]:
    env = tool_env()
    # Whatever runs these tests (GitHub Actions included) must not leak into the jobs.
    for key in list(env):
        if key.startswith(("GITHUB_", "RUNNER_")) or key in {"DRY_RUN", "CI"}:
            del env[key]
    if extra_path:
        env["PATH"] = f"{extra_path}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env


def _github(origin: Path, ref: str, event: str) -> dict[str, object]:
    """The github context of a run, `github.event` shaped as GitHub sends that event."""
    sha = git(origin, "rev-parse", f"{ref}^{{commit}}").strip()
    return github_context(event, repository=REPOSITORY, ref=ref, sha=sha, token="fake-github-token")


def test_ci_workflow_passes_on_the_first_push(pushed: tuple[Project, Path], tmp_path: Path) -> None:
    project, origin = pushed
    runner = LocalRunner(
        origin,
        tmp_path,
        base_env=_base_env(),
        github=_github(origin, "refs/heads/main", "push"),
        secrets={"GITHUB_TOKEN": "fake-github-token"},
    )
    results = runner.run(project.path / ".github" / "workflows" / "ci.yml")

    assert {job: result.result for job, result in results.items()} == {
        "lint": "success",
        "test": "success",
        "pipeline": "success",
        "container": "success",
    }
    pipeline = results["pipeline"]
    data = pipeline.step("Data").output
    assert "data/raw/customers.csv: matches" in data, data
    assert "data/current/customers.csv: matches" in data, data
    # The job summary: metrics of this run against the default branch, and the params.
    assert "### Metrics: this run against `origin/main`" in pipeline.summary, pipeline.summary
    assert "accuracy" in pipeline.summary and "roc_auc" in pipeline.summary, pipeline.summary
    assert "### Parameters changed against `origin/main`" in pipeline.summary
    assert (runner.artifacts / "model" / "model.joblib").is_file()
    assert (runner.artifacts / "metrics-and-plots" / "metrics" / "metrics.json").is_file()
    assert (runner.artifacts / "metrics-and-plots" / "reports" / "plots" / "index.html").is_file()
    # The image build did not run (no Docker engine) and says so; what it reads was there.
    build = results["container"].step("Build the image")
    assert "not run: no Docker engine" in build.note, build.note


def test_ci_of_a_project_made_from_a_private_file(template_repo: Path, tmp_path: Path) -> None:
    """Own data, no DVC remote on the runner: tests green on the fixture, the pipeline says why
    it did not run, and nothing fails obscurely."""
    _iris_table(tmp_path / "iris.csv")
    project = bake_project(
        template_repo,
        tmp_path / "iris-model",
        dataset="file",
        dataset_path=str(tmp_path / "iris.csv"),
        target_column="species",
    )
    project.run("make", "setup", timeout=900)
    project.run("make", "pipeline", timeout=900)
    project.commit("Initial commit")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(project.path), str(origin))

    runner = LocalRunner(
        origin,
        tmp_path / "run",
        base_env=_base_env(),
        github=_github(origin, "refs/heads/main", "push"),
        secrets={"GITHUB_TOKEN": "fake-github-token"},
    )
    results = runner.run(project.path / ".github" / "workflows" / "ci.yml")
    assert {job: result.result for job, result in results.items()} == {
        "lint": "success",
        "test": "success",
        "pipeline": "success",
        "container": "skipped",
    }
    assert " passed" in results["test"].step("Tests").output
    pipeline = results["pipeline"]
    assert "### Pipeline not run: no access to the data" in pipeline.summary, pipeline.summary
    assert "section 'CI/CD'" in pipeline.summary
    assert pipeline.outputs == {"trained": "false"}
    assert pipeline.step("Pipeline").conclusion == "skipped"
    assert not (runner.artifacts / "model").exists()
    _monitor_without_data_says_what_to_configure(project, origin, tmp_path / "monitor")


def _iris_table(path: Path) -> None:
    rng = random.Random(0)
    rows = ["petal_length,petal_width,colour,species"]
    # Classes that overlap: a column that alone separates them perfectly would be kept out
    # of the features as a likely leak (schema inference), leaving the model nothing to learn.
    for species, (length, width) in {"setosa": (4.0, 1.2), "virginica": (5.0, 1.7)}.items():
        for _ in range(150):
            colour = rng.choice(["blue", "white", "purple"])
            rows.append(
                f"{rng.gauss(length, 0.6):.2f},{rng.gauss(width, 0.4):.2f},{colour},{species}"
            )
    path.write_text("\n".join(rows) + "\n")


def _monitor_without_data_says_what_to_configure(
    project: Project, origin: Path, folder: Path
) -> None:
    """The weekly monitor there: no data to compare, so no verdict; green, and the summary says
    what to configure (make ci-data without CI_DATA_OPTIONAL failed it every week)."""
    runner, log = _monitor_runner(origin, folder, "schedule")
    results = runner.run(project.path / ".github" / "workflows" / "monitor.yml")
    assert {job: r.result for job, r in results.items()} == {
        "drift": "success",
        "issue": "skipped",
        "retrain": "skipped",
    }
    drift = results["drift"]
    assert "### Drift report not run: no access to the data" in drift.summary, drift.summary
    assert "section 'CI/CD'" in drift.summary and "The tests ran" not in drift.summary
    for step in ("Reference data", "Drift report", "Upload the report", "Verdict"):
        assert drift.step(step).conclusion == "skipped", step
    assert drift.outputs["drift"] == "" and not gh_calls(log)


def _monitor_runner(
    origin: Path, tmp_path: Path, event: str, current: str | None = None, **env: str
) -> tuple[LocalRunner, Path]:
    """The monitor workflow's runner for `event` (and its `current` input), with a fake gh
    that records its calls; the runner and the calls' log."""
    bin_dir, log = fake_gh(tmp_path, FAKE_GH)
    runner = LocalRunner(
        origin,
        tmp_path / "run",
        base_env=_base_env(bin_dir, FAKE_GH_LOG=str(log), **env),
        github=_github(origin, "refs/heads/main", event),
        secrets={"GITHUB_TOKEN": "fake-github-token"},
        inputs={"current": current} if current is not None else None,
    )
    return runner, log


def test_scheduled_monitor_with_no_traffic_logged_is_green_and_says_what_to_configure(
    pushed: tuple[Project, Path], tmp_path: Path
) -> None:
    """A freshly pushed repository: nothing served yet, so no verdict, no issue, no retraining
    (the bundled drifted batch is a demo input, never checked unasked)."""
    project, origin = pushed
    runner, log = _monitor_runner(origin, tmp_path, "schedule")
    results = runner.run(project.path / ".github" / "workflows" / "monitor.yml")
    assert {job: r.result for job, r in results.items()} == {
        "drift": "success",
        "issue": "skipped",
        "retrain": "skipped",
    }
    drift = results["drift"]
    assert drift.outputs == {"drift": "false", "new_data": "false"}
    assert drift.step("Drift report").outcome == "success"
    report = json.loads((runner.artifacts / "drift-report" / "drift.json").read_text())
    assert report["verdict"] == "not enough traffic" and report["current_rows"] == 0, report
    summary = drift.summary
    assert "### Drift: not enough traffic to decide" in summary, summary
    assert "repository variable `PREDICTION_LOG`" in summary, summary
    assert not gh_calls(log)


def test_monitor_workflow_flags_the_drifted_batch_and_opens_one_issue(
    pushed: tuple[Project, Path], tmp_path: Path
) -> None:
    """Run by hand on the sample's drifted batch."""
    project, origin = pushed
    monitor = project.path / ".github" / "workflows" / "monitor.yml"
    drifted = "data/current/customers.csv"
    runner, log = _monitor_runner(origin, tmp_path, "workflow_dispatch", drifted)
    results = runner.run(monitor)

    drift = results["drift"]
    # The monitor exits 1 on drift (make, 2): a verdict, not a failure; the job stays green
    # and says drift=true. The data is what the model was trained on: nothing new to learn,
    # so no retraining.
    report_step = drift.step("Drift report")
    assert (report_step.outcome, report_step.conclusion) == ("success", "success")
    assert drift.outputs == {"drift": "true", "new_data": "false"}
    assert results["retrain"].result == "skipped"
    report = json.loads((runner.artifacts / "drift-report" / "drift.json").read_text())
    assert report["drift_detected"] and report["drifted_columns"]
    assert (runner.artifacts / "drift-report" / "drift.html").stat().st_size > 10_000

    # Outside GitHub Actions the issue step is a dry run that prints the issue it would open.
    issue = results["issue"].step("Open the drift issue")
    assert "DRY RUN" in issue.output and "# Data drift detected" in issue.output, issue.output
    for column in report["drifted_columns"]:
        assert f"`{column}`" in issue.output
    assert "actions/runs/4242" in issue.output
    assert "**No retraining was started**" in issue.output, issue.output
    assert not gh_calls(log)
    results = _new_data_dispatches_retraining(runner, monitor, results, log)
    _on_github_one_issue_then_comments(origin, tmp_path, monitor, drifted, results, log)


def _new_data_dispatches_retraining(
    runner: LocalRunner, monitor: Path, results: dict[str, JobResult], log: Path
) -> dict[str, JobResult]:
    """With new data committed (make new-data says so), the retrain workflow is dispatched on
    the default branch, with the job's token, and the issue says it was."""
    results["drift"].outputs["new_data"] = "true"
    results = runner.run(monitor, jobs=["issue", "retrain"], results=results)
    assert "the Retrain workflow was started" in results["issue"].step("Open the drift").output
    calls = gh_calls(log)
    assert [call["args"] for call in calls] == [["workflow", "run", "retrain.yml", "--ref", "main"]]
    assert calls[0]["token"] == "fake-github-token" and calls[0]["repo"] == REPOSITORY
    return results


def _on_github_one_issue_then_comments(
    origin: Path,
    tmp_path: Path,
    monitor: Path,
    drifted: str,
    results: dict[str, JobResult],
    log: Path,
) -> None:
    # On GitHub: the first drift opens the issue, a later one comments on the open issue.
    for open_issues, expected in (("[]", "create"), ('[{"number": 7}]', "comment")):
        log.unlink()
        on_github, _ = _monitor_runner(
            origin,
            tmp_path,
            "workflow_dispatch",
            drifted,
            FAKE_GH_OPEN_ISSUES=open_issues,
            GITHUB_ACTIONS="true",
        )
        on_github.run(monitor, jobs=["issue"], results=results)
        calls = gh_calls(log)
        assert calls[0]["args"][:2] == ["issue", "list"]
        made = [call for call in calls if call["args"][:2] == ["issue", expected]]
        assert len(made) == 1, calls
        assert "drifted" in str(made[0]["stdin"]) and made[0]["token"] == "fake-github-token"
        if expected == "create":
            assert made[0]["args"][made[0]["args"].index("--label") + 1] == "drift"
        else:
            assert made[0]["args"][2] == "7"


def test_new_data_is_data_committed_since_the_models_training_run(
    pushed: tuple[Project, Path], tmp_path: Path
) -> None:
    """make new-data (the monitor workflow's gate on retraining) compares the .dvc files at
    HEAD with the data dvc.lock records the pipeline read."""
    project, origin = pushed
    env = {"UV_PROJECT_ENVIRONMENT": str(project.path / ".venv")}

    def new_rows(clone: Path) -> None:
        # What `dvc add` of a changed file commits: the .dvc file's md5 (the data is in DVC).
        tracked = clone / "data" / "raw" / "customers.csv.dvc"
        tracked.write_text(
            re.sub(r"md5: [0-9a-f]{32}", "md5: " + "0123abcd" * 4, tracked.read_text())
        )

    for clone, expected in (
        (project.path, "new_data=false"),
        (_pushed_commit(origin, tmp_path, new_rows, "new-data").parent / "clone", "new_data=true"),
    ):
        result = run("make", "--silent", "new-data", cwd=clone, env=tool_env(env))
        assert result.stdout.strip().splitlines()[-1] == expected, result.stdout + result.stderr
        assert "data/raw/customers.csv" in result.stderr, result.stderr


def test_monitor_without_drift_stays_green_and_quiet(
    pushed: tuple[Project, Path], tmp_path: Path
) -> None:
    """Run by hand on a batch like the training data: no issue, no retraining."""
    project, origin = pushed
    runner, log = _monitor_runner(origin, tmp_path, "workflow_dispatch", "data/raw/customers.csv")
    results = runner.run(project.path / ".github" / "workflows" / "monitor.yml")
    assert {job: r.result for job, r in results.items()} == {
        "drift": "success",
        "issue": "skipped",
        "retrain": "skipped",
    }
    assert results["drift"].outputs == {"drift": "false", "new_data": "false"}
    assert results["drift"].step("Drift report").outcome == "success"
    assert not gh_calls(log)


def test_a_monitor_that_fails_fails_the_job_and_is_no_verdict(
    pushed: tuple[Project, Path], tmp_path: Path
) -> None:
    """A batch that is not there: the monitor exits 2 (`make monitor` would say 2 for drift
    too); make ci-monitor passes on 1 (drift) only, so the job fails at the report, and
    drift.json holds the error. No issue, no retraining."""
    project, origin = pushed
    runner, log = _monitor_runner(origin, tmp_path, "workflow_dispatch", "data/nowhere.csv")
    with pytest.raises(StepFailed, match="failed at step 'Drift report") as failed:
        runner.run(project.path / ".github" / "workflows" / "monitor.yml")
    assert "data/nowhere.csv not found" in str(failed.value), failed.value
    assert "ERROR" in str(failed.value), failed.value
    assert "Traceback" not in str(failed.value)
    assert not gh_calls(log)


def test_retrain_workflow_reruns_the_pipeline_and_proposes_what_changed(
    pushed: tuple[Project, Path], tmp_path: Path
) -> None:
    project, origin = pushed
    runner = LocalRunner(
        origin,
        tmp_path,
        base_env=_base_env(),
        github=_github(origin, "refs/heads/main", "workflow_dispatch"),
    )
    results = runner.run(project.path / ".github" / "workflows" / "retrain.yml")
    retrain = results["retrain"]
    assert retrain.result == "success"
    body = (retrain.workspace / "reports" / "retrain.md").read_text()
    assert "### Metrics: this run against `HEAD`" in body and "accuracy" in body, body
    # The same data and params reproduce the committed model: nothing to propose.
    proposal = retrain.step("Open (or update) the pull request").note
    assert proposal == "no change in add-paths: no pull request", proposal


def test_ci_data_never_trains_on_the_sample_in_place_of_the_users_data(
    pushed: tuple[Project, Path], tmp_path: Path
) -> None:
    _, origin = pushed
    clone = Project(tmp_path / "clone", {})
    git(tmp_path, "clone", "--quiet", str(origin), str(clone.path))

    # The .dvc file tracks other data than the sample: the sample is not used, nor left behind.
    raw = clone.path / "data" / "raw" / "customers.csv.dvc"
    raw.write_text(re.sub(r"md5: \w+", "md5: 0123456789abcdef0123456789abcdef", raw.read_text()))
    result = clone.run("make", "ci-data", check=False)
    assert result.returncode != 0
    assert "does not track the bundled sample" in result.stderr, result.stderr
    assert "README" in result.stderr
    assert not (clone.path / "data" / "raw" / "customers.csv").exists()

    # A data file already present is never overwritten, even when it is not the sample.
    git(clone.path, "checkout", "--", str(raw))
    current = clone.path / "data" / "current" / "customers.csv"
    current.write_text("customer_id\n1\n")
    result = clone.run("make", "ci-data", check=False)
    assert result.returncode != 0
    assert "data/current/customers.csv: present, left as it is" in result.stdout
    assert current.read_text() == "customer_id\n1\n"


def test_model_registry_tags_drive_cd(pushed: tuple[Project, Path], tmp_path: Path) -> None:
    project, origin = pushed
    project.run("make", "release-model")
    project.run("make", "promote-model", "STAGE=prod")
    tags = set(git(project.path, "tag").split())
    assert {f"{MODEL}@v0.1.0", f"{MODEL}#prod#1"} <= tags, tags
    shown = project.run("make", "models").stdout
    assert "v0.1.0" in shown and "prod" in shown, shown
    bogus = project.run("make", "promote-model", "STAGE=qa", check=False)
    assert bogus.returncode != 0 and "Allowed stages" in bogus.stdout + bogus.stderr
    git(project.path, "push", "--quiet", str(origin), "--tags")

    # CD on the registration tag: the model is rebuilt at the tag, then the image is built
    # and pushed (not here: no engine, no registry) with the tags metadata-action computes.
    cd = project.path / ".github" / "workflows" / "cd.yml"
    assert filter_matches(load_workflow(cd)["on"]["push"]["tags"], f"{MODEL}@v0.1.0")
    release = _github(origin, f"refs/tags/{MODEL}@v0.1.0", "push")
    bin_dir, log = fake_gh(tmp_path / "gh", FAKE_GH)
    runner = LocalRunner(
        origin,
        tmp_path,
        base_env=_base_env(bin_dir, FAKE_GH_LOG=str(log)),
        github=release,
        secrets={"GITHUB_TOKEN": "fake-github-token"},
    )
    results = runner.run(cd)
    assert {job: r.result for job, r in results.items()} == {
        "model": "success",
        "image": "success",
        "release": "success",
    }
    # The release of the version tag, with the model card the pipeline wrote attached.
    card = (runner.artifacts / "model-card" / "model_card.md").read_text()
    assert "## Metrics (test split)" in card and "## Intended use" in card, card[:2000]
    made = [call["args"] for call in gh_calls(log) if call["args"][:2] == ["release", "create"]]
    assert made and made[0][2:4] == [f"{MODEL}@v0.1.0", "models/model_card.md"], made
    image = f"ghcr.io/{REPOSITORY}"
    tags_note = results["image"].step("Image name and tags").note
    assert f"{image}:{MODEL}-v0.1.0" in tags_note and f"{image}:sha-{release['sha']}" in tags_note
    assert f"{image}:latest" not in tags_note, tags_note  # a model tag never moves latest
    verified = results["model"].step("The model is the one the tagged dvc.lock records").output
    assert "models/model.joblib: md5" in verified and "for stage train" in verified, verified
    assert "not run: no Docker engine" in results["image"].step("Build and push").note

    # The stage tag: the same image, also tagged with the stage name.
    stage = _github(origin, f"refs/tags/{MODEL}#prod#1", "push")
    assert stage["sha"] == release["sha"]
    runner.github = stage
    results = runner.run(cd, jobs=["image"], results=results)
    tags_note = results["image"].step("Image name and tags").note
    assert f"{image}:prod" in tags_note and f"{image}:{MODEL}-prod-1" in tags_note, tags_note


def _pushed_commit(origin: Path, workdir: Path, change: Callable[[Path], None], tag: str) -> Path:
    """A clone of origin with one more commit (made by `change`) and a tag on it, pushed to a
    bare copy of origin, which is returned."""
    copy = workdir / "origin.git"
    git(workdir, "clone", "--quiet", "--bare", str(origin), str(copy))
    clone = workdir / "clone"
    git(workdir, "clone", "--quiet", str(copy), str(clone))
    change(clone)
    git(clone, "commit", "--quiet", "--no-verify", "-am", f"A commit for {tag}")
    git(clone, "tag", tag)
    git(clone, "push", "--quiet", "origin", "main", tag)
    return copy


def test_ci_fails_when_the_committed_dvc_lock_is_stale(
    pushed: tuple[Project, Path], tmp_path: Path
) -> None:
    """A params change committed without make pipeline: CI reproduces it and fails, naming the
    stages whose dvc.lock entry the commit lacks."""
    project, origin = pushed

    def more_trees(clone: Path) -> None:
        params = clone / "params.yaml"
        params.write_text(params.read_text().replace("n_estimators: 100", "n_estimators: 20", 1))

    stale = _pushed_commit(origin, tmp_path, more_trees, "stale")
    runner = LocalRunner(
        stale,
        tmp_path / "run",
        base_env=_base_env(),
        github=_github(stale, "refs/heads/main", "push"),
    )
    workflow = project.path / ".github" / "workflows" / "ci.yml"
    with pytest.raises(StepFailed) as failed:
        runner.run(workflow, ["pipeline"])
    message = str(failed.value)
    assert "The committed dvc.lock and metrics" in message, message
    assert "stages whose dvc.lock entry changed: evaluate, model_card, train" in message, message
    assert "metrics/metrics.json" in message, message

    # The retrain workflow proposes what the params ask for. Its pull request, opened with
    # GITHUB_TOKEN, starts no workflow: the job starts CI on the branch (a dispatch does).
    repo = GitHubRepo()
    retrain = LocalRunner(
        stale,
        tmp_path / "retrain",
        base_env=_base_env(),
        github=_github(stale, "refs/heads/main", "workflow_dispatch"),
        repo=repo,
        gh=True,
    )
    job = retrain.run(project.path / ".github" / "workflows" / "retrain.yml")["retrain"]
    assert job.result == "success"
    [pull] = repo.pull_requests
    assert (pull.head, pull.title) == ("retrain/main", "Retrain the model")
    changed = git(stale, "diff", "--name-only", "main", "retrain/main").split()
    assert "dvc.lock" in changed and "metrics/metrics.json" in changed, changed
    runs = [(name, event.name, event.ref) for name, event in repo.runs(stale)]
    assert runs == [("ci.yml", "workflow_dispatch", "refs/heads/retrain/main")], runs


def test_cd_never_ships_a_model_other_than_the_one_the_tag_records(
    pushed: tuple[Project, Path], tmp_path: Path
) -> None:
    """The tagged dvc.lock records a model (md5) that the runner cannot pull (no remote here)
    and that rebuilding does not give: the model job fails, saying so, and no image is built."""
    project, origin = pushed

    def another_model(clone: Path) -> None:
        lock = clone / "dvc.lock"
        text = lock.read_text()
        train = text.index("\n  train:")
        model = text.index("path: models/model.joblib", train)
        digest = re.compile(r"md5: ([0-9a-f]{32})").search(text, model)
        assert digest, text[model : model + 200]
        lock.write_text(text[: digest.start(1)] + "deadbeef" * 4 + text[digest.end(1) :])

    tagged = _pushed_commit(origin, tmp_path, another_model, "v9.0.0")
    runner = LocalRunner(
        tagged,
        tmp_path / "run",
        base_env=_base_env(),
        github=_github(tagged, "refs/tags/v9.0.0", "push"),
        secrets={"GITHUB_TOKEN": "fake-github-token"},
    )
    with pytest.raises(StepFailed) as failed:
        runner.run(project.path / ".github" / "workflows" / "cd.yml")
    message = str(failed.value)
    assert "at step 'The model is the one the tagged dvc.lock records" in message, message
    assert "is not the model the committed dvc.lock records for stage train" in message, message
    assert f"(md5 {'deadbeef' * 4})" in message, message
    assert not (runner.artifacts / "model").exists()


def test_an_unknown_action_fails_the_run(pushed: tuple[Project, Path], tmp_path: Path) -> None:
    """The local runner never passes a step it cannot run."""
    _, origin = pushed
    workflow = tmp_path / "odd.yml"
    workflow.write_text(
        "on: push\njobs:\n  odd:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: someone/something@0123456789abcdef0123456789abcdef01234567\n"
    )
    runner = LocalRunner(
        origin, tmp_path, base_env=_base_env(), github=_github(origin, "refs/heads/main", "push")
    )
    with pytest.raises(StepFailed, match="no local mapping for action 'someone/something'"):
        runner.run(workflow)
