"""End to end: a project trains on the user's own table, and refuses bad tables cleanly.

Three real-shaped tables, each a whole journey (copy with dataset=file -> make setup ->
commit (pre-commit hooks run) -> make pipeline beats the dummy baseline -> make lint leaves
git clean -> [make serve + make predict] -> make monitor -> make test):
  - wine: multi-class, string labels, a categorical column, missing values, an id, harvest
    dates whose newest rows lack a class (CSV): the shift warning, per-class metrics,
    importance, the model card, and labels with the missing class monitored; with
    feature_store=feast, keyed by its text id and its dates: records served by id alone;
  - diabetes: regression with a timestamp column (parquet): split by time;
  - penguins: awkward column names (spaces, parentheses, a leading digit, non-ASCII, a colon,
    quotes) and non-ASCII labels (.csv.gz): names kept on the wire and in the OpenAPI.
In a default project (on the sample), bad tables given to `make adopt-data` get one line on
stderr, exit 2 and change nothing; then a good one (breast cancer biopsies: 0/1 classes, a
date column in a CSV) replaces the sample: the project is then file for file the one generated
from that table, docs/data.md's undo brings the sample back, and after adopting it again the
pipeline and the tests run on it. A bad answered file
makes `make setup` fail the same way, writing nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from harness.project import Project, Server, bake_project, git, run, serving, tool_env
from harness.readme import bash_blocks, commands, section

pytestmark = pytest.mark.e2e

WINE_LABELS = {"barbera", "barolo", "grignolino"}
PENGUIN_LABELS = {"Adélie", "Chinstrap", "Gentoo"}
AWKWARD = ["Bill Length (mm)", "2nd_score", "région", "ratio: depth/length", 'keeper\'s "tag"']
PENGUIN_ID = "N° dossier"

# Writes the good tables with the same stack a user's notebook would have (the template's
# own environment has no pandas): scikit-learn's bundled data sets, or data made here.
MAKE_TABLES = r"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

out = Path(sys.argv[1])
rng = np.random.default_rng(7)

# (a) wine: three cultivars as words, a region that tells them apart only in part, gaps.
wine = load_wine(as_frame=True)
frame = wine.frame.drop(columns="target")
n = len(frame)
classes = wine.target.to_numpy()
regions = np.array(["Langhe", "Roero", "Monferrato"])
region = np.where(rng.random(n) < 0.6, regions[classes], rng.choice(regions, n)).astype(object)
region[rng.random(n) < 0.08] = None
frame.insert(0, "region", region)
frame.insert(0, "wine_id", [f"W-{i:04d}" for i in rng.permutation(n)])
frame.loc[rng.random(n) < 0.08, "magnesium"] = np.nan
frame.loc[rng.random(n) < 0.05, "hue"] = np.nan
frame["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[classes]
# Harvest dates: the class mix shifts over time (grignolino later, barbera earlier), and the
# newest fifth, the test split, has no barbera at all.
late = {"grignolino": 0.15, "barbera": -1.0}
rank = np.random.default_rng(11).random(n) + frame["cultivar"].map(late).fillna(0).to_numpy()
days = pd.to_timedelta(3 * np.argsort(np.argsort(rank)), unit="D")
frame.insert(1, "harvest_date", (pd.Timestamp("2016-09-01") + days).strftime("%Y-%m-%d"))
frame = frame.sample(frac=1, random_state=1).reset_index(drop=True)
frame.loc[n - 1, "magnesium"] = np.nan  # the example request's last record has gaps
frame.loc[n - 1, "region"] = None
frame.to_csv(out / "Wine Cellar.csv", index=False)

# (b) diabetes: disease progression a year on, one visit every 17 hours.
diabetes = load_diabetes(as_frame=True, scaled=False)
frame = diabetes.frame.rename(columns={"target": "progression"})
frame.insert(0, "visit_time", pd.date_range("2022-01-03 08:00", periods=len(frame), freq="17h"))
frame.to_parquet(out / "diabetes visits.parquet", index=False)

# (c) penguins with awkward column names and accented labels.
n = 400
species = rng.choice(["Adélie", "Gentoo", "Chinstrap"], n, p=[0.45, 0.35, 0.2])
pick = lambda table: np.array([table[s] for s in species])  # noqa: E731
length = pick({"Adélie": 38.8, "Gentoo": 47.5, "Chinstrap": 48.8}) + rng.normal(0, 2.5, n)
depth = pick({"Adélie": 18.3, "Gentoo": 15.0, "Chinstrap": 18.4}) + rng.normal(0, 0.9, n)
places = ["Île-de-France", "Bretagne", "Provence-Alpes-Côte d'Azur"]
home = pick(dict(zip(["Adélie", "Gentoo", "Chinstrap"], places)))
others = rng.choice(places, n)
frame = pd.DataFrame(
    {
        "N° dossier": [f"P{i:04d}" for i in range(n)],
        "Bill Length (mm)": length.round(1),
        "2nd_score": rng.poisson(pick({"Adélie": 3, "Gentoo": 6, "Chinstrap": 9})),
        "région": np.where(rng.random(n) < 0.5, home, others),
        "ratio: depth/length": (depth / length).round(4),
        'keeper\'s "tag"': rng.choice(["red", "blue", "green"], n),
        "espèce": species,
    }
)
frame.loc[rng.random(n) < 0.05, "Bill Length (mm)"] = np.nan
frame.loc[n - 1, "Bill Length (mm)"] = np.nan
frame.to_csv(out / "manchots données.csv.gz", index=False)

# (d) for make adopt-data: classes written 0/1, dates as ISO text, names with spaces.
cancer = load_breast_cancer(as_frame=True)
frame = cancer.frame.rename(columns={"target": "benign"})
days = pd.date_range("2019-03-01", periods=len(frame), freq="D")
frame.insert(0, "diagnosed on", days.strftime("%Y-%m-%d"))
frame.to_csv(out / "biopsies.csv", index=False)
"""


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tables")
    run(
        *("uv", "run", "--no-project", "--quiet"),
        *("--with", "scikit-learn", "--with", "pandas>=2.2,<3", "--with", "pyarrow"),
        *("python", "-c", MAKE_TABLES, str(folder)),
        cwd=folder,
        env=tool_env(),
    )
    return folder


