"""Features: defined once, computed the same way for training and for serving.

A small feature store in code. ``feature_set(schema)`` defines the features of the entity:
one per feature column of ``schema.yaml`` (numeric or categorical), the calendar features
its dates feed (``features: [month, day_of_week_cyclic]`` under a timestamp column), and the
engineered ones in ``ENGINEERED``, the one place to add your own (they may read any column
but the target). ``historical_features`` computes them for a whole table of past rows
(training), ``online_features`` for request records (serving), the batch CLI for files: all
call ``compute_features``, so they can never differ. ``raw_columns`` says which columns a
request must carry: the ones the features read.

As a DVC stage it reads ``data/prepared/{train,test}.parquet`` and writes
``data/features/{train,test}.parquet``.
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contract.schema import CALENDAR_PARTS, CYCLIC, Column, Schema, load_schema
from ..contract.tables import read_table, validate
from ..settings import UserError, run_cli

log = logging.getLogger(__name__)

MISSING_CATEGORY = "missing"


@dataclass(frozen=True)
class Feature:
    """A feature of the entity: the raw columns it reads and how to compute it from them."""

    name: str
    kind: str  # "numeric" or "categorical"
    description: str
    inputs: tuple[str, ...]
    compute: Callable[[pd.DataFrame], pd.Series]


def _numeric(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    def compute(raw: pd.DataFrame) -> pd.Series:
        values = raw[column]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return values.astype("int64").where(values.notna()) / 86_400e9  # days since 1970
        return values.astype("float64")

    return compute


def _category(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda raw: raw[column].astype(object).where(raw[column].notna(), MISSING_CATEGORY)


def base_feature(column: Column) -> Feature:
    """The default feature of a column: its value, as a number or as a category."""
    if column.kind in {"category", "text"}:
        return Feature(
            column.name, "categorical", column.description, (column.name,), _category(column.name)
        )
    return Feature(
        column.name, "numeric", column.description, (column.name,), _numeric(column.name)
    )


# Each calendar part of a date (CALENDAR_PARTS in schema.py), from pandas' ``.dt`` of UTC times.
_PARTS: dict[str, Callable[[Any], Any]] = {
    "year": lambda t: t.year,
    "quarter": lambda t: t.quarter,
    "month": lambda t: t.month,
    "day": lambda t: t.day,
    "day_of_week": lambda t: t.dayofweek,  # Monday is 0
    "day_of_year": lambda t: t.dayofyear,
    "hour": lambda t: t.hour,
    "is_weekend": lambda t: (t.dayofweek >= 5).astype("float64").where(t.dayofweek.notna()),
}
_COUNTED_FROM_0 = {"day_of_week", "hour"}  # the other periodic parts start at 1


def _calendar(column: str, part: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda raw: _PARTS[part](raw[column].dt).astype("float64")  # NaN where no time


def _cyclic(column: str, part: str, trig: Callable[[Any], Any]) -> Callable[[pd.DataFrame], Any]:
    period = CALENDAR_PARTS[part]
    start = 0 if part in _COUNTED_FROM_0 else 1

    def compute(raw: pd.DataFrame) -> Any:
        position = _PARTS[part](raw[column].dt).astype("float64") - start
        return trig(2 * np.pi * position / period)

    return compute


def calendar_features(column: Column) -> tuple[Feature, ...]:
    """The features a date feeds, as its ``features:`` in schema.yaml lists them: a calendar
    part is one feature, ``<column>_<part>``; a cyclic one two, ``<column>_<part>_sin`` and
    ``_cos``: the part as a point on a circle, so that a period's end is next to its start."""
    out = []
    for wanted in column.features:
        part = wanted.removesuffix(CYCLIC)
        name, about = f"{column.name}_{part}", f"{part.replace('_', ' ')} of {column.name}"
        reads = (column.name,)
        if wanted == part:
            out.append(Feature(name, "numeric", about, reads, _calendar(column.name, part)))
            continue
        for trig in (np.sin, np.cos):
            compute = _cyclic(column.name, part, trig)
            label = f"{about}, cyclic ({trig.__name__})"
            out.append(Feature(f"{name}_{trig.__name__}", "numeric", label, reads, compute))
    return tuple(out)


# Engineered features: add yours here. Each names the columns of schema.yaml it reads
# (`inputs`: any column but the target, so an excluded one too: a request then carries it);
# one that reads a column the schema does not have is left out, with a log line. E.g.:
#     Feature(
#         "price_per_room",
#         "numeric",
#         "Price divided by rooms",
#         ("price", "rooms"),
#         lambda raw: raw["price"].astype("float64") / raw["rooms"].astype("float64"),
#     ),
ENGINEERED: tuple[Feature, ...] = ()


def engineered() -> tuple[Feature, ...]:
    """``ENGINEERED``, after the bundled sample's own while the project has the sample
    (``contract/sample_data.py``, which ``make adopt-data`` removes with the sample)."""
    return (*_sample_features(), *ENGINEERED)


@functools.cache
def _sample_features() -> tuple[Feature, ...]:
    try:
        from ..contract.sample_data import FEATURES
    except ModuleNotFoundError as error:
        if error.name != f"{__package__.rsplit('.', 1)[0]}.contract.sample_data":
            raise
        return ()
    return tuple(Feature(**spec) for spec in FEATURES)


