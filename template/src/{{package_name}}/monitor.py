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

Model quality, when labels are known. Ground truth that arrives later (a customer who left,
a price paid) is joined to the served predictions by request id: CSV or parquet files under
``--feedback`` (``PREDICTION_FEEDBACK``, default ``logs/feedback``: a folder, a file or an
fsspec URL) with the columns

    request_id   the X-Request-ID the service returned (or the client sent)
    record       the record's position in that request's ``records``, from 0 (optional: 0)
    <target>     the true value, named and typed as the target in schema.yaml

(the batch CLI's ``--log`` run: its logged request id, and the row in the file as record). A
batch file (``--current``) that has the target column is labelled already. With labels, an
Evidently classification or regression report of the labelled rows, against the model's
quality on the held-out test split (``--quality-reference``), is written beside the drift
report (``reports/quality.html``) and summarised in ``drift.json`` under ``quality``: its
headline (accuracy; RMSE for a regressor) worse than the test split's by more than
``monitor.quality_tolerance`` (relative) is ``degraded``, and exits 1 as drift does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html as html_text
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from . import prediction_log
from .features import raw_columns
from .schema import TEXT_KINDS, Schema, load_schema, out_of_range, read_table, validate
from .settings import UserError, load_params, param, run_cli

log = logging.getLogger(__name__)

# Distances, not p-values: a p-value test flags tiny, harmless shifts once batches are large,
# and its verdict flips with sample size. Drift is a distance at or above the threshold.
NUMERIC_METHOD, CATEGORICAL_METHOD = "wasserstein", "jensenshannon"
NOT_ENOUGH = "not enough traffic"
FEEDBACK_URL = "logs/feedback"
LABEL = "_label"  # a labelled batch's target, beside its records
LABEL_FILES = (".csv", ".parquet")
# The headline metric of each task, and whether higher is better.
HEADLINE = {"classification": ("Accuracy", True), "regression": ("RMSE", False)}


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
    their types converted as the schema says; ``_prediction`` kept beside them (labels are
    matched over their own, longer window: ``_quality``)."""
    since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=window_days - 1)
    try:
        logged = prediction_log.read_log(url, since)
    except ImportError as error:  # s3fs, gcsfs or adlfs missing
        raise UserError(f"cannot read the prediction log at {url}: {error}") from None
    except OSError as error:
        raise UserError(f"cannot read the prediction log at {url}: {error}") from None
    if logged.empty:
        return pd.DataFrame(columns=[c.name for c in raw_columns(schema)])
    frame = validate(logged, schema, raw_columns(schema), url, checks=False)
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


def read_feedback(url: str, schema: Schema) -> pd.DataFrame:
    """The labels under ``url`` (every CSV and parquet file, in name order; a later label for
    the same record wins): columns ``_request_id``, ``_record`` and the target, typed as the
    schema says. Empty when there are none. A file without the columns, or with a value that
    is not a valid target, is a UserError naming the file (and the rows)."""
    target = schema.target
    keys = [prediction_log.REQUEST_ID, prediction_log.RECORD]
    empty = pd.DataFrame(columns=[*keys, target.name])
    try:
        fs, root = prediction_log.filesystem(url)
        if not fs.exists(root):
            return empty
        single = fs.isfile(root)
        if single and not root.endswith(LABEL_FILES):
            raise UserError(f"{url}: feedback is a .csv or .parquet file, or a folder of them")
        paths = [root] if single else sorted(fs.find(root))
        # Read as read_table reads: a text target stays text ("01" is not 1, "NA" is a value).
        text = {target.name: "string"} if target.kind in TEXT_KINDS else {}
        options = {"dtype": {"request_id": str, **text}, "keep_default_na": False}
        frames = []
        for path in paths:
            if not path.endswith(LABEL_FILES):
                continue
            try:
                with fs.open(path, "rb") as source:
                    if path.endswith(".parquet"):
                        frame = pd.read_parquet(source)
                    else:
                        frame = pd.read_csv(source, na_values=[""], **options)
            except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
                # Empty or broken CSV, not parquet: one line, naming the file.
                raise UserError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
            frames.append(_feedback_frame(frame, schema, path))
    except (ImportError, OSError) as error:
        raise UserError(f"cannot read the feedback at {url}: {error}") from None
    if not frames:
        return empty
    labels = pd.concat(frames, ignore_index=True)
    return labels.drop_duplicates(keys, keep="last").reset_index(drop=True)


def _feedback_frame(frame: pd.DataFrame, schema: Schema, path: str) -> pd.DataFrame:
    target = schema.target
    frame = frame.reset_index(drop=True)  # a parquet file may bring an index of its own
    missing = [name for name in ("request_id", target.name) if name not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: feedback needs the columns request_id and '{target.name}' (and record, "
            f"the record's position in the request, default 0); missing: {', '.join(missing)}"
        )
    if frame.empty:
        return pd.DataFrame(columns=[prediction_log.REQUEST_ID, prediction_log.RECORD, target.name])
    # A row without a label (not known yet) is skipped; the others are checked, numbered as
    # everywhere in this project (1: the file's first data row).
    known = frame[target.name].notna()
    record = pd.Series(
        pd.to_numeric(frame["record"], errors="coerce") if "record" in frame else 0,
        index=frame.index,
    )
    bad = known & (record.isna() | (record < 0) | (record % 1 != 0))
    if bad.any():
        rows = ", ".join(str(n + 1) for n in bad[bad].index[:5])
        raise UserError(f"{path}: 'record' must be a whole number from 0 (row(s) {rows})")
    optional = replace(target, nullable=True)
    labelled = validate(frame[[target.name]], schema, [optional], path)
    labelled.insert(0, prediction_log.RECORD, record.fillna(0).astype("int64"))
    labelled.insert(0, prediction_log.REQUEST_ID, frame["request_id"].astype(str).to_numpy())
    return labelled[known.to_numpy()].reset_index(drop=True)


def quality_report(
    reference: tuple[pd.Series, pd.Series],
    current: tuple[pd.Series, pd.Series],
    schema: Schema,
    tolerance: float,
    html: Path | None = None,
) -> dict[str, Any]:
    """Evidently's classification or regression report of ``current`` (labels, predictions)
    against ``reference`` (the same on the test split); a JSON-able summary."""
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Regression,
        Report,
    )
    from evidently.presets import ClassificationPreset, RegressionPreset

    label, predicted = "target", "prediction"
    regression = schema.task == "regression"

    def frame(labels: pd.Series, predictions: pd.Series) -> pd.DataFrame:
        # A regressor's predictions are numbers (fractional for an integer target); a
        # classifier's are typed as the target, then both compared as labels.
        values = pd.Series(predictions).reset_index(drop=True)
        if regression:
            typed = pd.to_numeric(values, errors="coerce")
        else:
            typed = validate(
                pd.DataFrame({schema.target.name: values.to_numpy()}),
                schema,
                [schema.target],
                "predictions",
                checks=False,
            )[schema.target.name]
        pair = {label: pd.Series(labels).reset_index(drop=True), predicted: typed}
        kind = "float64" if regression else str
        return pd.DataFrame({name: values.astype(kind) for name, values in pair.items()})

    reference_frame, current_frame = frame(*reference), frame(*current)
    if regression:
        task: Any = {"regression": [Regression(target=label, prediction=predicted)]}
        columns: dict[str, Any] = {"numerical_columns": [label, predicted]}
        preset: Any = RegressionPreset()
    else:
        classes = sorted(
            set(reference_frame[label]) | set(current_frame[label]),
            key=float if schema.target.numeric else str,  # as scikit-learn orders them
        )
        if len(classes) <= 2:
            # The positive class is the last in order, as evaluate.py (scikit-learn) has it.
            kind: Any = BinaryClassification(
                target=label, prediction_labels=predicted, pos_label=classes[-1]
            )
        else:
            kind = MulticlassClassification(target=label, prediction_labels=predicted)
        task = {"classification": [kind]}
        columns = {"categorical_columns": [label, predicted]}
        preset = ClassificationPreset()
    definition = DataDefinition(**task, **columns)

    def dataset(data: pd.DataFrame) -> Any:
        return Dataset.from_pandas(data, data_definition=definition)

    snapshot = Report([preset]).run(dataset(current_frame), dataset(reference_frame))
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html))
    expected = Report([preset]).run(dataset(reference_frame), None)  # the test split's values

    def values(report: Any) -> dict[str, Any]:
        out = {}
        for metric in report.dict()["metrics"]:
            name, value = metric["config"]["type"].rsplit(":", 1)[-1], metric["value"]
            if isinstance(value, dict) and "mean" in value:
                value = value["mean"]
            if isinstance(value, int | float):
                out[name] = float(value)
        return out

    now, then = values(snapshot), values(expected)
    headline, higher_is_better = HEADLINE[schema.task]
    change = (now[headline] - then[headline]) / (abs(then[headline]) or 1.0)
    degraded = (-change if higher_is_better else change) > tolerance
    return {
        "rows": len(current_frame),
        "reference_rows": len(reference_frame),
        "headline": headline,
        "current": now[headline],
        "reference": then[headline],
        "relative_change": change,
        "tolerance": tolerance,
        "degraded": bool(degraded),
        "metrics": {name: {"current": now[name], "reference": then.get(name)} for name in now},
    }


def _labelled(current: pd.DataFrame, labels: pd.DataFrame, target: str) -> pd.DataFrame:
    """The served rows that have a label: their predictions and labels, joined by request id
    and the record's position (logs written before positions were logged: their order)."""
    keys = [prediction_log.REQUEST_ID, prediction_log.RECORD]
    if prediction_log.REQUEST_ID not in current or prediction_log.PREDICTION not in current:
        return pd.DataFrame(columns=[*keys, prediction_log.PREDICTION, target])
    served = current[[prediction_log.REQUEST_ID, prediction_log.PREDICTION]].copy()
    served[prediction_log.REQUEST_ID] = served[prediction_log.REQUEST_ID].astype(str)
    if prediction_log.RECORD in current and current[prediction_log.RECORD].notna().all():
        served[prediction_log.RECORD] = current[prediction_log.RECORD].astype("int64")
    else:
        served[prediction_log.RECORD] = served.groupby(prediction_log.REQUEST_ID).cumcount()
    # A request id sent twice (a client's retry): its last answer is the one that counts.
    served = served.drop_duplicates(keys, keep="last")
    return served.merge(labels, on=keys, how="inner", validate="one_to_one")


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
        "out_of_range": {},
        "quality": None,
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
    parser.add_argument(
        "--feedback",
        default=None,
        help=f"labels to join by request id (default: $PREDICTION_FEEDBACK or {FEEDBACK_URL})",
    )
    parser.add_argument(
        "--quality-reference",
        type=Path,
        default=Path("data/prepared/test.parquet"),
        help="labelled rows the model's quality is compared with (the held-out test split)",
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
    tolerance = param(params, "quality_tolerance", float) if "quality_tolerance" in params else 0.1
    if tolerance < 0:
        raise UserError(f"monitor.quality_tolerance must be at least 0, got {tolerance}")

    schema = load_schema()
    if not args.reference.exists():
        raise UserError(f"{args.reference} not found: run `make pipeline` first")
    inputs = raw_columns(schema)  # what the features read: the feature columns, maybe a date
    url = args.log or prediction_log.url_from_env() or prediction_log.DEFAULT_URL
    if args.current is not None:
        if not args.current.exists():
            raise UserError(f"{args.current} not found")
        source = str(args.current)
        table = read_table(args.current, schema)
        current = validate(table, schema, inputs, source)
        name = schema.target.name
        if name in table and table[name].notna().any():  # a labelled batch (rows without: not)
            known = table[name].notna().to_numpy()
            labels = validate(table[known], schema, [schema.target], source)[name]
            current[LABEL] = pd.Series(pd.NA, index=current.index, dtype=object)
            current.loc[known, LABEL] = labels.to_numpy()
    else:
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
    extra = [LABEL, prediction_log.PREDICTION]
    served = current[[name for name in extra if name in current]].reset_index(drop=True)
    current = current.drop(columns=extra, errors="ignore")
    predictions = None
    if reference_predictions is not None:
        if prediction_log.PREDICTION in served:
            current_predictions = served[prediction_log.PREDICTION]
        else:
            current_predictions = model_predictions(current)
            served[prediction_log.PREDICTION] = current_predictions
        predictions = (reference_predictions, pd.Series(current_predictions))
    summary = drift_report(reference, current, drift_share, html, schema, predictions)
    summary["current"] = source
    summary["out_of_range"] = out_of_range(current, schema)  # schema.yaml's ranges: soft checks
    summary["quality"] = None
    report = args.output_dir / "drift.json"
    report.write_text(json.dumps(summary, indent=2) + "\n")  # the drift verdict, whatever follows
    if reference_predictions is not None:
        feedback = None
        if args.current is None:
            label_days = (
                param(params, "label_window_days", int) if "label_window_days" in params else 180
            )
            feedback = (
                args.feedback or os.environ.get("PREDICTION_FEEDBACK") or FEEDBACK_URL,
                url,
                label_days,
            )
        elif args.feedback:
            log.warning("--feedback is for the served traffic: a batch's labels are its target")
        try:
            summary["quality"] = _quality(
                served,
                feedback,
                args.quality_reference,
                schema,
                min_rows,
                tolerance,
                args.output_dir,
            )
        except UserError as error:
            summary["quality"] = {"verdict": "error", "error": str(error)}
            report.write_text(json.dumps(summary, indent=2) + "\n")
            raise
        report.write_text(json.dumps(summary, indent=2) + "\n")

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
    quality = summary["quality"]
    if quality is not None and "degraded" in quality:
        log.info(
            "model quality on %d labelled row(s): %s %.4g against %.4g on the test split (%+.1f%%, "
            "tolerance %.0f%%): %s; report: %s",
            quality["rows"],
            quality["headline"],
            quality["current"],
            quality["reference"],
            100 * quality["relative_change"],
            100 * quality["tolerance"],
            "DEGRADED" if quality["degraded"] else "as expected",
            args.output_dir / "quality.html",
        )
    elif quality is not None:
        log.info("model quality: %s", quality["verdict"])
    for name, missing in summary["missing_values"].items():
        log.info("'%s': %d row(s) missing (%.0f%%)", name, missing["rows"], 100 * missing["share"])
    for name, unseen in summary["unseen_values"].items():
        log.info("'%s': %d row(s) with values not seen in training", name, unseen["rows"])
    for name, count in summary["out_of_range"].items():
        log.info("'%s': %d value(s) outside the range seen in training (schema.yaml)", name, count)
    degraded = quality is not None and quality.get("degraded", False)
    return 1 if summary["drift_detected"] or degraded else 0


def _quality(
    served: pd.DataFrame,
    feedback: tuple[str, str, int] | None,
    test_split: Path,
    schema: Schema,
    min_rows: int,
    tolerance: float,
    output_dir: Path,
) -> dict[str, Any] | None:
    """The quality section of the report: None without labels; "not enough labels" below
    ``min_rows`` labelled rows; else quality_report's summary (and reports/quality.html).

    ``feedback``: where the labels are, the prediction log and how many days back to match
    them in (``monitor.label_window_days``: a label often comes long after its prediction,
    later than the drift window); None for a batch, whose labels are in ``served``."""
    target = schema.target.name
    if feedback is not None:
        feedback_url, log_url, days = feedback
        labels = read_feedback(feedback_url, schema)
        if labels.empty:
            return None
        since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days - 1)
        keys = [prediction_log.REQUEST_ID, prediction_log.RECORD, prediction_log.PREDICTION]
        try:
            logged = prediction_log.read_log(log_url, since, keys)
        except (ImportError, OSError) as error:
            raise UserError(f"cannot read the prediction log at {log_url}: {error}") from None
        labelled = _labelled(logged, labels, target)
        if len(labelled) < len(labels):
            log.info(
                "%d of %d label(s) in %s match no prediction served in the last %d days",
                len(labels) - len(labelled),
                len(labels),
                feedback_url,
                days,
            )
        pairs = (labelled[target], labelled[prediction_log.PREDICTION])
    elif LABEL in served:
        known = served[LABEL].notna()
        pairs = (served.loc[known, LABEL], served.loc[known, prediction_log.PREDICTION])
    else:
        return None
    if len(pairs[0]) < min_rows:
        return {"verdict": "not enough labels", "rows": len(pairs[0]), "min_rows": min_rows}
    if not test_split.exists():
        raise UserError(f"{test_split} not found (the labelled test split): run `make pipeline`")
    columns = (*raw_columns(schema), schema.target)
    test = validate(read_table(test_split, schema), schema, columns, str(test_split))
    test_predictions = model_predictions(test.drop(columns=[target]))
    quality = quality_report(
        (test[target], test_predictions),
        pairs,
        schema,
        tolerance,
        output_dir / "quality.html",
    )
    quality["labels"] = feedback[0] if feedback else "the batch's target column"
    return quality


if __name__ == "__main__":
    run_cli(main)
