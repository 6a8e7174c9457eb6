"""Adopt a data file: check it, infer its schema, and make it the project's training data.

``make setup`` runs this for the file answered at ``copier copy``; ``make adopt-data
FILE=... TARGET=...`` for any other, also in a project that started on the sample.
Every check runs before anything is written, so a bad file leaves the project as it was.
Then it writes:

- ``data/raw/<file name>``: a copy of the file, tracked by DVC (``dvc add``);
- ``schema.yaml``: the inferred contract (kinds, nullability, categories and ranges, roles;
  excluded columns with the reason: constant, free text, a row index, a likely leak), to review;
- ``params.yaml``: ``data.raw`` (what the prepare stage reads), ``data.current`` and
  ``prepare.gap_days`` (0: the new table's horizon is yours to set), comments kept;
- ``tests/fixtures/data.csv``: a small sample the project's tests run on, without DVC;
- ``examples/request.json``: real rows of the data, every column but the target, for
  ``make predict`` (so it stays valid whichever columns a feature reads);
- ``data/dataset.yml`` (and the answers in ``.copier-answers.yml``): the file and its roles,
  as ``copier copy`` records them for a project generated from that file.

Adopting a file in a project on the bundled sample also removes what only the sample had
(``sample_data.py``, with its engineered features, ``tests/test_sample.py`` and the sample's
data): the project is then the one ``copier copy`` would generate from the file.

    python -m <package>.ingest FILE --target COLUMN [--id COLUMN] [--timestamp COLUMN]
    python -m <package>.ingest --fixture   # only redraw the test fixture from data.raw
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .schema import (
    NA_TOKENS,
    Column,
    Schema,
    load_schema,
    read_table,
    validate,
    write_schema,
)
from ..settings import PARAMS_FILE, TASK, UserError, load_params, run_cli

log = logging.getLogger(__name__)

RAW_DIR = Path("data/raw")
FIXTURE = Path("tests/fixtures/data.csv")
EXAMPLE = Path("examples/request.json")
FIXTURE_ROWS = 1000
EXAMPLE_ROWS = 2
MAX_CLASSES = 100  # more distinct target values than this is a regression target
MAX_CATEGORIES = 200  # a text column with more distinct values is free text, not a category
# A column that alone predicts the target this well on held-out rows (balanced accuracy
# adjusted for chance, or R²) is a likely leak; judged on a sample, cheap on a million rows.
LEAK_SCORE = 0.9  # a near-copy (|correlation| 0.96) scores 0.92; real features seen: < 0.8
PROBE_ROWS = 30_000
DATASET_FILE = Path("data/dataset.yml")
ANSWERS_FILE = Path(".copier-answers.yml")


def read_source(path: Path) -> pd.DataFrame:
    """Read the user's file for inference, refusing duplicate or empty column names."""
    if not path.is_file():
        raise UserError(f"{path} not found (a relative path is read from the project folder)")
    suffix = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".csv" or suffix == ".csv.gz":
        try:
            with pd.io.common.get_handle(path, "r", compression="infer") as handle:
                header = next(csv.reader(handle.handle), [])
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read {path}: {error}") from None
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise UserError(f"{path}: duplicate column name(s): {', '.join(duplicates)}")
        if any(not name.strip() for name in header):
            raise UserError(f"{path}: a column has no name (an empty header cell)")
        try:
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
        except pd.errors.EmptyDataError:
            raise UserError(f"{path} is empty") from None
        except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
    else:
        frame = read_table(path)
        if frame.columns.duplicated().any():
            duplicates = sorted(set(frame.columns[frame.columns.duplicated()]))
            raise UserError(f"{path}: duplicate column name(s): {', '.join(map(str, duplicates))}")
    if frame.empty:
        raise UserError(f"{path} has no rows")
    frame.columns = [str(name) for name in frame.columns]
    return frame