def feature_set(schema: Schema) -> tuple[Feature, ...]:
    """Every feature for this schema: one per feature column, then the calendar features of
    its dates (``features:`` in schema.yaml), then the engineered ones that it can feed."""
    features = [base_feature(column) for column in schema.inputs]
    for column in schema.columns:
        features += calendar_features(column)
    columns = {column.name for column in schema.columns}
    for feature in engineered():
        if schema.target.name in feature.inputs:
            raise UserError(
                f"feature {feature.name} reads the target '{schema.target.name}': a prediction "
                "does not know it (pipeline/features.py)"
            )
        missing = [name for name in feature.inputs if name not in columns]
        if missing:
            log.debug("feature %s left out: needs %s", feature.name, ", ".join(missing))
        else:
            features.append(feature)
    seen = names(features)
    twice = sorted({name for name in seen if seen.count(name) > 1})
    if twice:
        raise UserError(f"two features have the same name: {', '.join(twice)} (rename one)")
    return tuple(features)


def left_out(features: Iterable[Feature]) -> list[str]:
    """The engineered features left out of ``features`` (a column they read is not in the
    schema)."""
    kept = set(names(features))
    return [feature.name for feature in engineered() if feature.name not in kept]


def raw_columns(schema: Schema, features: Iterable[Feature] | None = None) -> tuple[Column, ...]:
    """The columns the features read, in the schema's order: what a request must carry."""
    features = feature_set(schema) if features is None else features
    read = {name for feature in features for name in feature.inputs}
    return tuple(column for column in schema.columns if column.name in read)


def names(features: Iterable[Feature], kind: str | None = None) -> list[str]:
    return [feature.name for feature in features if kind is None or feature.kind == kind]


def compute_features(raw: pd.DataFrame, features: tuple[Feature, ...]) -> pd.DataFrame:
    """The one feature code path: validated raw columns in, one column per feature out."""
    columns: dict[str, Any] = {}
    for feature in features:
        values = feature.compute(raw)
        if feature.kind == "numeric":  # float64, with an infinity (a division by 0) as missing
            values = np.asarray(values, dtype="float64")
            if np.isinf(values).any():
                values = np.where(np.isinf(values), np.nan, values)
        columns[feature.name] = values
    return pd.DataFrame(columns, index=raw.index)


def historical_features(
    raw: pd.DataFrame, schema: Schema, features: tuple[Feature, ...] | None = None
) -> pd.DataFrame:
    """Training view: id and timestamp (where the data has them), features, and the target."""
    keys = [column.name for column in schema.keys if column.name in raw]
    target = [schema.target.name] if schema.target.name in raw else []
    computed = compute_features(raw, feature_set(schema) if features is None else features)
    return pd.concat([raw[keys], computed, raw[target]], axis=1)


def online_features(records: Iterable[Mapping[str, Any]], schema: Schema) -> pd.DataFrame:
    """Serving view: features for request records (dicts keyed by the schema's column names)."""
    features = feature_set(schema)
    return compute_features(request_frame(list(records), schema, features), features)


def request_frame(
    records: list[Mapping[str, Any]], schema: Schema, features: Iterable[Feature] | None = None
) -> pd.DataFrame:
    """Request records as a frame of the columns the features read, typed as in training.

    The records' values are taken as the service's request model typed them; nullability and
    the checks of schema.yaml were enforced there, per request. A value of the wrong type
    falls back to the stages' validation, which names the column.
    """
    columns = raw_columns(schema, features)
    try:
        return _typed_frame(records, columns)
    except (TypeError, ValueError):
        raw = pd.DataFrame.from_records(records, columns=[c.name for c in columns])
        return validate(raw, schema, columns, source="request", checks=False)


def _typed_frame(records: list[Mapping[str, Any]], inputs: tuple[Column, ...]) -> pd.DataFrame:
    # One numpy array a column: a tenth of what pandas' general conversions cost on one row.
    columns: dict[str, Any] = {}
    for column in inputs:
        values = [record.get(column.name) for record in records]
        if column.kind in {"integer", "float"}:
            array = np.array([np.nan if v is None else v for v in values], dtype="float64")
            if any(isinstance(v, (str, bool)) for v in values):
                raise TypeError(column.name)
            columns[column.name] = array
        elif column.kind == "boolean":
            columns[column.name] = pd.array(values, dtype="boolean")
        elif column.kind == "timestamp":
            columns[column.name] = pd.to_datetime(values, utc=True, format="ISO8601")
        else:
            if any(v is not None and not isinstance(v, str) for v in values):
                raise TypeError(column.name)
            columns[column.name] = np.array(values, dtype=object)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compute features for the prepared splits.")
    parser.add_argument("input_dir", type=Path, help="folder with train.parquet and test.parquet")
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args(argv)
    schema = load_schema()
    features = feature_set(schema)
    unfed = left_out(features)
    if unfed:
        log.info("engineered features left out (they read columns schema.yaml lacks): %s", unfed)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        raw = validate(read_table(args.input_dir / f"{split}.parquet"), schema, source=split)
        historical_features(raw, schema, features).to_parquet(args.output_dir / f"{split}.parquet")
        log.info("%s: %d rows, %d features", split, len(raw), len(features))
    return 0


if __name__ == "__main__":
    run_cli(main)
