"""Drift monitoring: is the data the model sees now still like the data it learned from?

Compares a reference table (the training split, ``data/prepared/train.parquet``) with what
the model was sent: by default the served traffic of the last ``monitor.window_days`` days,
read from the prediction log (``PREDICTION_LOG``, or ``--log``: the folder or bucket
``make serve`` logs to, see prediction_log.py; a log file that cannot be read, truncated or
empty, is named in one line, skipped and counted); or a batch file, ``--current`` (e.g. the
sample's ``data/current/customers.csv``, ``data.current`` in ``params.yaml``).

An Evidently report covers data drift on the feature columns of ``schema.yaml``, prediction
drift (the predictions served, or the model's on the batch, against the model's on the
reference) and, per column, missing values and (categorical) values never seen in the
reference. A column with no value at all in the current rows (or in the reference) is
reported as 100% missing, and as drifted when the other side has values. Writes
``reports/drift.html`` and ``reports/drift.json``, logs one summary line. Fewer than
``monitor.min_rows`` rows is "not enough traffic": neither drift nor an error.

Model quality, when labels are known. Ground truth that arrives later (a customer who left,
a price paid) is joined to the served predictions by request id: CSV or parquet files under
``--feedback`` (``PREDICTION_FEEDBACK``, default ``logs/feedback``: a folder, a file or an
fsspec URL) with the columns

    request_id   the X-Request-ID the service returned (or the client sent)
    record       the record's position in that request's ``records``, from 0 (optional: 0)
    <target>     the true value, named and typed as the target in schema.yaml

(the batch CLI's ``--log`` run: its logged request id, and the row in the file as record). A
batch file (``--current``) that has the target column is labelled already. With labels, the
model's quality on the labelled rows is scored as the evaluate stage scores the test split
(the same functions: one definition of each metric), against the test split's
(``--quality-reference``), and Evidently's classification or regression report is written
beside the drift report (``reports/quality.html``). Any label set works: a class only in the
labels, only in the test split or only in training; where Evidently cannot put the labelled
rows beside the test split (their classes differ), the report shows them alone and says so.
The headline (accuracy; RMSE for a regressor) worse than the test split's by more than
``monitor.quality_tolerance`` (relative) is ``degraded``.

Exit codes: 0 calm (no drift, quality as expected, or too little to decide); 1 drift or
degraded quality (``drift.json`` says which: ``drift_detected``, ``quality.degraded``); 2 a
mistake to fix (a missing file, a bad label file: one line); 3 a step failed inside a
library (the line names the step: "the quality report failed: ..."; ``LOG_LEVEL=DEBUG``
adds the traceback). The reports of an earlier run are removed first: after a 2 or a 3,
``drift.json`` holds ``"verdict": "error"`` and the message, never an old verdict.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html as html_text
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..serving import prediction_log
from ..model import ModelBundle
from ..pipeline.evaluate import classification_scores, per_class_scores, regression_scores
from ..pipeline.features import raw_columns
from ..contract.schema import TEXT_KINDS, Schema, load_schema, out_of_range, read_table, validate
from ..settings import UserError, load_params, param, run_cli

log = logging.getLogger(__name__)

# Distances, not p-values: a p-value test flags tiny, harmless shifts once batches are large,
# and its verdict flips with sample size. Drift is a distance at or above the threshold.
NUMERIC_METHOD, CATEGORICAL_METHOD = "wasserstein", "jensenshannon"
ALL_MISSING = "all missing"  # the method of a column with no value on one side
NOT_ENOUGH = "not enough traffic"
FEEDBACK_URL = "logs/feedback"
LABEL = "_label"  # a labelled batch's target, beside its records
LABEL_FILES = (".csv", ".parquet")
# The headline metric of each task (its key in the scores), and whether higher is better.
HEADLINE = {"classification": ("Accuracy", "accuracy", True), "regression": ("RMSE", "rmse", False)}
EXIT_CALM, EXIT_ALERT, EXIT_FAILED = 0, 1, 3  # 2, a UserError, is settings.run_cli's
REPORTS = ("drift.json", "drift.html", "quality.html")


class StepFailed(Exception):
    """A step failed inside a library (or in this code): exit 3, the step named."""


@contextmanager
def step(name: str) -> Iterator[None]:
    """Run one step of the monitor. Its libraries' warnings are not printed (scikit-learn's
    UndefinedMetricWarning, from inside Evidently, filled the output: what they would say is
    in the summary); an unexpected error becomes StepFailed("<name> failed: ...")."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except (UserError, StepFailed):
        raise
    except Exception as error:
        log.debug("%s failed", name, exc_info=True)
        detail = str(error).splitlines()[0] if str(error) else ""
        raise StepFailed(f"{name} failed: {type(error).__name__}: {detail}") from error


