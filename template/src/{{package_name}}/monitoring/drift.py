"""Drift: the distance between the reference (training) data and the current rows, column by
column (Evidently), the prediction drift, and per column the missing values and the values
never seen in the reference."""

from __future__ import annotations

import html as html_text
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract.schema import Schema, load_schema
from ..serving import prediction_log
from .steps import step

# Distances, not p-values: a p-value test flags tiny, harmless shifts once batches are large,
# and its verdict flips with sample size. Drift is a distance at or above the threshold.
NUMERIC_METHOD, CATEGORICAL_METHOD = "wasserstein", "jensenshannon"


ALL_MISSING = "all missing"  # the method of a column with no value on one side


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
        placeholder(html, "Drift report", "No column has values on both sides to compare.")
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


def placeholder(html: Path | None, title: str, text: str) -> None:
    """A small HTML page where no Evidently report can be made, saying why."""
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(
            f"<!doctype html><title>{title}</title><h1>{title}</h1>"
            f"<p>{html_text.escape(text)}</p>\n"
        )
