"""End to end: generate a project and run its whole lifecycle for real.

copy -> make setup -> make lint sees the files not committed yet -> first commit (pre-commit
hooks run) -> make pipeline -> dvc repro is a no-op, and so is an unused model's param -> a
train param reruns train and evaluate only -> dvc exp run -> make tune ranks a two-point grid
-> make test -> make lint leaves git clean -> make serve + make predict + bad
requests -> clean stop -> make monitor flags the drifted batch, passes an undrifted one ->
dvc push -> git clone + dvc pull.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from harness.project import Project, git, run, serving

pytestmark = pytest.mark.e2e

JOURNEYS = [
    pytest.param({}, id="defaults"),
    pytest.param(
        {
            "project_name": "spend-forecast",
            # DVC reads ${...} in dvc.yaml, where the description goes: escaped there.
            "description": "Next quarter's spend; ${HOME} and $PATH stay as typed",
            "task": "regression",
            "model": "gradient_boosting",
            "python_version": "3.12",
        },
        id="regression-gradient-boosting-py312",
    ),
    pytest.param(
        {
            "project_name": "churn-linear",
            "model": "logistic_regression",
            "python_version": "3.13",
            "license": "Apache-2.0",
        },
        id="classification-logistic-py313",
    ),
]


def _python_env(version: str) -> dict[str, str]:
    """uv cannot download interpreters here: point it at pyenv's when the project wants one."""
    root = subprocess.run(
        ["pyenv", "root"], capture_output=True, text=True, check=False
    ).stdout.strip()
    candidates = sorted(Path(root, "versions").glob(f"{version}.*")) if root else []
    if not candidates:
        return {}
    return {"UV_PYTHON": str(candidates[-1] / "bin" / "python3")}


def _stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.mark.parametrize("answers", JOURNEYS)
def test_whole_lifecycle(bake, answers: dict[str, str], tmp_path: Path) -> None:
    project = bake(**answers)
    env = _python_env(project.answers["python_version"])
    _set_up(project, env, lint_untracked=not answers)
    project.commit("Initial commit")  # runs the pre-commit hooks on every generated file
    _pipeline(project, env)
    project.commit("Run the pipeline")
    _params_and_experiments(project, env)
    if not answers:  # the search runs the same DVC for every answer set: checked once
        _tune(project, env)

    # --- tests and lint ------------------------------------------------------------------------
    tests = project.run("make", "test", env=env)
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    if not answers:  # every hook on every file; the fast tests lint each answer set's render
        project.run("make", "lint", env=env)
        assert git(project.path, "status", "--porcelain").strip() == "", "make lint changed files"

    _serve_and_predict(project, env)
    # --- batch predictions ---------------------------------------------------------------
    batch = ["INPUT=data/current/customers.csv", "OUTPUT=reports/predictions.csv"]
    project.run("make", "predict-batch", *batch, env=env)
    assert len(project.read("reports/predictions.csv").splitlines()) == 1001
    _monitor(project, env)

    # --- dvc push, then a fresh clone gets data and model back -----------------------------------
    project.run("uv", "run", "dvc", "push", env=env)
    if not answers:  # the remote is the same local folder for every journey: checked once
        _clone_and_pull(project, env, tmp_path / "clone")


def _set_up(project: Project, env: dict[str, str], lint_untracked: bool) -> None:
    """make setup twice, the second a harmless no-op; before the first commit, make lint checks
    the files git does not track."""
    package = project.answers["package_name"]
    project.run("make", "setup", env=env)
    assert project.has_file("uv.lock") and project.has_file("data/raw/customers.csv.dvc")
    second = project.run("make", "setup", env=env)
    assert "data/raw/customers.csv: present" in second.stdout
    assert (project.path / ".git" / "hooks" / "pre-commit").exists()
    if not lint_untracked:
        return
    scratch = project.path / "src" / package / "scratch.py"
    scratch.write_text("value = undefined_name\n")
    unlinted = project.run("make", "lint", check=False, env=env)
    assert unlinted.returncode != 0, unlinted.stdout
    assert "F821" in unlinted.stdout, unlinted.stdout
    assert f"src/{package}/scratch.py:1:9" in unlinted.stdout, unlinted.stdout
    scratch.unlink()
    linted = project.run("make", "lint", env=env)
    assert re.search(r"^ruff check\.+Passed$", linted.stdout, re.M), linted.stdout


