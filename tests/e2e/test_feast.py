"""End to end with feature_store=feast: one project, reused by every test of this file.

The project is a default (`module`) one, committed, then moved to Feast by its own `make
update DATA=feature_store=feast` (the path issue 22 names for an existing project): no
conflict, and the files are those a project generated with feature_store=feast has. Then
`make setup`, `make pipeline` (the feature store's stages after prepare; every labelled row
trained on), its CI workflow run on a push (lint, the project's own tests: point in time,
training and serving agreeing; the pipeline from a fresh clone; the image's inputs), `make
serve` with predictions by entity id (a known one, an unknown one, a stale one), and `make
monitor` on the traffic that was served (the looked-up values logged); `make docker`'s image
(Podman), holding what lookups need and no more, answering by id as the project does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
import yaml

from harness import containers
from harness.gha import JobResult, LocalRunner, github_context
from harness.project import Project, bake_project, free_port, git, require, serving, tool_env

pytestmark = pytest.mark.e2e

AS_OF = "2026-01-01T00:00:00Z"  # within the sample's TTL (365 days) of its newest snapshot
LATER = "2028-01-01T00:00:00Z"  # past it: stale


def _tree(folder: Path) -> dict[str, str]:
    """Every file but git's own, by content."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(folder).parts
    }


@pytest.fixture(scope="module")
def updated(
    template_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Project, dict[str, str]]:
    """A default (`module`) project, committed, then `make update DATA=feature_store=feast`;
    its files right after the update."""
    folder = tmp_path_factory.mktemp("feast") / "my-model"
    project = bake_project(template_repo, folder)
    assert project.answers["feature_store"] == "module"
    git(folder, "init", "--quiet", "--initial-branch=main")
    project.commit("Generated with the default feature_store=module")

    result = project.run("make", "update", "DATA=feature_store=feast")
    said = result.stdout + result.stderr
    assert "Updated. Next: make setup" in said and "!!! CONFLICTS" not in said, said[-3000:]
    unmerged = git(folder, "diff", "--name-only", "--diff-filter=U").split()
    assert unmerged == [], unmerged
    project.answers = yaml.safe_load(project.read(".copier-answers.yml"))
    assert project.answers["feature_store"] == "feast"
    return project, _tree(folder)


@pytest.fixture(scope="module")
def project(updated: tuple[Project, dict[str, str]]) -> Project:
    """The updated project after `make setup` and `make pipeline`."""
    project, _ = updated
    project.run("make", "setup", timeout=900)
    project.run("make", "pipeline", timeout=900)
    return project


def test_the_update_gives_the_project_generated_with_feast(
    updated: tuple[Project, dict[str, str]], template_repo: Path, tmp_path: Path
) -> None:
    """Generating with feature_store=feast and updating a module project to it give the same
    files, byte for byte (so the generation path is this file's project too)."""
    _, files = updated
    generated = bake_project(template_repo, tmp_path / "my-model", feature_store="feast")
    expected = _tree(generated.path)
    assert set(files) == set(expected), (
        f"only updated: {sorted(set(files) - set(expected))}; "
        f"only generated: {sorted(set(expected) - set(files))}"
    )
    different = sorted(name for name in files if files[name] != expected[name])
    assert not different, f"different: {different}"
    assert "feature_repo/definitions.py" in files and "src/my_model/store/online.py" in files


def _facts(project: Project, code: str) -> object:
    """What ``code`` (Python, in the project's environment, pandas as pd) prints as JSON."""
    script = f"import json, pandas as pd\nprint(json.dumps({code}))"
    result = project.run(".venv/bin/python", "-c", script)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_pipeline_trains_on_every_labelled_row_through_the_store(project: Project) -> None:
    stages = yaml.safe_load(project.read("dvc.lock"))["stages"]
    assert ["feast -c feature_repo apply", "python -m my_model.store.materialize"] == stages[
        "feature_store"
    ]["cmd"]
    assert "my_model.store.training" in stages["features"]["cmd"]
    assert (project.path / "data/feast/store/online.db").is_file()
    for split in ("train", "test"):
        prepared, features = (
            f"pd.read_parquet('data/{f}/{split}.parquet')" for f in ("prepared", "features")
        )
        same = _facts(
            project,
            f"[len({prepared}), len({features}),"
            f" {prepared}['churned'].tolist() == {features}['churned'].tolist(),"
            f" {prepared}['age'].astype(float).tolist() == {features}['age'].tolist()]",
        )
        assert same[0] == same[1], f"{split}: a labelled row was dropped ({same})"
        assert same[2] and same[3], f"{split}: labels or stored values differ"
    metrics = json.loads(project.read("metrics/metrics.json"))
    assert metrics["accuracy"] > metrics["baseline_accuracy"]
    # Feast stays out of a project that did not choose it, and this one says where it is.
    assert "feast[duckdb]" in project.read("pyproject.toml")
    assert "docs/feature-store.md" in project.read("README.md")