# --- helpers ------------------------------------------------------------------------------------


def _schema(project: Project) -> dict[str, dict]:
    return yaml.safe_load(project.read("schema.yaml"))["columns"]


def _role(project: Project, role: str) -> list[str]:
    return [name for name, column in _schema(project).items() if column["role"] == role]


def _check_adopted(project: Project, source: Path, raw_name: str) -> None:
    """make setup copied the file into data/raw, tracked it, and wrote what depends on it."""
    raw = project.path / "data" / "raw" / raw_name
    assert raw.read_bytes() == source.read_bytes()
    assert project.has_file(f"data/raw/{raw_name}.dvc")
    git(project.path, "check-ignore", "--quiet", f"data/raw/{raw_name}")  # DVC's, not git's
    params = yaml.safe_load(project.read("params.yaml"))
    assert params["data"] == {
        "raw": f"data/raw/{raw_name}",
        "current": "data/prepared/test.parquet",
    }
    columns = _schema(project)
    with (project.path / "tests/fixtures/data.csv").open(newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == list(columns)
    records = json.loads(project.read("examples/request.json"))["records"]
    # Every column but the target: whichever columns the features read, the example has them.
    sent = {name for name, column in columns.items() if column["role"] != "target"}
    assert records and all(set(r) == sent for r in records)


def _journey(
    project: Project,
    serve: Callable[[Project, Server], None] | None = None,
    lint: bool = False,
) -> None:
    """commit, pipeline, [lint], [serve], monitor, test: the lifecycle on the adopted table.
    The commits run the pre-commit hooks on every file ingest and the pipeline wrote; `make
    lint` (every hook on every file) once more only where asked (the awkward names)."""
    project.commit("Adopt the data")  # the pre-commit hooks accept what ingest wrote
    project.run("make", "pipeline")
    metrics = json.loads(project.read("metrics/metrics.json"))
    if "accuracy" in metrics:
        assert metrics["accuracy"] > metrics["baseline_accuracy"], metrics
    else:
        assert metrics["rmse"] < metrics["baseline_rmse"], metrics
    project.commit("Run the pipeline")
    if lint:
        project.run("make", "lint")
        assert git(project.path, "status", "--porcelain").strip() == "", "make lint changed files"

    if serve is not None:
        with serving(project) as server:  # then a clean stop, no traceback
            serve(project, server)
    _monitor(project)

    # Where make serve ran, the project's own real-HTTP test would only repeat it.
    quicker = {"PYTEST_ADDOPTS": "-m 'not integration'"} if serve is not None else None
    tests = project.run("make", "test", env=quicker)
    assert git(project.path, "status", "--porcelain").strip() == ""
    assert " passed" in tests.stdout and "failed" not in tests.stdout, tests.stdout[-3000:]


def _predict(project: Project, port: int) -> tuple[list[dict], list[dict]]:
    """`make predict`: the example records and the service's answer to them."""
    answer = project.run("make", "predict", f"PORT={port}")
    records = json.loads(project.read("examples/request.json"))["records"]
    return records, json.loads(answer.stdout)


def _check_classes(predictions: list[dict], labels: set[str]) -> None:
    for prediction in predictions:
        assert prediction["prediction"] in labels, prediction
        assert set(prediction["probabilities"]) == labels, prediction
        assert sum(prediction["probabilities"].values()) == pytest.approx(1)


def _monitor(project: Project) -> None:
    """`make monitor` of data.current exits 0 (no drift) or 1 (drift), with a report on the
    feature columns. These tables' held-out parts are below the default monitor.min_rows
    ("not enough traffic"), so the test lowers it, as a user of a small table would."""
    original = project.read("params.yaml")
    params = yaml.safe_load(original)
    params["monitor"]["min_rows"] = 20
    (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        result = project.run("make", "monitor", f"CURRENT={params['data']['current']}", check=False)
    finally:
        (project.path / "params.yaml").write_text(original)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-4000:]
    assert project.has_file("reports/drift.json"), output[-4000:]
    report = json.loads(project.read("reports/drift.json"))
    if result.returncode == 0:
        assert report["drift_detected"] is False, output[-4000:]
    else:  # make says how its command failed: exit 1 is drift, anything else a crash
        assert re.search(r"make: \*\*\* \[\S+ monitor\] Error 1$", result.stderr, re.M), output
        assert report["drift_detected"] is True
    columns = _schema(project)
    watched = {n for n, c in columns.items() if c["role"] == "feature" and c["kind"] != "timestamp"}
    assert set(report["columns"]) == watched
    assert project.has_file("reports/drift.html")


# --- 1. three tables, three journeys --------------------------------------------------------------


def test_multiclass_csv_with_labels_categories_gaps_and_an_id(bake, tables: Path) -> None:
    source = tables / "Wine Cellar.csv"
    project = bake(
        project_name="wine-cultivar",
        dataset="file",
        dataset_path=str(source),
        target_column="cultivar",
        id_column="wine_id",
        timestamp_column="harvest_date",
        feature_store="feast",
    )
    setup = project.run("make", "setup")
    assert "adopted" in setup.stderr, setup.stderr[-3000:]
    _check_adopted(project, source, "Wine_Cellar.csv")
    columns = _schema(project)
    assert columns["cultivar"] == {
        "kind": "category",
        "role": "target",
        "nullable": False,
        "categories": sorted(WINE_LABELS),
    }
    assert columns["wine_id"]["role"] == "id"
    assert columns["harvest_date"]["role"] == "timestamp"
    assert columns["region"]["kind"] == "category" and columns["region"]["nullable"] is True
    assert columns["region"]["role"] == "feature"
    assert columns["magnesium"]["kind"] == "integer" and columns["magnesium"]["nullable"] is True
    assert columns["hue"]["kind"] == "float" and columns["hue"]["nullable"] is True

    def serve(project: Project, server: Server) -> None:
        records, predictions = _predict(project, server.port)
        assert records[-1]["magnesium"] is None and records[-1]["region"] is None  # gaps served
        assert [p["wine_id"] for p in predictions] == [r["wine_id"] for r in records]
        _check_classes(predictions, WINE_LABELS)
        # The feature store (Feast): each record by its text id and time alone is answered
        # as the whole record is; an id it does not hold is a 400 naming it.
        by_id = [{"wine_id": r["wine_id"], "harvest_date": r["harvest_date"]} for r in records]
        answer = httpx.post(f"{server.url}/predict", json={"records": by_id}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json() == predictions
        unknown = httpx.post(
            f"{server.url}/predict", json={"records": [{**by_id[0], "wine_id": "W-none"}]}
        )
        assert unknown.status_code == 400 and "'W-none' is not in the feature store" in unknown.text

    _journey(project, serve)
    _explained(project)
    _monitor_labels_with_a_class_the_test_split_lacks(project)


def _explained(project: Project) -> None:
    """The newest wines (the test split) have no barbera and more grignolino: the pipeline
    warns with the figures, keeps barbera's F1 out of the mean (no test row, none predicted
    there), and writes the importance, its images and the model card."""
    details = json.loads(project.read("metrics/details.json"))
    assert details["distribution"]["test"]["classes"].keys() == {"barolo", "grignolino"}
    assert details["per_class"]["barbera"]["support"] == 0, details["per_class"]
    shift = details["target_shift"]
    assert shift["shifted"] and shift["absent_from_test"] == ["barbera"], shift
    metrics = json.loads(project.read("metrics/metrics.json"))
    assert metrics["target_shift"] == pytest.approx(shift["score"])
    present = [s["f1"] for s in details["per_class"].values() if s["f1"] is not None]
    assert metrics["f1"] == pytest.approx(sum(present) / len(present)), details["per_class"]
    assert {row["feature"] for row in details["importance"]} == set(details["features"])
    for image in ("confusion_matrix", "roc", "importance"):
        assert project.read(f"plots/{image}.svg").startswith("<svg"), image
    card = project.read("models/model_card.md")
    dvc_file = yaml.safe_load(project.read("data/raw/Wine_Cellar.csv.dvc"))
    assert f"md5 `{dvc_file['outs'][0]['md5']}`" in card, card[:3000]
    assert card.startswith("# Model card: wine-cultivar") and "## Intended use" in card
    assert "**Warning:** the test split's target differs" in card and "barbera" in card
    # The warning is in the stage's output too, with its figures; a rerun keeps the user's
    # part of the card (docs/model_card_intro.md) and rewrites the rest.
    intro = project.path / "docs" / "model_card_intro.md"
    intro.write_text(intro.read_text().replace("Who uses the predictions", "Sommeliers use it"))
    rerun = project.run("uv", "run", "dvc", "repro", "--force", "evaluate", "model_card")
    logged = rerun.stdout + rerun.stderr
    assert "the test split's target differs from training's" in logged, logged[-3000:]
    assert "'barbera'" in logged and "no test row of class(es) barbera" in logged, logged
    assert "Sommeliers use it" in project.read("models/model_card.md")
    git(project.path, "checkout", "--", "docs/model_card_intro.md")
    project.run("uv", "run", "dvc", "repro")


MAKE_LABELLED = r"""
import pandas as pd
train = pd.read_parquet("data/prepared/train.parquet")
test = pd.read_parquet("data/prepared/test.parquet")
batch = pd.concat([test, train[train["cultivar"] == "barbera"].head(15)], ignore_index=True)
batch.to_csv("reports/labelled.csv", index=False)
print(len(batch))
"""


def _monitor_labels_with_a_class_the_test_split_lacks(project: Project) -> None:
    """Labels with barbera, which the test split (the quality reference) lacks: Evidently
    raised a KeyError there; now a quality report, exit 0 or 1, no traceback."""
    (project.path / "reports").mkdir(exist_ok=True)
    project.run("uv", "run", "python", "-c", MAKE_LABELLED)
    package = project.answers["package_name"]
    result = project.run(
        *("uv", "run", "python", "-m", f"{package}.monitoring"),
        *("--current", "reports/labelled.csv"),
        "--min-rows",
        "20",
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode in {0, 1} and "Traceback" not in output, output[-4000:]
    assert "UndefinedMetricWarning" not in output, output[-4000:]
    report = json.loads(project.read("reports/drift.json"))
    assert result.returncode == int(report["drift_detected"] or report["quality"]["degraded"])
    quality = report["quality"]
    assert quality["classes"]["not_in_test_split"] == ["barbera"], quality["classes"]
    assert quality["per_class"]["current"]["barbera"]["support"] == 15
    assert "class(es) in the labels but not in the test split: barbera" in output, output
    html = project.read("reports/quality.html")
    assert "cultivar" in html and len(html) > 10_000


def test_regression_parquet_split_by_its_timestamp(bake, tables: Path) -> None:
    source = tables / "diabetes visits.parquet"
    project = bake(
        project_name="diabetes-progression",
        dataset="file",
        dataset_path=str(source),
        target_column="progression",
        timestamp_column="visit_time",
        task="regression",
        model="ridge",
    )
    project.run("make", "setup")
    _check_adopted(project, source, "diabetes_visits.parquet")
    columns = _schema(project)
    assert columns["visit_time"] == {"kind": "timestamp", "role": "timestamp", "nullable": False}
    # Whole numbers in a float column: an integer target, still a number to regress on.
    assert columns["progression"] == {"kind": "integer", "role": "target", "nullable": False}
    assert columns["bmi"]["kind"] == "float" and columns["sex"]["kind"] == "integer"
    assert set(_role(project, "feature")) == {
        "age",
        "sex",
        "bmi",
        "bp",
        *(f"s{i}" for i in range(1, 7)),
    }

    _journey(project)
    # The newest fifth is the test set: every test visit comes after every training visit.
    script = (
        "import pandas as pd; t = pd.read_parquet('data/prepared/{}.parquet')['visit_time'];"
        "print(t.{}().isoformat(), len(t))"
    )
    last_train = project.run("uv", "run", "python", "-c", script.format("train", "max")).stdout
    first_test = project.run("uv", "run", "python", "-c", script.format("test", "min")).stdout
    assert last_train.split()[0] < first_test.split()[0]
    assert int(first_test.split()[1]) == round(442 * 0.2)


def test_awkward_column_names_are_kept_on_the_wire(bake, tables: Path) -> None:
    source = tables / "manchots données.csv.gz"
    project = bake(
        project_name="penguins",
        dataset="file",
        dataset_path=str(source),
        target_column="espèce",
        id_column=PENGUIN_ID,
        model="logistic_regression",
    )
    project.run("make", "setup")
    _check_adopted(project, source, "manchots_donn_es.csv.gz")
    assert _role(project, "feature") == AWKWARD
    assert _schema(project)["espèce"]["categories"] == sorted(PENGUIN_LABELS)

    def serve(project: Project, server: Server) -> None:
        base = server.url
        records, predictions = _predict(project, server.port)
        assert list(records[0]) == [PENGUIN_ID, *AWKWARD]
        assert records[-1]["Bill Length (mm)"] is None
        assert [p[PENGUIN_ID] for p in predictions] == [r[PENGUIN_ID] for r in records]
        _check_classes(predictions, PENGUIN_LABELS)

        openapi = httpx.get(f"{base}/docs.json").json()
        fields = {
            name
            for schema in openapi["components"]["schemas"].values()
            for name in schema.get("properties", {})
        }
        assert {PENGUIN_ID, *AWKWARD} <= fields, sorted(fields)
        # A wrong value is named by its column's own name.
        wrong = httpx.post(
            f"{base}/predict", json={"records": [records[0] | {"2nd_score": "many"}]}
        )
        assert wrong.status_code == 400
        assert ["records", 0, "2nd_score"] in [e["loc"] for e in wrong.json()["detail"]]

    _journey(project, serve, lint=True)


# --- 2 and 3. make adopt-data in a project generated on the sample ------------------------------


@pytest.fixture(scope="module")
def sample_project(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The default project after `make setup` and a first commit: it trains on the sample."""
    project = bake_project(template_repo, tmp_path_factory.mktemp("sample") / "my-model")
    project.run("make", "setup")
    project.commit("Initial commit")
    return project


def _files(project: Project) -> dict[str, str]:
    """The digest of every file but git's, the venv's and bytecode."""
    digests = {}
    for path in sorted(project.path.rglob("*")):
        parts = path.relative_to(project.path).parts
        if parts[0] in {".git", ".venv"} or "__pycache__" in parts or not path.is_file():
            continue
        digests["/".join(parts)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def _state(project: Project) -> tuple[str, dict[str, str]]:
    return git(project.path, "status", "--porcelain", "--untracked-files=all"), _files(project)


def _refused(result: subprocess.CompletedProcess[str], package: str, message: str) -> None:
    """The command failed with exit 2 and one log line: `... ERROR <pkg>.settings: message`."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-4000:]
    assert result.returncode == 2, output[-4000:]
    # make exits 2 whenever a command fails; its own line says the command's exit code.
    assert re.search(r"^make: \*\*\* \[.*\] Error 2$", result.stderr, re.M), result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr
    assert re.fullmatch(rf"\S+ \S+ ERROR {package}\.settings: (.*)", errors[0]), errors[0]
    assert errors[0].split(f"ERROR {package}.settings: ", 1)[1] == message


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


HEADER = ["id", "age", "plan", "signup", "label"]


def _rows(count: int = 60) -> list[list[object]]:
    plans = ["basic", "standard", "premium"]
    return [
        [100 + i, 20 + i % 50, plans[i % 3], f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", i % 2]
        for i in range(count)
    ]


def _missing(folder: Path) -> tuple[dict[str, str], str]:
    path = folder / "nowhere.csv"
    return {
        "FILE": str(path),
        "TARGET": "label",
    }, f"{path} not found (a relative path is read from the project folder)"


def _empty(folder: Path) -> tuple[dict[str, str], str]:
    path = folder / "empty.csv"
    path.write_text("")
    return {"FILE": str(path), "TARGET": "label"}, f"{path} is empty"


def _header_only(folder: Path) -> tuple[dict[str, str], str]:
    path = _write_csv(folder / "header.csv", HEADER, [])
    return {"FILE": str(path), "TARGET": "label"}, f"{path} has no rows"


def _no_such_target(folder: Path) -> tuple[dict[str, str], str]:
    path = _write_csv(folder / "table.csv", HEADER, _rows())
    return (
        {"FILE": str(path), "TARGET": "churn"},
        "target column 'churn' not found; the columns are: id, age, plan, signup, label",
    )


def _one_class(folder: Path) -> tuple[dict[str, str], str]:
    rows = [[*row[:4], 1] for row in _rows()]
    path = _write_csv(folder / "one-class.csv", HEADER, rows)
    return {
        "FILE": str(path),
        "TARGET": "label",
    }, "target 'label' has one class (1): nothing to learn"


def _too_many_classes(folder: Path) -> tuple[dict[str, str], str]:
    path = _write_csv(
        folder / "spend.csv", HEADER, [[*r[:4], 7 * i] for i, r in enumerate(_rows(300))]
    )
    return (
        {"FILE": str(path), "TARGET": "label"},
        "target 'label' has 300 distinct values, too many classes for classification (at most "
        "100); for a number to predict, generate the project with task=regression",
    )


def _bad_timestamp(folder: Path) -> tuple[dict[str, str], str]:
    rows = _rows()
    rows[2][3] = "next tuesday"
    path = _write_csv(folder / "dates.csv", HEADER, rows)
    return (
        {"FILE": str(path), "TARGET": "label", "TIMESTAMP": "signup"},
        "timestamp column 'signup' does not parse as dates (e.g. 'next tuesday' in row 3)",
    )


def _duplicate_columns(folder: Path) -> tuple[dict[str, str], str]:
    path = _write_csv(folder / "twice.csv", ["id", "age", "plan", "age", "label"], _rows())
    return {"FILE": str(path), "TARGET": "label"}, f"{path}: duplicate column name(s): age"


def _duplicate_ids(folder: Path) -> tuple[dict[str, str], str]:
    rows = _rows()
    rows[8][0] = rows[3][0]
    path = _write_csv(folder / "ids.csv", HEADER, rows)
    return (
        {"FILE": str(path), "TARGET": "label", "ID": "id"},
        "id column 'id' has duplicate values (e.g. 103 in rows 4, 9)",
    )


BAD_INPUTS = [
    pytest.param(_missing, id="missing-file"),
    pytest.param(_empty, id="empty-file"),
    pytest.param(_header_only, id="header-only"),
    pytest.param(_no_such_target, id="no-such-target"),
    pytest.param(_one_class, id="one-class"),
    pytest.param(_too_many_classes, id="hundreds-of-classes"),
    pytest.param(_bad_timestamp, id="timestamp-does-not-parse"),
    pytest.param(_duplicate_columns, id="duplicate-column-names"),
    pytest.param(_duplicate_ids, id="duplicate-ids"),
]


@pytest.mark.parametrize("bad_input", BAD_INPUTS)
def test_adopt_data_refuses_a_bad_table_and_changes_nothing(
    sample_project: Project, bad_input: Callable, tmp_path: Path
) -> None:
    variables, message = bad_input(tmp_path)
    before = _state(sample_project)
    result = sample_project.run(
        "make", "adopt-data", *(f"{k}={v}" for k, v in variables.items()), check=False
    )
    _refused(result, sample_project.answers["package_name"], message)
    assert _state(sample_project) == before


# What may differ between a sample project after make adopt-data and a project generated from
# the same file: the lock (resolved at each make setup), DVC's own working files and the tools'
# caches (git ignores them). The README and docs/ are compared: adopt-data does not render them
# again, so what they say holds for the sample and for a file alike.
NOT_COMPARED = (
    "uv.lock",
    ".dvc/tmp/",
    ".dvc/cache/",
    ".ruff_cache/",
    ".pytest_cache/",
)


def _compared(project: Project) -> dict[str, str]:
    return {k: v for k, v in _files(project).items() if not k.startswith(NOT_COMPARED)}


def _undo_adoption(project: Project) -> None:
    """docs/data.md's way to undo a `make adopt-data` not yet committed, as written."""
    undo = section(project.read("docs/data.md"), "Undo a `make adopt-data`")
    venv = {"PATH": f"{project.path / '.venv' / 'bin'}:{tool_env()['PATH']}"}
    for command in commands(bash_blocks(undo)[0]):
        project.run("bash", "-c", command.text, env=venv)


def test_adopt_data_replaces_the_sample(sample_project: Project, tables: Path, bake) -> None:
    """After the bad tables: a good one, timestamped, classes written 0/1. The project is then
    the one copier copy generates from that file; docs/data.md's undo puts the sample back; then
    the pipeline and the tests on the adopted file."""
    project = sample_project
    source = tables / "biopsies.csv"
    before = _state(project)  # committed: git status is clean
    variables = [f"FILE={source}", "TARGET=benign", "TIMESTAMP=diagnosed on"]
    adopted = project.run("make", "adopt-data", *variables)
    assert "data/raw/customers.csv is no longer tracked" in adopted.stderr, adopted.stderr
    assert "prepare.gap_days: 90 -> 0" in adopted.stderr, adopted.stderr
    _check_adopted(project, source, "biopsies.csv")

    # The same settings, features and files as a project generated from that file.
    generated = bake(
        dataset="file",
        dataset_path=str(source),
        target_column="benign",
        timestamp_column="diagnosed on",
    )
    generated.run("make", "setup")
    ours, theirs = _compared(project), _compared(generated)
    differ = sorted(
        name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name)
    )
    assert not differ, differ

    _undo_adoption(project)
    assert _state(project)[0] == before[0]  # git status: as before the adoption
    back = {k: v for k, v in before[1].items() if not k.startswith(NOT_COMPARED)}
    assert _compared(project) == back  # the sample's files and data, byte for byte
    project.run("make", "adopt-data", *variables)

    assert _role(project, "timestamp") == ["diagnosed on"] and _role(project, "id") == []
    assert len(_role(project, "feature")) == 30
    for old in ["data/raw/customers.csv", "data/current/customers.csv"]:
        # Neither tracked by DVC nor left behind unignored, for `git add` to commit to git.
        assert not project.has_file(f"{old}.dvc") and not project.has_file(old), old
    project.commit("Train on the biopsies")
    assert git(project.path, "ls-files", "data/raw", "data/current").split() == [
        "data/raw/.gitignore",
        "data/raw/biopsies.csv.dvc",
    ]
    again = project.run("make", "setup")  # setup now keeps the adopted data: no sample again
    assert "data/raw/biopsies.csv: present" in again.stdout
    assert git(project.path, "status", "--porcelain").strip() == ""

    pipeline = project.run("make", "pipeline")
    assert "engineered features left out" not in pipeline.stderr  # no sample features to skip
    assert "0 rows left out" in pipeline.stderr, pipeline.stderr  # gap_days 0, as generated
    metrics = json.loads(project.read("metrics/metrics.json"))
    assert metrics["accuracy"] > metrics["baseline_accuracy"], metrics
    tests = project.run("make", "test")
    assert " passed" in tests.stdout and "failed" not in tests.stdout, tests.stdout[-3000:]


def test_make_setup_refuses_a_bad_answered_file(bake, tmp_path: Path) -> None:
    rows = [[i, 20 + i % 40, "cheap" if i == 5 else 10.0 * i] for i in range(50)]
    source = _write_csv(tmp_path / "prices.csv", ["id", "rooms", "price"], rows)
    project = bake(
        project_name="house-prices",
        dataset="file",
        dataset_path=str(source),
        target_column="price",
        id_column="id",
        task="regression",
    )
    before = _files(project)  # not yet a git repository: make setup makes it one
    result = project.run("make", "setup", check=False)
    _refused(
        result,
        project.answers["package_name"],
        "target 'price' is not numeric (e.g. 'cheap'): regression needs numbers",
    )
    # make setup ran git init and uv sync (uv.lock) before the check; ingest wrote nothing.
    after = _files(project)
    assert {name: digest for name, digest in after.items() if name != "uv.lock"} == before
    assert not project.has_file("schema.yaml") and not (project.path / "data/raw").exists()
    assert not project.has_file("tests/fixtures/data.csv")