@dataclass(frozen=True)
class Settings:
    """The ``monitor`` section of params.yaml, checked (``--min-rows`` overrides min_rows)."""

    drift_share: float
    window_days: int
    min_rows: int
    tolerance: float
    label_days: int


def load_settings(min_rows: int | None = None) -> Settings:
    params = load_params("monitor")
    settings = Settings(
        drift_share=param(params, "drift_share", float),
        window_days=param(params, "window_days", int),
        min_rows=param(params, "min_rows", int) if min_rows is None else min_rows,
        tolerance=param(params, "quality_tolerance", float)
        if "quality_tolerance" in params
        else 0.1,
        label_days=param(params, "label_window_days", int)
        if "label_window_days" in params
        else 180,
    )
    if not 0 < settings.drift_share <= 1:
        raise UserError(f"monitor.drift_share must be in (0, 1], got {settings.drift_share}")
    if settings.window_days < 1 or settings.min_rows < 1 or settings.label_days < 1:
        raise UserError(
            "monitor.window_days, monitor.label_window_days and monitor.min_rows (--min-rows) "
            "must be at least 1"
        )
    if settings.tolerance < 0:
        raise UserError(f"monitor.quality_tolerance must be at least 0, got {settings.tolerance}")
    return settings


def _columns(schema: Schema) -> tuple[list[str], list[str]]:
    numeric = [c.name for c in schema.inputs if c.numeric]
    categorical = [c.name for c in schema.inputs if not c.numeric and c.kind != "timestamp"]
    return numeric, categorical


def _evidently_frame(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> pd.DataFrame:
    # Evidently wants plain numpy dtypes: nullable Int64 becomes float, missing stays NaN.
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


def empty_columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]
) -> dict[str, dict[str, Any]]:
    """The columns with no value at all on one side (or both): no distance can be measured
    (Evidently raises), so each is its own verdict: drifted when the other side has values."""
    out = {}
    for name in columns:
        now, then = current[name].isna().mean(), reference[name].isna().mean()
        if now == 1 or then == 1:
            out[name] = {
                "method": ALL_MISSING,
                "score": float(now),
                "reference_missing_share": float(then),
                "threshold": None,
                "drifted": bool(now != then),
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
    schema = schema or load_schema()
    numeric, categorical = _columns(schema)
    empty = empty_columns(reference, current, numeric + categorical)
    numeric = [name for name in numeric if name not in empty]
    categorical = [name for name in categorical if name not in empty]
    frames = (
        _evidently_frame(reference, numeric, categorical),
        _evidently_frame(current, numeric, categorical),
    )
    with step("the drift report"):
        columns, prediction_drift = _evidently_drift(
            frames, numeric, categorical, drift_share, schema.task, predictions, html
        )
    columns.update(empty)
    drifted = sorted(name for name, column in columns.items() if column["drifted"])
    share = len(drifted) / len(columns) if columns else 0.0
    return {
        "verdict": "drift" if share >= drift_share else "no drift",
        "drift_detected": share >= drift_share,
        "drifted_share": share,
        "threshold": drift_share,
        "drifted_columns": drifted,
        "reference_rows": len(reference),
        "current_rows": len(current),
        "columns": columns,
        "prediction_drift": prediction_drift,
        "missing_values": missing_values(reference, current, schema),
        "unseen_values": unseen_values(reference, current, schema),
    }


def _evidently_drift(
    frames: tuple[pd.DataFrame, pd.DataFrame],
    numeric: list[str],
    categorical: list[str],
    drift_share: float,
    task: str,
    predictions: tuple[pd.Series, pd.Series] | None,
    html: Path | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Evidently's drift of each column (and of the predictions); the per-column results."""
    # Imported here: Evidently is a monitoring dependency, not a serving one.
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    reference_frame, current_frame = frames
    numeric, categorical = list(numeric), list(categorical)
    metrics: list[Any] = []
    if numeric or categorical:
        metrics.append(
            DataDriftPreset(
                columns=numeric + categorical,
                drift_share=drift_share,
                num_method=NUMERIC_METHOD,
                cat_method=CATEGORICAL_METHOD,
            )
        )
    target = prediction_log.PREDICTION
    if predictions is not None:
        regression = task == "regression"
        for frame, values in zip(frames, predictions, strict=True):
            values = pd.Series(values).reset_index(drop=True)
            frame[target] = values.astype("float64") if regression else values.astype(str)
        (numeric if regression else categorical).append(target)
        method = NUMERIC_METHOD if regression else CATEGORICAL_METHOD
        metrics.append(ValueDrift(column=target, method=method))
    if not metrics:
        _placeholder(html, "Drift report", "No column has values on both sides to compare.")
        return {}, None
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report(metrics).run(
        Dataset.from_pandas(current_frame, data_definition=definition),
        Dataset.from_pandas(reference_frame, data_definition=definition),
    )
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html))
    return _drift_results(snapshot.dict()["metrics"], target)