def _ci_env() -> dict[str, str]:
    env = tool_env()
    # Whatever runs these tests (GitHub Actions included) must not leak into the jobs.
    for key in list(env):
        if key.startswith(("GITHUB_", "RUNNER_")) or key in {"DRY_RUN", "CI"}:
            del env[key]
    return env


def test_ci_passes_on_the_first_push(project: Project, tmp_path: Path) -> None:
    """The project committed as a user would after the update, pushed, and its CI workflow
    run job by job from fresh clones (harness/gha): its hooks, its own tests (the feature
    store's among them), the pipeline from the DVC-tracked sample rebuilt there, and the
    image's inputs (the model and the feature store the pipeline job filled)."""
    project.commit("feature_store=feast: the Feast feature store")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(project.path), str(origin))
    sha = git(origin, "rev-parse", "refs/heads/main").strip()
    push = {"repository": "octo/my-model", "ref": "refs/heads/main", "sha": sha}
    runner = LocalRunner(
        origin,
        tmp_path / "run",
        base_env=_ci_env(),
        github=github_context("push", **push, token="fake-github-token"),
        secrets={"GITHUB_TOKEN": "fake-github-token"},
    )
    results = runner.run(project.path / ".github" / "workflows" / "ci.yml")

    assert {job: result.result for job, result in results.items()} == {
        "lint": "success",
        "test": "success",
        "pipeline": "success",
        "container": "success",
    }
    tests = results["test"].step("Tests").output
    assert "tests/test_feature_store.py ...." in tests and " passed" in tests, tests[-3000:]
    assert " failed" not in tests, tests[-3000:]
    pipeline = results["pipeline"]
    data = pipeline.step("Data").output
    assert "data/raw/customers.csv: matches" in data, data
    ran = pipeline.step("Pipeline").output
    for stage in ("feature_source", "feature_store", "features", "train"):
        assert f"Running stage '{stage}'" in ran, ran[-3000:]
    assert "match this run" in pipeline.step("dvc.lock").output
    assert "### Metrics: this run against `origin/main`" in pipeline.summary, pipeline.summary
    assert (runner.artifacts / "model" / "model.joblib").is_file()
    store = runner.artifacts / "feature-store"
    assert (store / "online.db").is_file() and (store / "registry.db").is_file()
    build = results["container"].step("Build the image")
    assert "not run: no Docker engine" in build.note, build.note
    _retrain_proposes_nothing_new(project, origin, runner, sha)
    _cd_image_of_a_model_tag(project, origin, runner)


def _retrain_proposes_nothing_new(
    project: Project, origin: Path, runner: LocalRunner, sha: str
) -> None:
    """The retrain workflow on the same data: Feast's registry differs (each `feast apply`),
    the model does not, so the committed dvc.lock is kept and no pull request opened."""
    runner.github = github_context(
        "workflow_dispatch", repository="octo/my-model", ref="refs/heads/main", sha=sha
    )
    retrain = runner.run(project.path / ".github" / "workflows" / "retrain.yml")["retrain"]
    assert retrain.result == "success"
    kept = retrain.step("Keep the committed dvc.lock if only the feature store's registry changed")
    assert "dvc.lock kept as committed" in kept.output, kept.output
    proposal = retrain.step("Open (or update) the pull request").note
    assert proposal == "no change in add-paths: no pull request", proposal


def _cd_image_of_a_model_tag(project: Project, origin: Path, runner: LocalRunner) -> None:
    """CD on a model registration tag: its image job takes the model and the feature store
    from the model job's artifacts. The model job itself (make ci-data, make pipeline, make
    verify-model) is the CI pipeline job above once more, on the same commit: its artifacts,
    of the same names, stand in for it here."""
    project.run("make", "release-model")
    git(project.path, "push", "--quiet", str(origin), "--tags")
    tag = "refs/tags/my-model@v0.1.0"
    sha = git(origin, "rev-parse", f"{tag}^{{commit}}").strip()
    runner.github = github_context(
        "push", repository="octo/my-model", ref=tag, sha=sha, token="fake-github-token"
    )
    cd = project.path / ".github" / "workflows" / "cd.yml"
    image = runner.run(cd, jobs=["image"], results={"model": JobResult("model", "success")})
    assert image["image"].result == "success"
    assert (
        "artifact 'feature-store' -> data/feast/store"
        in image["image"].step("Download the feature store").note
    )
    tags_note = image["image"].step("Image name and tags").note
    assert "ghcr.io/octo/my-model:my-model-v0.1.0" in tags_note, tags_note
    assert "not run: no Docker engine" in image["image"].step("Build and push").note