def _pipeline(project: Project, env: dict[str, str]) -> None:
    """make pipeline: every stage, a model better than the baseline, its plots and card; a
    second dvc repro does nothing."""
    task = project.answers["task"]
    first = project.run("make", "pipeline", env=env)
    assert _stages_run(first.stdout) == ["prepare", "features", "train", "evaluate", "model_card"]
    metrics = json.loads(project.read("metrics/metrics.json"))
    if task == "classification":
        assert metrics["accuracy"] > metrics["baseline_accuracy"]
    else:
        assert metrics["rmse"] < metrics["baseline_rmse"]
    for plot in [
        "plots/predictions.csv",
        "plots/roc.csv" if task == "classification" else "plots/residuals.csv",
        "plots/importance.csv",
        "plots/importance.svg",
        "plots/confusion_matrix.svg" if task == "classification" else "plots/residuals.svg",
        "metrics/details.json",
        "models/model_card.md",
    ]:
        assert project.has_file(plot), plot
    again = project.run("uv", "run", "dvc", "repro", env=env)
    assert _stages_run(again.stdout) == [], "a second dvc repro must do nothing"
    # The model's description as DVC reads it from dvc.yaml (escaped there, see copier.yml).
    artifacts = "Repo().artifacts.read()['dvc.yaml'].values()"
    read = f"from dvc.repo import Repo; print(*(a.desc for a in {artifacts}))"
    described = project.run("uv", "run", "python", "-c", read, env=env)
    assert described.stdout.strip() == project.answers["description"], described.stdout