def _as_numeric(values: pd.Series) -> pd.Series | None:
    """The values as numbers, treating NA tokens as missing; None if some are not numbers."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return None
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    text = values.astype("string").str.strip()
    text = text.mask(text.isin(list(NA_TOKENS)))
    numbers = pd.to_numeric(text, errors="coerce")
    if (numbers.isna() & text.notna()).any():
        return None
    return numbers.astype("float64")


def _kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values.dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "timestamp"
    numbers = _as_numeric(values)
    if numbers is not None:
        finite = numbers.dropna()
        if len(finite) and (finite % 1 == 0).all() and (finite.abs() < 2**53).all():
            return "integer"
        return "float"
    text = values.dropna().astype(str).str.strip().str.lower()
    if len(text) and text.isin({"true", "false"}).all():
        return "boolean"
    return "category"


def _shown(value: Any) -> str:
    """A value as a message quotes it: 103 or 'yes', never np.int64(103)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _parses_as_time(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    id_column: str | None = None,
    timestamp: str | None = None,
    task: str = TASK,
    name: str = "data",
    source: str = "",
) -> Schema:
    """Check the table against the answers and infer its schema; UserError on the first problem."""
    roles = {"target": target, "id": id_column, "timestamp": timestamp}
    for role, column in roles.items():
        if column and column not in frame.columns:
            listed = ", ".join(frame.columns)
            raise UserError(f"{role} column '{column}' not found; the columns are: {listed}")
    given = [column for column in roles.values() if column]
    if len(given) != len(set(given)):
        raise UserError(
            f"one column has two roles: target={target}, id={id_column}, timestamp={timestamp}"
        )

    labels = frame[target].dropna()
    if labels.empty:
        raise UserError(f"target '{target}' has no values")
    if task == "classification":
        classes = labels.nunique()
        if classes < 2:
            raise UserError(
                f"target '{target}' has one class ({_shown(labels.iloc[0])}): nothing to learn"
            )
        if classes > MAX_CLASSES:
            raise UserError(
                f"target '{target}' has {classes} distinct values, too many classes for "
                f"classification (at most {MAX_CLASSES}); for a number to predict, generate "
                "the project with task=regression"
            )
    elif _as_numeric(labels) is None or pd.api.types.is_bool_dtype(labels.dtype):
        example = labels[pd.to_numeric(labels, errors="coerce").isna()]
        shown = f" (e.g. {_shown(example.iloc[0])})" if len(example) else ""
        raise UserError(f"target '{target}' is not numeric{shown}: regression needs numbers")

    if timestamp:
        present = frame[timestamp].dropna()
        parsed = _parses_as_time(present)
        if parsed.isna().any() or present.empty:
            bad = present[parsed.isna()]
            example = f" (e.g. {_shown(bad.iloc[0])} in row {bad.index[0] + 1})" if len(bad) else ""
            raise UserError(f"timestamp column '{timestamp}' does not parse as dates{example}")
    if id_column:
        duplicated = frame[id_column][frame[id_column].duplicated(keep=False)]
        if len(duplicated):
            value = duplicated.iloc[0]
            rows = (frame.index[frame[id_column] == value][:3] + 1).tolist()
            raise UserError(
                f"id column '{id_column}' has duplicate values (e.g. {_shown(value)} in rows "
                f"{', '.join(map(str, rows))})"
            )

    # Labelled rows in random order, at most PROBE_ROWS: where leaks are looked for.
    labelled = np.flatnonzero(frame[target].notna().to_numpy())
    probe = frame.iloc[np.random.default_rng(0).permutation(labelled)[:PROBE_ROWS]]
    columns = []
    for column_name in frame.columns:
        values = frame[column_name]
        # The distinct values decide the kind: a million rows often have a few hundred.
        uniques = pd.Series(values.dropna().unique(), dtype=values.dtype)
        role = next((r for r, c in roles.items() if c == column_name), "feature")
        if role == "timestamp":
            kind = "timestamp"
        elif role == "target" and task == "classification" and _kind(uniques) == "float":
            kind = "category"  # class labels written as 1.0, 2.0: labels, not numbers
        else:
            kind = _kind(uniques)
        numbers = _as_numeric(uniques)
        present = uniques.astype(str) if kind == "category" and numbers is None else uniques
        nullable = bool(values.isna().any()) or (
            kind in {"integer", "float"} and numbers is not None and bool(numbers.isna().any())
        )
        reason = None
        distinct = present.nunique()
        if role == "feature" and kind == "category" and len(present) and _all_dates(present):
            kind = "timestamp"
        if role == "feature" and kind == "timestamp":
            reason = "constant: the same value in every row" if distinct <= 1 else DATE_REASON
        elif role == "feature":
            reason = _exclusion(frame, probe, column_name, kind, present, distinct, target, task)
        if reason and kind == "category" and distinct > MAX_CATEGORIES:
            kind = "text"
        categories = None
        if kind == "category" and distinct <= MAX_CATEGORIES:
            categories = tuple(sorted(present.unique().tolist(), key=str))
        columns.append(
            Column(
                name=column_name,
                kind=kind,
                role="excluded" if reason else role,
                nullable=nullable,
                categories=categories,
                reason=reason,
                range=_seen_range(present, kind) if role == "feature" else None,
            )
        )
    schema = Schema(name=name, task=task, columns=tuple(columns), source=source)
    return schema