def _drift_results(
    metrics: list[dict[str, Any]], prediction: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Each column's drift from Evidently's ValueDrift results; the predictions' apart."""
    columns: dict[str, Any] = {}
    prediction_drift = None
    for metric in metrics:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            score, threshold = float(metric["value"]), float(config["threshold"] or 0.1)
            result = {
                "method": config["method"],
                "score": score,
                "threshold": threshold,
                "drifted": score >= threshold,
            }
            if config["column"] == prediction:
                prediction_drift = result
            else:
                columns[config["column"]] = result
    return columns, prediction_drift


def _placeholder(html: Path | None, title: str, text: str) -> None:
    """A small HTML page where no Evidently report can be made, saying why."""
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(
            f"<!doctype html><title>{title}</title><h1>{title}</h1>"
            f"<p>{html_text.escape(text)}</p>\n"
        )


def served_traffic(url: str, window_days: int, schema: Schema) -> tuple[pd.DataFrame, list[str]]:
    """The records logged under ``url`` in the last ``window_days`` days (today included),
    their types converted as the schema says; ``_prediction`` kept beside them (labels are
    matched over their own, longer window: ``_quality``). Also the log files that could not
    be read (truncated or empty: each named in a warning), skipped."""
    since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=window_days - 1)
    skipped: list[str] = []
    logged = _read_log(url, since, skipped=skipped)
    if logged.empty:
        return pd.DataFrame(columns=[c.name for c in raw_columns(schema)]), skipped
    frame = validate(logged, schema, raw_columns(schema), url, checks=False)
    if prediction_log.PREDICTION in logged:
        frame[prediction_log.PREDICTION] = logged[prediction_log.PREDICTION].to_numpy()
    return frame, skipped


def _read_log(url: str, since: dt.date, **options: Any) -> pd.DataFrame:
    try:
        return prediction_log.read_log(url, since, **options)
    except (ImportError, OSError) as error:  # s3fs, gcsfs or adlfs missing; no access
        raise UserError(f"cannot read the prediction log at {url}: {error}") from None


def batch(path: Path, schema: Schema) -> pd.DataFrame:
    """A batch file's records; its labels (the target column, where known) as ``_label``."""
    if not path.exists():
        raise UserError(f"{path} not found")
    table = read_table(path, schema)
    current = validate(table, schema, raw_columns(schema), str(path))  # what the features read
    name = schema.target.name
    if name in table and table[name].notna().any():  # a labelled batch (rows without: not)
        known = table[name].notna().to_numpy()
        labels = validate(table[known], schema, [schema.target], str(path))[name]
        current[LABEL] = pd.Series(pd.NA, index=current.index, dtype=object)
        current.loc[known, LABEL] = labels.to_numpy()
    return current


