"""The rows monitored: the served traffic (the prediction log) or a batch file, and the
model's predictions on them."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract.schema import Schema
from ..contract.tables import read_table, validate
from ..model import ModelBundle
from ..pipeline.features import raw_columns
from ..serving import prediction_log
from ..settings import UserError
from .steps import step

log = logging.getLogger(__name__)


LABEL = "_label"  # a labelled batch's target, beside its records


def served_traffic(url: str, window_days: int, schema: Schema) -> tuple[pd.DataFrame, list[str]]:
    """The records logged under ``url`` in the last ``window_days`` days (today included),
    their types converted as the schema says; ``_prediction`` kept beside them (labels are
    matched over their own, longer window: ``_quality``). Also the log files that could not
    be read (truncated or empty: each named in a warning), skipped."""
    since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=window_days - 1)
    skipped: list[str] = []
    logged = read_log_since(url, since, skipped=skipped)
    if logged.empty:
        return pd.DataFrame(columns=[c.name for c in raw_columns(schema)]), skipped
    frame = validate(logged, schema, raw_columns(schema), url, checks=False)
    if prediction_log.PREDICTION in logged:
        frame[prediction_log.PREDICTION] = logged[prediction_log.PREDICTION].to_numpy()
    return frame, skipped


def read_log_since(url: str, since: dt.date, **options: Any) -> pd.DataFrame:
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
    from ..model import load_model, model_path

    if not model_path().exists():
        log.warning("no model at %s: no prediction drift (run `make pipeline`)", model_path())
        return None
    return load_model()


def model_predictions(frame: pd.DataFrame, bundle: ModelBundle) -> pd.Series:
    """The model's predictions on ``frame`` (raw records: the features are computed here)."""
    from ..model import predict_frame
    from ..pipeline.features import compute_features

    with step("predicting with the model"):
        features = compute_features(frame, bundle.feature_definitions)
        return predict_frame(bundle, features)["prediction"].reset_index(drop=True)