DATE_REASON = (
    "a date: not a feature as it is; list the calendar features it feeds under it, e.g. "
    "features: [month, day_of_week_cyclic] (the header says which)"
)


def _all_dates(values: pd.Series) -> bool:
    """Whether every value reads as a date (a hundred first: most text columns fail there)."""
    return bool(
        _parses_as_time(values.head(100)).notna().all() and _parses_as_time(values).notna().all()
    )


def _seen_range(present: pd.Series, kind: str) -> tuple[Any, Any] | None:
    """The smallest and largest values of a number or date column (a soft check)."""
    if kind in {"integer", "float"}:
        numbers = _as_numeric(present)
        if numbers is None or numbers.dropna().empty:
            return None
        low, high = numbers.min(), numbers.max()
        if kind == "integer":
            return int(low), int(high)
        return float(low), float(high)
    if kind == "timestamp":
        times = _parses_as_time(present).dropna()
        if times.empty:
            return None
        return tuple(t.isoformat().replace("+00:00", "Z") for t in (times.min(), times.max()))
    return None


def _exclusion(
    frame: pd.DataFrame,
    probe: pd.DataFrame,
    name: str,
    kind: str,
    present: pd.Series,
    distinct: int,
    target: str,
    task: str,
) -> str | None:
    """Why a column should not be a feature, or None."""
    if distinct <= 1:
        return "constant: the same value in every row"
    if kind == "category" and distinct == len(frame) and len(frame) > 20:
        return "every value is distinct: an identifier or free text, not a category"
    if kind == "category" and distinct > MAX_CATEGORIES:
        return f"free text: {distinct} distinct values (more than {MAX_CATEGORIES})"
    if kind == "integer" and distinct == len(frame) and len(frame) > 20:
        numbers = _as_numeric(present)
        if numbers is not None and numbers.max() - numbers.min() == len(frame) - 1:
            low, high = int(numbers.min()), int(numbers.max())
            return (
                f"a row index: the integers {low} to {high}, each once (it numbers the rows, "
                "it does not describe them)"
            )
    if kind in {"integer", "float", "boolean", "category"}:
        score = _alone_score(probe[name], probe[target], kind, task)
        if score is not None and score >= LEAK_SCORE:
            measure = "R²" if task == "regression" else "balanced accuracy, adjusted for chance,"
            return (
                f"likely leaks the target: alone it predicts '{target}' almost perfectly "
                f"({measure} {score:.3f} on held-out rows); if it is known when predicting, "
                "make it a feature (role: feature)"
            )
    return None


