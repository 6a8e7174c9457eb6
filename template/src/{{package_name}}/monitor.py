"""Drift monitoring: is the data the model sees now still like the data it learned from?

Compares a reference table (the training split, ``data/prepared/train.parquet``) with a
current batch (``data.current`` in ``params.yaml``, or ``--current``) using an Evidently data
drift report, on the feature columns of ``schema.yaml``. It also counts, per categorical
column, the current values never seen in the reference (a new category is served, and
shows up here). Writes ``reports/drift.html`` and ``reports/drift.json``,
logs one summary line, and exits 1 when the share of drifted columns reaches
``monitor.drift_share`` in ``params.yaml`` (so CI and cron jobs can act on it).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from .schema import Schema, load_schema, read_table, validate
from .settings import UserError, load_params, param, run_cli

log = logging.getLogger(__name__)

# Distances, not p-values: a p-value test flags tiny, harmless shifts once batches are large,
# and its verdict flips with sample size. Drift is a distance at or above the threshold.
NUMERIC_METHOD, CATEGORICAL_METHOD = "wasserstein", "jensenshannon"
MIN_ROWS = 200  # below this, drift estimates are noise


def _columns(schema: Schema) -> tuple[list[str], list[str]]:
    numeric = [c.name for c in schema.inputs if c.numeric]
    categorical = [c.name for c in schema.inputs if not c.numeric and c.kind != "timestamp"]
    return numeric, categorical


def _evidently_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    # Evidently wants plain numpy dtypes: nullable Int64 becomes float, missing stays NaN.
    numeric, categorical = _columns(schema)
    out = frame[numeric].astype("float64")
    for name in categorical:
        out[name] = frame[name].astype(object)
    return out


def unseen_values(
    reference: pd.DataFrame, current: pd.DataFrame, schema: Schema
) -> dict[str, dict[str, Any]]:
    """Per categorical column: how many current rows have a value the reference never had."""
    out = {}
    for name in _columns(schema)[1]:
        seen = set(reference[name].dropna())
        new = current[name].dropna()
        new = new[~new.isin(seen)]
        if len(new):
            out[name] = {"rows": len(new), "values": sorted(map(str, new.unique()))[:20]}
    return out


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    drift_share: float,
    html: Path | None = None,
    schema: Schema | None = None,
) -> dict[str, Any]:
    """Run the Evidently report; return a JSON-able summary (and save the HTML report)."""
    # Imported here: Evidently is a monitoring dependency, not a serving one.
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    schema = schema or load_schema()
    numeric, categorical = _columns(schema)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    preset = DataDriftPreset(
        drift_share=drift_share, num_method=NUMERIC_METHOD, cat_method=CATEGORICAL_METHOD
    )
    report = Report([preset])
    snapshot = report.run(
        Dataset.from_pandas(_evidently_frame(current, schema), data_definition=definition),
        Dataset.from_pandas(_evidently_frame(reference, schema), data_definition=definition),
    )
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html))

    columns: dict[str, Any] = {}
    share = 0.0
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith(":ValueDrift"):
            score, threshold = float(metric["value"]), float(config["threshold"])
            columns[config["column"]] = {
                "method": config["method"],
                "score": score,
                "threshold": threshold,
                "drifted": score >= threshold,
            }
    return {
        "drift_detected": share >= drift_share,
        "drifted_share": share,
        "threshold": drift_share,
        "drifted_columns": sorted(name for name, c in columns.items() if c["drifted"]),
        "reference_rows": len(reference),
        "current_rows": len(current),
        "columns": columns,
        "unseen_values": unseen_values(reference, current, schema),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Data drift report: reference vs current.")
    parser.add_argument("--reference", type=Path, default=Path("data/prepared/train.parquet"))
    parser.add_argument("--current", type=Path, help="default: data.current in params.yaml")
    parser.add_argument("--output-dir", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    params = load_params("monitor")
    drift_share = param(params, "drift_share", float)
    if not 0 < drift_share <= 1:
        raise UserError(f"monitor.drift_share must be in (0, 1], got {drift_share}")

    current_path = args.current or Path(param(load_params("data"), "current", str))
    schema = load_schema()
    for path in (args.reference, current_path):
        if not path.exists():
            raise UserError(f"{path} not found: run `make pipeline` first")
    inputs = schema.inputs
    reference = validate(read_table(args.reference, schema), schema, inputs, str(args.reference))
    current = validate(read_table(current_path, schema), schema, inputs, str(current_path))

    for name, frame in (("reference", reference), ("current", current)):
        if len(frame) < MIN_ROWS:
            log.warning(
                "%s has %d rows: drift estimates below %d are noisy", name, len(frame), MIN_ROWS
            )

    html = args.output_dir / "drift.html"
    summary = drift_report(reference, current, drift_share, html, schema)
    (args.output_dir / "drift.json").write_text(json.dumps(summary, indent=2) + "\n")

    verdict = "DRIFT DETECTED" if summary["drift_detected"] else "no drift"
    log.info(
        "%s: %d of %d columns drifted (%.0f%%, threshold %.0f%%): %s; report: %s",
        verdict,
        len(summary["drifted_columns"]),
        len(summary["columns"]),
        100 * summary["drifted_share"],
        100 * drift_share,
        ", ".join(summary["drifted_columns"]) or "none",
        html,
    )
    for name, unseen in summary["unseen_values"].items():
        log.info("'%s': %d row(s) with values not seen in training", name, unseen["rows"])
    return 1 if summary["drift_detected"] else 0


if __name__ == "__main__":
    run_cli(main)