def load_bundle() -> ModelBundle | None:
    """The model, or None (logged) when there is none: drift of the inputs only."""
    from ..serving.batch import load_model, model_path

    if not model_path().exists():
        log.warning("no model at %s: no prediction drift (run `make pipeline`)", model_path())
        return None
    return load_model()


def model_predictions(frame: pd.DataFrame, bundle: ModelBundle) -> pd.Series:
    """The model's predictions on ``frame`` (raw records: the features are computed here)."""
    from ..pipeline.features import compute_features
    from ..serving.batch import predict_frame

    with step("predicting with the model"):
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
    classes: list[Any] | None = None,
) -> dict[str, Any]:
    """The model's quality on ``current`` (labels, predictions) against ``reference`` (the
    same on the test split), scored as the evaluate stage scores, with Evidently's report
    saved to ``html``; a JSON-able summary. ``classes``: the model's (their order decides a
    binary model's positive class, the last)."""
    target = schema.target.name
    predicted = "prediction" if target != "prediction" else "predicted"
    ref = _quality_frame(*reference, schema, target, predicted)
    cur = _quality_frame(*current, schema, target, predicted)
    labels = None
    if schema.task == "regression":
        now, then = (regression_scores(f[target], f[predicted]) for f in (cur, ref))
    else:
        known = [str(c) for c in classes or []]
        seen = set(cur[target]) | set(cur[predicted]) | set(ref[target]) | set(ref[predicted])
        labels = known + sorted(seen - set(known))
        scoring = known or labels
        now, then = (classification_scores(f[target], f[predicted], scoring) for f in (cur, ref))
    with step("the quality report"):
        shown = _evidently_quality(ref, cur, target, predicted, labels, html)
    name, key, higher_is_better = HEADLINE[schema.task]
    change = (now[key] - then[key]) / (abs(then[key]) or 1.0)
    summary = {
        "rows": len(cur),
        "reference_rows": len(ref),
        "headline": name,
        "current": now[key],
        "reference": then[key],
        "relative_change": change,
        "tolerance": tolerance,
        "degraded": bool((-change if higher_is_better else change) > tolerance),
        "metrics": {k: {"current": now[k], "reference": then.get(k)} for k in now},
        "report": shown,
    }
    if labels is not None:
        summary["per_class"] = {
            "current": per_class_scores(cur[target], cur[predicted], labels),
            "reference": per_class_scores(ref[target], ref[predicted], labels),
        }
        summary["classes"] = {
            "model": known,
            "only_in_labels": sorted(set(cur[target]) - set(known)) if known else [],
            "not_in_test_split": sorted(set(cur[target]) - set(ref[target])),
            "never_predicted": sorted(set(cur[target]) - set(cur[predicted])),
        }
    return summary


def _quality_frame(
    labels: pd.Series, predictions: pd.Series, schema: Schema, target: str, predicted: str
) -> pd.DataFrame:
    """Labels and predictions side by side, as Evidently and the scores take them: numbers for
    a regressor (fractional for an integer target); a classifier's typed as the target, then
    both as text, so that 1 and "1" are one class."""
    values = pd.Series(predictions).reset_index(drop=True)
    if schema.task == "regression":
        typed = pd.to_numeric(values, errors="coerce")
    else:
        typed = validate(
            pd.DataFrame({schema.target.name: values.to_numpy()}),
            schema,
            [schema.target],
            "predictions",
            checks=False,
        )[schema.target.name]
    pair = {target: pd.Series(labels).reset_index(drop=True), predicted: typed}
    kind = "float64" if schema.task == "regression" else str
    return pd.DataFrame({name: values.astype(kind) for name, values in pair.items()})