def _alone_score(values: pd.Series, target: pd.Series, kind: str, task: str) -> float | None:
    """How well one column alone predicts the target on the held-out third of ``values``
    (rows in random order): R² for regression, balanced accuracy adjusted for chance (0 is
    guessing, 1 perfect) for classification. Numbers through a shallow decision tree;
    categories through the most common class (or the mean) of each value."""
    from sklearn.metrics import balanced_accuracy_score, r2_score
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if len(values) < 30:
        return None
    fit = np.arange(len(values)) % 3 != 0
    regression = task == "regression"
    y = target.astype("float64") if regression else target.astype(str)
    numbers = _as_numeric(values) if kind in {"integer", "float"} else None
    if numbers is not None:
        filled = numbers.fillna(numbers.min() - 1 if numbers.notna().any() else 0).to_numpy()
        tree = DecisionTreeRegressor if regression else DecisionTreeClassifier
        model = tree(max_depth=6, min_samples_leaf=5, random_state=0)
        model.fit(filled[fit].reshape(-1, 1), y[fit])
        predicted = model.predict(filled[~fit].reshape(-1, 1))
    else:
        keys = values.astype(str).where(values.notna(), "")
        pairs = pd.DataFrame({"key": keys, "y": y})
        learned = pairs[fit].groupby("key")["y"]
        table = learned.mean() if regression else learned.agg(lambda v: v.mode().iloc[0])
        default = y[fit].mean() if regression else y[fit].mode().iloc[0]
        predicted = pairs.loc[~fit, "key"].map(table).fillna(default).to_numpy()
    truth = y[~fit].to_numpy()
    if regression:
        return float(r2_score(truth, predicted)) if np.std(truth) > 0 else None
    if len(set(truth)) < 2:
        return None
    with warnings.catch_warnings():  # a class absent from the held-out rows: still a score
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(truth, predicted, adjusted=True))


def draw_fixture(frame: pd.DataFrame, schema: Schema, rows: int = FIXTURE_ROWS) -> pd.DataFrame:
    """A small, seeded sample for the tests: every class kept, rows in their original order."""
    if len(frame) <= rows:
        return frame
    rng = np.random.default_rng(0)
    target = schema.target.name
    if schema.task == "classification":
        picked: list[int] = []
        groups = frame.groupby(target, dropna=False).indices
        for positions in groups.values():
            share = max(5, round(rows * len(positions) / len(frame)))
            picked += rng.choice(positions, size=min(share, len(positions)), replace=False).tolist()
        positions = np.sort(np.array(picked))
    else:
        positions = np.sort(rng.choice(len(frame), size=rows, replace=False))
    return frame.iloc[positions]


def example_request(frame: pd.DataFrame, schema: Schema, rows: int = EXAMPLE_ROWS) -> dict:
    """Real rows as a request body: every column but the target (what any feature may read,
    so that the example stays valid when a feature is added), nulls where missing."""
    names = [c.name for c in schema.columns if c.role != "target"]
    used = [c.name for c in (*([schema.id] if schema.id else []), *schema.inputs)]
    complete = frame[names][frame[used].notna().all(axis=1)]
    chosen = pd.concat([complete.head(rows - 1), frame[names].tail(1)]) if rows > 1 else complete
    records = json.loads(chosen.head(rows).to_json(orient="records", date_format="iso"))
    return {"records": records}


