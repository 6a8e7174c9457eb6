"""Drift monitoring: is the data the model sees now still like the data it learned from?

Compares a reference table (the training split, ``data/prepared/train.parquet``) with what
the model was sent: by default the served traffic of the last ``monitor.window_days`` days,
read from the prediction log (``PREDICTION_LOG``, or ``--log``: the folder or bucket
``make serve`` logs to, see prediction_log.py); or a batch file, ``--current`` (e.g. the
sample's ``data/current/customers.csv``, ``data.current`` in ``params.yaml``).

An Evidently report covers data drift on the feature columns of ``schema.yaml``, prediction
drift (the predictions served, or the model's on the batch, against the model's on the
reference) and, per column, missing values and (categorical) values never seen in the
reference. Writes ``reports/drift.html`` and ``reports/drift.json``, logs one summary line,
and exits 1 when the share of drifted columns reaches ``monitor.drift_share`` (so CI and
cron jobs can act on it). Fewer than ``monitor.min_rows`` rows is "not enough traffic":
neither drift nor an error (exit 0, and the JSON says so).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html as html_text
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from . import prediction_log
from .schema import Schema, load_schema, read_table, validate
from .settings import UserError, load_params, param, run_cli

log = logging.getLogger(__name__)

# Distances, not p-values: a p-value test flags tiny, harmless shifts once batches are large,
# and its verdict flips with sample size. Drift is a distance at or above the threshold.
NUMERIC_METHOD, CATEGORICAL_METHOD = "wasserstein", "jensenshannon"
NOT_ENOUGH = "not enough traffic"


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


def missing_values(
    reference: pd.DataFrame, current: pd.DataFrame, schema: Schema
) -> dict[str, dict[str, Any]]:
    """Per input column with missing current values: their count and share, beside the
    reference's share (a column never missing in training and missing now stands out)."""
    out = {}
    for column in schema.inputs:
        missing = int(current[column.name].isna().sum())
        if missing:
            out[column.name] = {
                "rows": missing,
                "share": missing / len(current),
                "reference_share": float(reference[column.name].isna().mean()),
            }
    return out


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    drift_share: float,
    html: Path | None = None,
    schema: Schema | None = None,
    predictions: tuple[pd.Series, pd.Series] | None = None,
) -> dict[str, Any]:
    """Run the Evidently report; return a JSON-able summary (and save the HTML report).

    ``predictions``: the model's on the reference and those on the current rows, for the
    prediction drift (categorical for a classifier, numeric for a regressor).
    """
    # Imported here: Evidently is a monitoring dependency, not a serving one.
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    schema = schema or load_schema()
    numeric, categorical = _columns(schema)
    current_frame, reference_frame = (
        _evidently_frame(current, schema),
        _evidently_frame(reference, schema),
    )
    metrics: list[Any] = [
        DataDriftPreset(
            columns=numeric + categorical,
            drift_share=drift_share,
            num_method=NUMERIC_METHOD,
            cat_method=CATEGORICAL_METHOD,
        )
    ]
    target = prediction_log.PREDICTION
    if predictions is not None:
        regression = schema.task == "regression"
        for frame, values in zip((reference_frame, current_frame), predictions, strict=True):
            values = pd.Series(values).reset_index(drop=True)
            frame[target] = values.astype("float64") if regression else values.astype(str)
        (numeric if regression else categorical).append(target)
        method = NUMERIC_METHOD if regression else CATEGORICAL_METHOD
        metrics.append(ValueDrift(column=target, method=method))
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report(metrics).run(
        Dataset.from_pandas(current_frame, data_definition=definition),
        Dataset.from_pandas(reference_frame, data_definition=definition),
    )
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html))

    columns: dict[str, Any] = {}
    prediction_drift = None
    share = 0.0
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith(":ValueDrift"):
            score, threshold = float(metric["value"]), float(config["threshold"] or 0.1)
            result = {
                "method": config["method"],
                "score": score,
                "threshold": threshold,
                "drifted": score >= threshold,
            }
            if config["column"] == target:
                prediction_drift = result
            else:
                columns[config["column"]] = result
    return {
        "verdict": "drift" if share >= drift_share else "no drift",
        "drift_detected": share >= drift_share,
        "drifted_share": share,
        "threshold": drift_share,
        "drifted_columns": sorted(name for name, c in columns.items() if c["drifted"]),
        "reference_rows": len(reference),
        "current_rows": len(current),
        "columns": columns,
        "prediction_drift": prediction_drift,
        "missing_values": missing_values(reference, current, schema),
        "unseen_values": unseen_values(reference, current, schema),
    }


def served_traffic(url: str, window_days: int, schema: Schema) -> pd.DataFrame:
    """The records logged under ``url`` in the last ``window_days`` days (today included),
    their types converted as the schema says; ``_prediction`` kept beside them."""
    since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=window_days - 1)
    try:
        logged = prediction_log.read_log(url, since)
    except ImportError as error:  # s3fs, gcsfs or adlfs missing
        raise UserError(f"cannot read the prediction log at {url}: {error}") from None
    except OSError as error:
        raise UserError(f"cannot read the prediction log at {url}: {error}") from None
    if logged.empty:
        return pd.DataFrame(columns=[c.name for c in schema.inputs])
    frame = validate(logged, schema, schema.inputs, url, checks=False)
    if prediction_log.PREDICTION in logged:
        frame[prediction_log.PREDICTION] = logged[prediction_log.PREDICTION].to_numpy()
    return frame