def _classification_plan(
    ref: pd.DataFrame, cur: pd.DataFrame, target: str, predicted: str
) -> tuple[bool, bool, str]:
    """(binary, beside the test split, why not beside) for Evidently's classification report.
    Evidently 0.7 needs, in each data set, exactly two classes (labels and predictions
    together) for a binary task and any other number for a multi-class one, and the labelled
    rows' classes among the test split's labels to show both (else KeyError, ValueError)."""

    def seen(frame: pd.DataFrame) -> set[str]:
        return set(frame[target]) | set(frame[predicted])

    def fits(frame: pd.DataFrame, binary: bool) -> bool:
        return (len(seen(frame)) == 2) == binary

    binary = len(seen(ref) | seen(cur)) <= 2
    new = sorted(set(cur[target]) - set(ref[target]))
    if new:
        why = f"class(es) {', '.join(new)} of the labels are not in the test split's"
    else:
        why = "one side holds two classes, the other one or more than two"
    if fits(cur, binary) and fits(ref, binary) and not new:
        return binary, True, ""
    return (binary if fits(cur, binary) else not binary), False, why


def _evidently_quality(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    target: str,
    predicted: str,
    labels: list[str] | None,
    html: Path | None,
) -> str:
    """Evidently's classification (or regression) report of ``cur``, beside ``ref`` where it
    can be, saved to ``html``; what the report shows, in words."""
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Regression,
        Report,
    )
    from evidently.presets import ClassificationPreset, RegressionPreset

    if labels is None:
        task: Any = {"regression": [Regression(target=target, prediction=predicted)]}
        columns: dict[str, Any] = {"numerical_columns": [target, predicted]}
        preset: Any = RegressionPreset()
        beside, why = True, ""
    else:
        binary, beside, why = _classification_plan(ref, cur, target, predicted)
        if binary:  # the positive class: the model's last that occurs, as evaluate.py has it
            seen = set(cur[target]) | set(cur[predicted])  # the two classes (and ref's, if beside)
            positive = [label for label in labels if label in seen][-1]
            kind: Any = BinaryClassification(
                target=target, prediction_labels=predicted, pos_label=positive
            )
        else:
            kind = MulticlassClassification(target=target, prediction_labels=predicted)
        task = {"classification": [kind]}
        columns = {"categorical_columns": [target, predicted]}
        preset = ClassificationPreset()
    definition = DataDefinition(**task, **columns)
    reference = Dataset.from_pandas(ref, data_definition=definition) if beside else None
    snapshot = Report([preset]).run(Dataset.from_pandas(cur, data_definition=definition), reference)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html))
    if beside:
        return "the labelled rows beside the test split"
    return (
        f"the labelled rows alone: Evidently cannot show them beside the test split ({why}); "
        "the test split's scores are in drift.json"
    )


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


def labelled_pairs(
    served: pd.DataFrame, feedback: tuple[str, str, int] | None, schema: Schema
) -> tuple[pd.Series, pd.Series] | None:
    """The labels and predictions of the labelled rows; None without labels.

    ``feedback``: where the labels are, the prediction log and how many days back to match
    them in (``monitor.label_window_days``: a label often comes long after its prediction,
    later than the drift window); None for a batch, whose labels are in ``served``."""
    target = schema.target.name
    if feedback is None:
        if LABEL not in served:
            return None
        known = served[LABEL].notna()
        return served.loc[known, LABEL], served.loc[known, prediction_log.PREDICTION]
    feedback_url, log_url, days = feedback
    labels = read_feedback(feedback_url, schema)
    if labels.empty:
        return None
    since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days - 1)
    keys = [prediction_log.REQUEST_ID, prediction_log.RECORD, prediction_log.PREDICTION]
    labelled = _labelled(_read_log(log_url, since, columns=keys), labels, target)
    if len(labelled) < len(labels):
        log.info(
            "%d of %d label(s) in %s match no prediction served in the last %d days",
            len(labels) - len(labelled),
            len(labels),
            feedback_url,
            days,
        )
    return labelled[target], labelled[prediction_log.PREDICTION]