def _params_and_experiments(project: Project, env: dict[str, str]) -> None:
    """An unused model's parameter retrains nothing, a train parameter reruns train and
    evaluate only; dvc exp run and apply, back to the committed model."""
    params = yaml.safe_load(project.read("params.yaml"))
    # Tuning a model that is not the chosen one retrains nothing (dvc.yaml lists the keys).
    chosen = params["train"]["model"]
    unused = params["train"][
        "gradient_boosting" if chosen != "gradient_boosting" else "random_forest"
    ]
    unused[next(iter(unused))] += 1
    (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    untouched = project.run("uv", "run", "dvc", "repro", env=env)
    assert _stages_run(untouched.stdout) == [], "an unused model's parameter must not retrain"
    params["train"]["seed"] = 7
    (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = project.run("uv", "run", "dvc", "repro", env=env)
    assert _stages_run(changed.stdout) == ["train", "evaluate", "model_card"]
    project.run("git", "checkout", "--", "params.yaml")
    project.run("uv", "run", "dvc", "checkout", env=env)
    model = project.answers["model"]
    knob = {"random_forest": "n_estimators=30", "gradient_boosting": "max_iter=50"}.get(
        model, "C=0.5"
    )
    experiment = project.run(
        "uv", "run", "dvc", "exp", "run", "-S", f"train.{model}.{knob}", env=env
    )
    assert _stages_run(experiment.stdout) == ["train", "evaluate", "model_card"]
    shown = project.run("uv", "run", "dvc", "exp", "show", "--no-pager", "--csv", env=env)
    assert knob.split("=")[1] in shown.stdout
    project.run("uv", "run", "dvc", "exp", "apply", "HEAD", env=env)  # back to the committed model
    project.run("uv", "run", "dvc", "checkout", env=env)
    assert git(project.path, "status", "--porcelain").strip() == ""


def _monitor(project: Project, env: dict[str, str]) -> None:
    """make monitor: too little traffic for a verdict, the drifted batch flagged (exit 1 from
    the monitor's own command), an undrifted one passed."""
    package = project.answers["package_name"]
    # The service logged what it answered (make predict's records): too few for a verdict.
    served = project.run("make", "monitor", env=env)
    assert "not enough traffic" in served.stderr
    drifted = project.run(
        "make", "monitor", "CURRENT=data/current/customers.csv", check=False, env=env
    )
    assert drifted.returncode != 0, drifted.stdout + drifted.stderr
    assert "DRIFT DETECTED" in drifted.stderr
    # make exits 2 for any failure; the monitor's own command says drift with 1.
    command = ("uv", "run", "python", "-m", f"{package}.monitoring")
    direct = project.run(*command, "--current", "data/current/customers.csv", check=False, env=env)
    assert direct.returncode == 1, direct.stderr[-3000:]
    assert project.has_file("reports/drift.html") and project.has_file("reports/drift.json")
    project.run(
        "uv",
        "run",
        "python",
        "-m",
        f"{package}.contract.sample_data",
        "reports/same.csv",
        "--rows",
        "800",
        "--seed",
        "11",
        "--no-target",
        env=env,
    )
    calm = project.run("make", "monitor", "CURRENT=reports/same.csv", env=env)
    assert "no drift" in calm.stderr


def _clone_and_pull(project: Project, env: dict[str, str], clone: Path) -> None:
    run("git", "clone", "--quiet", str(project.path), str(clone))
    cloned = Project(clone, project.answers)
    cloned.run("uv", "sync", env=env)
    cloned.run("uv", "run", "dvc", "pull", env=env)
    for name in ["data/raw/customers.csv", "data/current/customers.csv", "models/model.joblib"]:
        assert (clone / name).read_bytes() == (project.path / name).read_bytes(), name
    status = cloned.run("uv", "run", "dvc", "status", env=env)
    assert "up to date" in status.stdout


def _tune(project: Project, env: dict[str, str]) -> None:
    """make tune: a two-point grid through DVC's queue, both experiments ranked by accuracy as
    `dvc exp show` records them; the workspace untouched until the best is applied."""
    params = yaml.safe_load(project.read("params.yaml"))
    model = params["train"]["model"]
    key = f"train.{model}.n_estimators"
    params["tune"].update(method="grid", max_runs=2, space={key: [20, 40]})
    (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    tuned = project.run("make", "tune", env=env)
    ranked = re.findall(
        r"^.*\s(\d)\. (tune-\S+)  accuracy=(\S+)  n_estimators=(\d+)$", tuned.stderr, re.M
    )
    assert [place for place, *_ in ranked] == ["1", "2"], tuned.stderr
    assert sorted(trees for *_, trees in ranked) == ["20", "40"], tuned.stderr
    scores = [float(score) for _, _, score, _ in ranked]
    assert scores == sorted(scores, reverse=True), tuned.stderr
    best = ranked[0][1]
    assert f"keep the best: dvc exp apply {best}" in tuned.stderr or "none beats" in tuned.stderr
    assert git(project.path, "status", "--porcelain").split() == ["M", "params.yaml"]

    shown = project.run("uv", "run", "dvc", "exp", "show", "--no-pager", "--csv", env=env)
    rows = {row["Experiment"]: row for row in csv.DictReader(io.StringIO(shown.stdout))}
    for _, name, score, trees in ranked:
        assert rows[name]["State"] == "Success", rows[name]
        assert float(rows[name]["accuracy"]) == pytest.approx(float(score), abs=5e-4)
        assert rows[name][key] == trees
    project.run("git", "checkout", "--", "params.yaml")
    project.run("uv", "run", "dvc", "exp", "apply", best, env=env)
    applied = json.loads(project.read("metrics/metrics.json"))["accuracy"]
    assert applied == pytest.approx(float(ranked[0][2]), abs=5e-4)
    trees = yaml.safe_load(project.read("params.yaml"))["train"][model]["n_estimators"]
    assert trees == int(ranked[0][3])
    project.run("git", "checkout", "--", ".")  # back to the committed model
    project.run("uv", "run", "dvc", "checkout", env=env)
    assert git(project.path, "status", "--porcelain").strip() == ""


def _serve_and_predict(project: Project, env: dict[str, str]) -> None:
    # Stopped at the end of the block: on SIGTERM within 30 s, and no traceback in its log.
    with serving(project, env=env) as server:
        base, port = server.url, server.port
        answer = project.run("make", "predict", f"PORT={port}")
        predictions = json.loads(answer.stdout)
        request = json.loads(project.read("examples/request.json"))
        assert [p["customer_id"] for p in predictions] == [
            r["customer_id"] for r in request["records"]
        ]

        malformed = httpx.post(
            f"{base}/predict", content=b"{oops", headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code == 400
        wrong_type = httpx.post(
            f"{base}/predict", json={"records": [request["records"][0] | {"age": "old"}]}
        )
        assert wrong_type.status_code == 400
        assert ["records", 0, "age"] in [e["loc"] for e in wrong_type.json()["detail"]]
        assert httpx.get(f"{base}/livez").status_code == 200
        assert "bentoml_service_request" in httpx.get(f"{base}/metrics").text
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/livez", timeout=2)
