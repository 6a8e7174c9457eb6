"""Model quality where labels are known: the labelled rows scored as the evaluate stage scores
the test split (the same functions), against the test split's, and Evidently's classification
or regression report."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract.schema import Schema, load_schema
from ..contract.tables import read_table, validate
from ..model import ModelBundle
from ..pipeline.evaluate import classification_scores, per_class_scores, regression_scores
from ..pipeline.features import raw_columns
from ..serving import prediction_log
from ..settings import UserError
from .feedback import read_feedback
from .steps import Settings, step
from .traffic import LABEL, model_predictions, read_log_since

log = logging.getLogger(__name__)


# The headline metric of each task (its key in the scores), and whether higher is better.
HEADLINE = {"classification": ("Accuracy", "accuracy", True), "regression": ("RMSE", "rmse", False)}


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
    labelled = _labelled(read_log_since(log_url, since, columns=keys), labels, target)
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