def _predict(base: str, *records: dict) -> httpx.Response:
    return httpx.post(f"{base}/predict", json={"records": list(records)}, timeout=30)


def test_served_by_entity_id_then_monitored(project: Project) -> None:
    code = "pd.read_parquet('data/feast/source.parquet')['customer_id'].tail(250).tolist()"
    ids = [int(i) for i in _facts(project, code)]
    log = project.path / "logs" / "predictions"
    with serving(project) as server:
        base = server.url
        known = _predict(base, {"customer_id": ids[0], "event_timestamp": AS_OF})
        assert known.status_code == 200, known.text
        assert known.json()[0]["customer_id"] == ids[0]
        assert set(known.json()[0]["probabilities"]) == {"0", "1"}

        unknown = _predict(base, {"customer_id": 7, "event_timestamp": AS_OF})
        assert unknown.status_code == 400, unknown.text
        assert "customer_id 7 is not in the feature store" in unknown.text

        stale = _predict(base, {"customer_id": ids[0], "event_timestamp": LATER})
        assert stale.status_code == 400 and "stale" in stale.text, stale.text
        assert str(ids[0]) in stale.text

        # A record with every column is predicted from its own values, as before.
        example = json.loads(project.read("examples/request.json"))
        assert _predict(base, *example["records"]).status_code == 200

        # Enough traffic by id for the monitor's verdict (min_rows: 200).
        for start in range(0, len(ids), 50):
            batch = [{"customer_id": i, "event_timestamp": AS_OF} for i in ids[start : start + 50]]
            response = _predict(base, *batch)
            assert response.status_code == 200, response.text
    files = sorted(str(path) for path in log.rglob("*.parquet"))
    frame = f"pd.concat(pd.read_parquet(p) for p in {files!r})"
    rows, with_age = _facts(
        project,
        f"[int({frame}['customer_id'].isin({ids!r}).sum()),"
        f" int({frame}.loc[lambda f: f['customer_id'].isin({ids!r}), 'age'].notna().sum())]",
    )
    assert rows >= 250 and with_age == rows, "the looked-up values are not in the prediction log"

    monitored = project.run("make", "monitor", check=False)
    assert monitored.returncode in (0, 1), monitored.stdout + monitored.stderr
    output = monitored.stdout + monitored.stderr
    assert "Traceback" not in output, output[-3000:]
    assert "drift" in output.lower(), output[-3000:]


# What the image must hold (feast, for lookups) and must not (the pipeline's offline store,
# DVC, Evidently, the tests' tools).
IMAGE_PROBE = """
import importlib.util, json
print(json.dumps({m: importlib.util.find_spec(m) is not None
                  for m in ["feast", "duckdb", "dvc", "evidently", "pytest"]}))
"""


def test_the_image_serves_lookups_by_id(project: Project, tmp_path: Path) -> None:
    """`make docker` (Podman; the debootstrap base stands in for python:3.11-slim), then the
    image's own command (Buildah) answers a record by id as the project's service does, and
    an unknown id with a 400 naming it."""
    missing = containers.missing_tools()
    require(not missing, f"the image test needs {', '.join(missing)} (.ci/deps.d/podman.sh)")
    containers.ensure_base_image()
    ids = [int(i) for i in _facts(project, "pd.read_parquet('data/feast/source.parquet')"
                                           "['customer_id'].head(3).tolist()")]  # fmt: skip
    records = [{"customer_id": i, "event_timestamp": AS_OF} for i in ids]
    with serving(project) as server:
        expected = _predict(server.url, *records).json()

    ref = containers.make_docker(project, "localhost/feast-e2e")
    try:
        config = containers.image_config(ref)
        command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
        with containers.working_container(ref) as ctr:
            probe = containers.run(*containers.buildah_run(ctr, 3000, "python", "-c", IMAGE_PROBE))
            found = json.loads(probe.stdout)
            assert found == {"feast": True, "duckdb": False, "dvc": False, "evidently": False,
                             "pytest": False}, found  # fmt: skip
            port = free_port()
            run = containers.buildah_run(ctr, port, *command)
            with serving(project, run, port=port, timeout=180, check=False) as image:
                answer = _predict(image.url, *records)
                assert answer.status_code == 200, answer.text
                assert answer.json() == expected, "the image answers otherwise than the project"
                unknown = _predict(image.url, {"customer_id": 7, "event_timestamp": AS_OF})
                assert unknown.status_code == 400, unknown.text
                assert "customer_id 7 is not in the feature store" in unknown.text
            assert "Traceback" not in image.read_log(), image.read_log()[-4000:]
    finally:
        containers.remove_image(ref)
