"""Features: defined once, computed the same way for training and for serving.

A small feature store in code: ``FEATURES`` defines each feature of the customer entity;
``historical_features`` computes them for a whole table of past snapshots (training),
``online_features`` for request records (serving). Both call ``compute_features``, so
the two can never compute a feature differently.

As a DVC stage it reads ``data/prepared/{train,test}.csv`` and writes
``data/features/{train,test}.csv``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .schema import ENTITY, INPUT_COLUMNS, TARGET, TIMESTAMP, read_table, validate
from .settings import run_cli

log = logging.getLogger(__name__)

MISSING_CATEGORY = "missing"


@dataclass(frozen=True)
class Feature:
    """A feature of the customer entity: how to compute it from the raw columns."""

    name: str
    kind: str  # "numeric" or "categorical"
    description: str
    compute: Callable[[pd.DataFrame], pd.Series]


def _numeric(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda raw: raw[column].astype("float64")


def _category(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda raw: raw[column].astype(object).where(raw[column].notna(), MISSING_CATEGORY)


def _per_tenure_month(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    # +1: a customer in their first month has tenure 0.
    return lambda raw: raw[column].astype("float64") / (raw["tenure_months"].astype("float64") + 1)


FEATURES: tuple[Feature, ...] = (
    Feature("age", "numeric", "Age in years", _numeric("age")),
    Feature("tenure_months", "numeric", "Months since sign-up", _numeric("tenure_months")),
    Feature("monthly_charges", "numeric", "Current monthly bill", _numeric("monthly_charges")),
    Feature("support_calls", "numeric", "Support calls last year", _numeric("support_calls")),
    Feature(
        "avg_monthly_billed",
        "numeric",
        "Total billed per month of tenure (missing when total_charges is)",
        _per_tenure_month("total_charges"),
    ),
    Feature(
        "calls_per_tenure_month",
        "numeric",
        "Support calls per month of tenure",
        _per_tenure_month("support_calls"),
    ),
    Feature(
        "is_new_customer",
        "numeric",
        "1 in the first six months",
        lambda raw: (raw["tenure_months"].astype("float64") < 6).astype("float64"),
    ),
    Feature("plan", "categorical", "Subscription plan", _category("plan")),
    Feature("region", "categorical", "Sales region ('missing' when unknown)", _category("region")),
    Feature("payment_method", "categorical", "How the customer pays", _category("payment_method")),
)

FEATURE_NAMES = [feature.name for feature in FEATURES]
NUMERIC_FEATURES = [feature.name for feature in FEATURES if feature.kind == "numeric"]
CATEGORICAL_FEATURES = [feature.name for feature in FEATURES if feature.kind == "categorical"]


def compute_features(raw: pd.DataFrame) -> pd.DataFrame:
    """The one feature code path: validated raw columns in, ``FEATURE_NAMES`` columns out."""
    columns = {feature.name: feature.compute(raw) for feature in FEATURES}
    frame = pd.DataFrame(columns, index=raw.index)
    numeric = frame[NUMERIC_FEATURES].replace([np.inf, -np.inf], np.nan)
    frame[NUMERIC_FEATURES] = numeric.astype("float64")
    return frame


def historical_features(raw: pd.DataFrame) -> pd.DataFrame:
    """Training view: entity, timestamp, features and target for every past snapshot."""
    keys = raw[[ENTITY.name, TIMESTAMP.name]]
    target = raw[[TARGET.name]] if TARGET.name in raw else None
    parts = [keys, compute_features(raw)] + ([target] if target is not None else [])
    return pd.concat(parts, axis=1)


def online_features(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Serving view: features for request records (dicts of the schema's input columns)."""
    raw = pd.DataFrame.from_records(list(records), columns=[c.name for c in INPUT_COLUMNS])
    raw = validate(raw, INPUT_COLUMNS, source="request")
    return compute_features(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compute features for the prepared splits.")
    parser.add_argument("input_dir", type=Path, help="folder with train.csv and test.csv")
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args(argv)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        raw = validate(read_table(args.input_dir / f"{split}.csv"), source=f"{split}.csv")
        features = historical_features(raw)
        features.to_csv(args.output_dir / f"{split}.csv", index=False)
        log.info("%s: %d rows, %d features", split, len(features), len(FEATURE_NAMES))
    return 0


if __name__ == "__main__":
    run_cli(main)
