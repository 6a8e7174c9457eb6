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
(``contract/sample_data.py``, with its engineered features, ``tests/test_sample.py`` and the
sample's data): the project is then the one ``copier copy`` would generate from the file.

Run through ``python -m <package>.contract.ingest adopt`` (``ingest.py``).
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..settings import PARAMS_FILE, UserError, load_params
from .infer import infer_schema, read_source
from .schema import SCHEMA_FILE, Schema, load_schema, write_schema
from .tables import read_table, validate

log = logging.getLogger(__name__)

RAW_DIR = Path("data/raw")
FIXTURE = Path("tests/fixtures/data.csv")
EXAMPLE = Path("examples/request.json")
FIXTURE_ROWS = 1000
EXAMPLE_ROWS = 2
DATASET_FILE = Path("data/dataset.yml")
ANSWERS_FILE = Path(".copier-answers.yml")


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
    lines.append(f"task: {schema.task}  # schema.yaml holds it once written")
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
    package = Path("src", *str(__package__).split("."))
    return [package / "sample_data.py", Path("tests/test_sample.py")]


def _dvc(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"dvc {' '.join(args)} failed: {result.stderr.strip() or result.stdout}")


def adopt(
    source: Path,
    target: str,
    id_column: str | None,
    timestamp: str | None,
    *,
    task: str,
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
        task=task,
        name=re.sub(r"\.(csv|parquet|pq)(\.gz)?$", "", source.name, flags=re.IGNORECASE),
        source=str(destination),
    )
    # The whole table must pass its own schema before anything is written.
    validated = validate(frame, schema, source=str(source))
    previous = load_params("data")

    # --- from here on, the project changes ------------------------------------------------
    _track(source, destination, previous)
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
    _report(source, len(frame), destination, schema)
    return schema


def _track(source: Path, destination: Path, previous: dict[str, Any]) -> None:
    """Copy the file into data/raw and track it with DVC, in place of the previous data."""
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


def _report(source: Path, rows: int, destination: Path, schema: Schema) -> None:
    used = [c.name for c in schema.inputs]
    excluded = [f"{c.name} ({c.reason})" for c in schema.columns if c.role == "excluded"]
    log.info("adopted %s: %d rows -> %s (DVC-tracked)", source, rows, destination)
    log.info("schema.yaml: %d feature column(s): %s", len(used), ", ".join(used))
    if excluded:
        log.warning("excluded from the features: %s", "; ".join(excluded))
    log.info("wrote %s and %s; review schema.yaml, then run `make pipeline`", FIXTURE, EXAMPLE)


def project_task() -> str:
    """What the project predicts: schema.yaml's task, or, before the first adoption wrote it,
    the one data/dataset.yml records (``copier copy``'s answer)."""
    for path in (SCHEMA_FILE, DATASET_FILE, ANSWERS_FILE):
        task = yaml_mapping(path).get("task")
        if task in ("classification", "regression"):
            return str(task)
    raise UserError(
        f"no task: {SCHEMA_FILE} (or {DATASET_FILE}) must say `task: classification` "
        "or `task: regression`"
    )


def yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    return data if isinstance(data, dict) else {}


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