def quality(
    pairs: tuple[pd.Series, pd.Series] | None,
    test_split: Path,
    bundle: ModelBundle,
    settings: Settings,
    html: Path,
) -> dict[str, Any] | None:
    """The quality section of the report: None without labels; "not enough labels" below
    ``min_rows`` labelled rows; else quality_report's summary (and its HTML report)."""
    if pairs is None:
        return None
    if len(pairs[0]) < settings.min_rows:
        return {
            "verdict": "not enough labels",
            "rows": len(pairs[0]),
            "min_rows": settings.min_rows,
        }
    if not test_split.exists():
        raise UserError(f"{test_split} not found (the labelled test split): run `make pipeline`")
    schema = load_schema()
    target = schema.target.name
    columns = (*raw_columns(schema), schema.target)
    test = validate(read_table(test_split, schema), schema, columns, str(test_split))
    test_predictions = model_predictions(test.drop(columns=[target]), bundle)
    return quality_report(
        (test[target], test_predictions), pairs, schema, settings.tolerance, html, bundle.classes
    )


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


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Drift report: the served traffic (or a batch) against the training data. "
        "Exit 0: calm; 1: drift or degraded quality; 2: a mistake to fix; 3: a step failed."
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
    return parser.parse_args(argv)


def read_current(
    args: argparse.Namespace, settings: Settings, schema: Schema, url: str
) -> tuple[pd.DataFrame, str, list[str]]:
    """The rows to check (a batch, or the served traffic), where they come from, and the log
    files skipped."""
    if args.current is not None:
        return batch(args.current, schema), str(args.current), []
    current, skipped = served_traffic(url, settings.window_days, schema)
    return current, f"{url} (served, last {settings.window_days} day(s))", skipped


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    bundle: ModelBundle | None,
    settings: Settings,
    schema: Schema,
    html: Path,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The drift summary, and the rows' labels and predictions (served, or the model's)."""
    extra = [LABEL, prediction_log.PREDICTION]
    served = current[[name for name in extra if name in current]].reset_index(drop=True)
    current = current.drop(columns=extra, errors="ignore")
    predictions = None
    if bundle is not None:
        if prediction_log.PREDICTION not in served:
            served[prediction_log.PREDICTION] = model_predictions(current, bundle)
        predictions = (model_predictions(reference, bundle), served[prediction_log.PREDICTION])
    summary = drift_report(reference, current, settings.drift_share, html, schema, predictions)
    return summary, served


def model_quality(
    args: argparse.Namespace,
    served: pd.DataFrame,
    bundle: ModelBundle,
    settings: Settings,
    schema: Schema,
    url: str,
) -> dict[str, Any] | None:
    """The quality section: labels from the feedback (served traffic) or the batch itself."""
    feedback = None
    if args.current is None:
        labels = args.feedback or os.environ.get("PREDICTION_FEEDBACK") or FEEDBACK_URL
        feedback = (labels, url, settings.label_days)
    elif args.feedback:
        log.warning("--feedback is for the served traffic: a batch's labels are its target")
    pairs = labelled_pairs(served, feedback, schema)
    html = args.output_dir / "quality.html"
    summary = quality(pairs, args.quality_reference, bundle, settings, html)
    if summary is not None:
        summary["labels"] = feedback[0] if feedback else "the batch's target column"
    return summary


def monitor(args: argparse.Namespace) -> dict[str, Any]:
    """Read, compare, score: the summary that drift.json holds."""
    settings, schema = load_settings(args.min_rows), load_schema()
    if not args.reference.exists():
        raise UserError(f"{args.reference} not found: run `make pipeline` first")
    url = args.log or prediction_log.url_from_env() or prediction_log.DEFAULT_URL
    current, source, skipped = read_current(args, settings, schema, url)
    html = args.output_dir / "drift.html"
    if len(current) < settings.min_rows:
        text = f"{len(current)} row(s) in {source}, fewer than monitor.min_rows "
        _placeholder(html, NOT_ENOUGH, text + f"({settings.min_rows}): no verdict on drift.")
        summary = _not_enough(len(current), settings.min_rows, source, settings.drift_share)
        return summary | {"skipped_log_files": skipped}
    table = read_table(args.reference, schema)
    reference = validate(table, schema, raw_columns(schema), str(args.reference))
    bundle = load_bundle()
    summary, served = compare(reference, current, bundle, settings, schema, html)
    summary.update(current=source, skipped_log_files=skipped, quality=None)
    summary["out_of_range"] = out_of_range(current, schema)  # schema.yaml's ranges: soft checks
    if bundle is not None:
        summary["quality"] = model_quality(args, served, bundle, settings, schema, url)
    return summary


def log_summary(summary: dict[str, Any], output_dir: Path) -> None:
    """The verdict in a few lines: drift, prediction drift, quality, missing and new values."""
    if summary["verdict"] == NOT_ENOUGH:
        log.info(
            "%s: %d row(s) in %s (monitor.min_rows: %d)",
            NOT_ENOUGH,
            summary["current_rows"],
            summary["current"],
            summary["min_rows"],
        )
        return
    log.info(
        "%s: %d of %d columns drifted (%.0f%%, threshold %.0f%%): %s; %d row(s) of %s; report: %s",
        "DRIFT DETECTED" if summary["drift_detected"] else "no drift",
        len(summary["drifted_columns"]),
        len(summary["columns"]),
        100 * summary["drifted_share"],
        100 * summary["threshold"],
        ", ".join(summary["drifted_columns"]) or "none",
        summary["current_rows"],
        summary["current"],
        output_dir / "drift.html",
    )
    drift = summary["prediction_drift"]
    if drift is not None:
        log.info(
            "prediction drift: %s (%s %.3f, threshold %.3f)",
            "yes" if drift["drifted"] else "no",
            drift["method"],
            drift["score"],
            drift["threshold"],
        )
    _log_quality(summary["quality"], output_dir)
    for name, missing in summary["missing_values"].items():
        log.info("'%s': %d row(s) missing (%.0f%%)", name, missing["rows"], 100 * missing["share"])
    for name, unseen in summary["unseen_values"].items():
        log.info("'%s': %d row(s) with values not seen in training", name, unseen["rows"])
    for name, count in summary.get("out_of_range", {}).items():
        log.info("'%s': %d value(s) outside the range seen in training (schema.yaml)", name, count)
    if summary.get("skipped_log_files"):
        log.warning("%d log file(s) skipped: not readable", len(summary["skipped_log_files"]))


def _log_quality(quality: dict[str, Any] | None, output_dir: Path) -> None:
    if quality is None:
        return
    if "degraded" not in quality:
        log.info("model quality: %s", quality["verdict"])
        return
    log.info(
        "model quality on %d labelled row(s): %s %.4g against %.4g on the test split (%+.1f%%, "
        "tolerance %.0f%%): %s; report: %s (%s)",
        quality["rows"],
        quality["headline"],
        quality["current"],
        quality["reference"],
        100 * quality["relative_change"],
        100 * quality["tolerance"],
        "DEGRADED" if quality["degraded"] else "as expected",
        output_dir / "quality.html",
        quality["report"],
    )
    classes = quality.get("classes") or {}
    for key, text in (
        ("only_in_labels", "in the labels but unknown to the model (always wrong)"),
        ("not_in_test_split", "in the labels but not in the test split"),
        ("never_predicted", "in the labels but never predicted (precision counted 0)"),
    ):
        if classes.get(key):
            log.info("class(es) %s: %s", text, ", ".join(classes[key]))


def alert(summary: dict[str, Any]) -> bool:
    """Drift, or degraded quality: exit 1."""
    quality = summary.get("quality") or {}
    return bool(summary.get("drift_detected") or quality.get("degraded"))


def _write(path: Path, summary: dict[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name in REPORTS:  # an earlier run's verdict never outlives a failed run
        (args.output_dir / name).unlink(missing_ok=True)
    report = args.output_dir / "drift.json"
    try:
        with step("the monitor"):  # whatever else fails is not a verdict: never exit 1
            summary = monitor(args)
    except (UserError, StepFailed) as error:
        _write(report, {"verdict": "error", "error": str(error)})
        if isinstance(error, UserError):
            raise  # one line, exit 2 (settings.run_cli)
        log.error("%s", error)
        return EXIT_FAILED
    _write(report, summary)
    log_summary(summary, args.output_dir)
    return EXIT_ALERT if alert(summary) else EXIT_CALM


if __name__ == "__main__":
    run_cli(main)