def model_predictions(frame: pd.DataFrame) -> pd.Series | None:
    """The model's predictions on ``frame`` (None, logged, when there is no model)."""
    from .features import compute_features
    from .predict import load_model, model_path, predict_frame

    if not model_path().exists():
        log.warning("no model at %s: no prediction drift (run `make pipeline`)", model_path())
        return None
    bundle = load_model()
    features = compute_features(frame, bundle.feature_definitions)
    return predict_frame(bundle, features)["prediction"].reset_index(drop=True)


def _not_enough(rows: int, min_rows: int, source: str, drift_share: float) -> dict[str, Any]:
    return {
        "verdict": NOT_ENOUGH,
        "drift_detected": False,
        "drifted_share": 0.0,
        "threshold": drift_share,
        "drifted_columns": [],
        "current_rows": rows,
        "min_rows": min_rows,
        "current": source,
        "columns": {},
        "prediction_drift": None,
        "missing_values": {},
        "unseen_values": {},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Drift report: the served traffic (or a batch) against the training data."
    )
    parser.add_argument("--reference", type=Path, default=Path("data/prepared/train.parquet"))
    parser.add_argument(
        "--current",
        type=Path,
        help="a batch file (CSV/parquet) instead of the served traffic, e.g. data.current",
    )
    parser.add_argument(
        "--log",
        default=None,
        help="the prediction log's folder or URL (default: $PREDICTION_LOG or logs/predictions)",
    )
    parser.add_argument("--output-dir", type=Path, default=Path("reports"))
    parser.add_argument(
        "--min-rows", type=int, default=None, help="default: monitor.min_rows in params.yaml"
    )
    args = parser.parse_args(argv)
    params = load_params("monitor")
    drift_share = param(params, "drift_share", float)
    if not 0 < drift_share <= 1:
        raise UserError(f"monitor.drift_share must be in (0, 1], got {drift_share}")
    window_days = param(params, "window_days", int)
    min_rows = param(params, "min_rows", int) if args.min_rows is None else args.min_rows
    if window_days < 1 or min_rows < 1:
        raise UserError("monitor.window_days and monitor.min_rows (--min-rows) must be at least 1")

    schema = load_schema()
    if not args.reference.exists():
        raise UserError(f"{args.reference} not found: run `make pipeline` first")
    inputs = schema.inputs
    if args.current is not None:
        if not args.current.exists():
            raise UserError(f"{args.current} not found")
        source = str(args.current)
        current = validate(read_table(args.current, schema), schema, inputs, source)
    else:
        url = args.log or prediction_log.url_from_env() or prediction_log.DEFAULT_URL
        source = f"{url} (served, last {window_days} day(s))"
        current = served_traffic(url, window_days, schema)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    html = args.output_dir / "drift.html"
    if len(current) < min_rows:
        summary = _not_enough(len(current), min_rows, source, drift_share)
        (args.output_dir / "drift.json").write_text(json.dumps(summary, indent=2) + "\n")
        html.write_text(
            f"<!doctype html><title>Drift report</title><h1>{NOT_ENOUGH}</h1><p>"
            f"{len(current)} row(s) in {html_text.escape(source)}, fewer than "
            f"monitor.min_rows ({min_rows}): no verdict on drift.</p>\n"
        )
        log.info(
            "%s: %d row(s) in %s (monitor.min_rows: %d)", NOT_ENOUGH, len(current), source, min_rows
        )
        return 0

    reference = validate(read_table(args.reference, schema), schema, inputs, str(args.reference))
    reference_predictions = model_predictions(reference)
    predictions = None
    if reference_predictions is not None:
        served = (
            current.pop(prediction_log.PREDICTION) if prediction_log.PREDICTION in current else None
        )
        current_predictions = served if served is not None else model_predictions(current)
        if current_predictions is not None:
            predictions = (reference_predictions, pd.Series(current_predictions))
    current = current.drop(columns=[prediction_log.PREDICTION], errors="ignore")
    summary = drift_report(reference, current, drift_share, html, schema, predictions)
    summary["current"] = source
    (args.output_dir / "drift.json").write_text(json.dumps(summary, indent=2) + "\n")

    verdict = "DRIFT DETECTED" if summary["drift_detected"] else "no drift"
    log.info(
        "%s: %d of %d columns drifted (%.0f%%, threshold %.0f%%): %s; %d row(s) of %s; report: %s",
        verdict,
        len(summary["drifted_columns"]),
        len(summary["columns"]),
        100 * summary["drifted_share"],
        100 * drift_share,
        ", ".join(summary["drifted_columns"]) or "none",
        len(current),
        source,
        html,
    )
    if summary["prediction_drift"] is not None:
        log.info(
            "prediction drift: %s (%s %.3f, threshold %.3f)",
            "yes" if summary["prediction_drift"]["drifted"] else "no",
            summary["prediction_drift"]["method"],
            summary["prediction_drift"]["score"],
            summary["prediction_drift"]["threshold"],
        )
    for name, missing in summary["missing_values"].items():
        log.info("'%s': %d row(s) missing (%.0f%%)", name, missing["rows"], 100 * missing["share"])
    for name, unseen in summary["unseen_values"].items():
        log.info("'%s': %d row(s) with values not seen in training", name, unseen["rows"])
    return 1 if summary["drift_detected"] else 0


if __name__ == "__main__":
    run_cli(main)