def write_csv(frame: pd.DataFrame, path: Path, schema: Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    for column in schema.columns:
        if column.kind == "timestamp" and column.name in out:
            out[column.name] = out[column.name].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out.to_csv(path, index=False)


def set_params(values: dict[str, Any], path: Path = PARAMS_FILE) -> None:
    """Set ``section.key`` values in params.yaml, keeping its comments and layout (a YAML
    round trip with ruamel.yaml: nothing else of the file changes)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    document = YAML()  # round-trip: comments, order and quoting kept
    document.width = 4096  # long lines stay as they are
    try:
        params = document.load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    for dotted, value in values.items():
        section, key = dotted.split(".")
        if not isinstance(params, dict) or not isinstance(params.get(section), dict):
            raise UserError(f"{path}: no '{section}' section to update")
        params[section][key] = value
    out = io.StringIO()
    document.dump(params, out)
    path.write_text(out.getvalue(), encoding="utf-8")


def write_dataset(source: Path, schema: Schema, path: Path = DATASET_FILE) -> None:
    """Record the adopted file and its roles as ``copier copy`` does for a project generated
    from a file, and the same answers in ``.copier-answers.yml`` (when the project has one), so
    that ``copier update`` renders the template for this data, not for the sample."""
    roles = {
        "target": schema.target.name,
        "id": schema.id.name if schema.id else None,
        "timestamp": schema.timestamp.name if schema.timestamp else None,
    }
    # JSON strings, as the template writes them (valid YAML, whatever the name holds).
    lines = [f"file: {json.dumps(str(source))}  # relative to this project's folder"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in roles.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DATASET_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    if not ANSWERS_FILE.is_file():
        return
    lines = ANSWERS_FILE.read_text(encoding="utf-8").splitlines(keepends=True)
    header = "".join(line for line in lines if line.startswith("#"))
    answers = yaml.safe_load("".join(line for line in lines if not line.startswith("#"))) or {}
    answers |= {
        "dataset": "file",
        "dataset_path": str(source),
        "target_column": roles["target"],
        "id_column": roles["id"] or "",
        "timestamp_column": roles["timestamp"] or "",
    }
    ANSWERS_FILE.write_text(header + yaml.safe_dump(answers, allow_unicode=True), encoding="utf-8")


DATASET_HEADER = """\
# The data this project learns from: the file answered at `copier copy` or given to the last
# `make adopt-data`, and its columns' roles. data/raw/ holds a DVC-tracked copy of it and
# schema.yaml its schema; `make setup` adopts it again only where schema.yaml is missing.
"""


def sample_only_files() -> list[Path]:
    """What only a project on the bundled sample has (a project on a file never does)."""
    return [Path("src") / str(__package__) / "sample_data.py", Path("tests/test_sample.py")]


def _dvc(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"dvc {' '.join(args)} failed: {result.stderr.strip() or result.stdout}")


def adopt(
    source: Path,
    target: str,
    id_column: str | None,
    timestamp: str | None,
    record: bool = True,
) -> Schema:
    """Check ``source``, then copy it into data/raw, track it, and write schema and fixture;
    with ``record``, data/dataset.yml and the copier answers too (``make setup`` adopts the
    file they already record)."""
    source = source.expanduser()
    frame = read_source(source)
    destination = RAW_DIR / re.sub(r"[^A-Za-z0-9._-]+", "_", source.name)
    if destination.suffix.lower() not in {".csv", ".parquet", ".pq", ".gz"}:
        raise UserError(f"{source}: unsupported file type (use .csv or .parquet)")
    schema = infer_schema(
        frame,
        target,
        id_column or None,
        timestamp or None,
        name=re.sub(r"\.(csv|parquet|pq)(\.gz)?$", "", source.name, flags=re.IGNORECASE),
        source=str(destination),
    )
    # The whole table must pass its own schema before anything is written.
    validated = validate(frame, schema, source=str(source))
    previous = load_params("data")

    # --- from here on, the project changes ------------------------------------------------
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    if source.resolve() != destination.resolve():
        shutil.copyfile(source, destination)
    for key in ("raw", "current"):
        old = Path(str(previous.get(key) or ""))
        if old != destination and Path(f"{old}.dvc").is_file():
            # --outs: the old file leaves the workspace too; kept there, no longer ignored, the
            # next `git add` would commit it to git. It stays in DVC's cache and git history.
            _dvc("remove", "--outs", f"{old}.dvc")
            log.info("%s is no longer tracked (removed; DVC's cache keeps it)", old)
    _dvc("add", "--quiet", str(destination))
    schema = Schema(schema.name, schema.task, schema.columns, source=str(destination))
    write_schema(schema)
    _set_data_params(destination)
    if record:
        write_dataset(source, schema)
    write_csv(draw_fixture(validated, schema), FIXTURE, schema)
    EXAMPLE.parent.mkdir(parents=True, exist_ok=True)
    request = json.dumps(example_request(validated, schema), indent=2, ensure_ascii=False)
    EXAMPLE.write_text(request + "\n", encoding="utf-8")
    for path in sample_only_files():
        if path.is_file():
            path.unlink()
            log.info("removed %s: it was the bundled sample's (git keeps it)", path)

    used = [c.name for c in schema.inputs]
    excluded = [f"{c.name} ({c.reason})" for c in schema.columns if c.role == "excluded"]
    log.info("adopted %s: %d rows -> %s (DVC-tracked)", source, len(frame), destination)
    log.info("schema.yaml: %d feature column(s): %s", len(used), ", ".join(used))
    if excluded:
        log.warning("excluded from the features: %s", "; ".join(excluded))
    log.info("wrote %s and %s; review schema.yaml, then run `make pipeline`", FIXTURE, EXAMPLE)
    return schema


def _set_data_params(destination: Path) -> None:
    """Point params.yaml at the new table; its time split starts without a gap (the horizon
    of the old table's target is not this one's)."""
    gap = load_params("prepare").get("gap_days")
    set_params(
        {
            "data.raw": str(destination),
            "data.current": "data/prepared/test.parquet",
            "prepare.gap_days": 0,
        }
    )
    if gap:
        log.warning("prepare.gap_days: %s -> 0 (set it to this table's horizon, if any)", gap)


def redraw_fixture() -> None:
    """The test fixture from the current raw data (for the sample, at ``make setup``)."""
    schema = load_schema()
    raw = load_params("data")["raw"]
    validated = validate(read_table(raw, schema), schema, source=raw)
    write_csv(draw_fixture(validated, schema), FIXTURE, schema)
    log.info("wrote %s (%d rows of %s)", FIXTURE, min(len(validated), FIXTURE_ROWS), raw)


def from_config(path: Path) -> dict[str, Any]:
    """The answers ``copier copy`` recorded in data/dataset.yml, for ``make setup``."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if not config.get("file") or not config.get("target"):
        raise UserError(f"{path}: needs 'file' and 'target'")
    if not Path(config["file"]).expanduser().is_file():
        raise UserError(
            f"{path}: file {config['file']!r} not found (relative to the project folder): "
            "correct it there, or run make adopt-data FILE=path TARGET=column"
        )
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, nargs="?", help="CSV or parquet file to adopt")
    parser.add_argument("--target", help="the column to predict")
    parser.add_argument("--id", default="", help="an identifier column, carried to predictions")
    parser.add_argument("--timestamp", default="", help="a time column: split train/test by it")
    parser.add_argument("--config", type=Path, help="take FILE and the columns from this YAML")
    parser.add_argument("--fixture", action="store_true", help="only redraw the test fixture")
    args = parser.parse_args(argv)

    if args.fixture:
        redraw_fixture()
        return 0
    if args.config:
        config = from_config(args.config)
        args.file, args.target = Path(config["file"]), config["target"]
        args.id, args.timestamp = config.get("id") or "", config.get("timestamp") or ""
    if args.file is None or not args.target:
        raise UserError("give the file and its target column: FILE=path TARGET=column")
    adopt(args.file, args.target, args.id, args.timestamp, record=args.config is None)
    return 0


if __name__ == "__main__":
    run_cli(main)
