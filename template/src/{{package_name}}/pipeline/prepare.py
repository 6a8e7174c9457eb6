"""DVC stage ``prepare``: validate the raw data and split it into train and test.

Reads the raw table (``data.raw`` in ``params.yaml``), ``schema.yaml`` and the ``prepare``
section; writes ``data/prepared/train.parquet`` and ``data/prepared/test.parquet``.
With a timestamp column the split is by time: the newest ``test_size`` share is the test
set, so the model is always evaluated on data from after its training data, and training
stops ``gap_days`` before it (when the target looks ahead, later training labels would only
have been known during the test period); its calendar features (``features:`` in
schema.yaml) do not change that. Without one, it is a seeded random split, stratified by
class for classification (with a warning when a date is a feature: the time split is then
lost). Rows without a target are left out.
Bad raw data stops the stage with a message naming each column and the failing rows.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from ..contract.schema import Schema, load_schema
from ..contract.tables import read_table, validate
from ..settings import UserError, load_params, param, run_cli

log = logging.getLogger(__name__)


def split_by_time(
    frame: pd.DataFrame, time_column: str, test_size: float, gap_days: float = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newest ``test_size`` share for testing; training ends ``gap_days`` before it.

    The cut is a point in time, so rows with the same timestamp stay on one side.
    """
    if gap_days < 0:
        raise UserError(f"prepare.gap_days must be 0 or more, got {gap_days}")
    ordered = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    cut_time = ordered[time_column].iloc[
        min(round(len(ordered) * (1 - test_size)), len(ordered) - 1)
    ]
    train = ordered[ordered[time_column] < cut_time - pd.Timedelta(days=gap_days)]
    test = ordered[ordered[time_column] >= cut_time]
    return train, test


def split_at_random(
    frame: pd.DataFrame, target: str | None, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random split, stratified by ``target`` when every class has two rows or more."""
    stratify = None
    if target is not None:
        counts = frame[target].value_counts()
        if counts.min() >= 2 and len(counts) <= test_size * len(frame):
            stratify = frame[target]
        else:
            log.warning("some class has fewer than 2 rows: the split is not stratified")
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, shuffle=True, stratify=stratify
    )
    return train.sort_index(), test.sort_index()


def split(frame: pd.DataFrame, schema: Schema, params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test sets as ``params`` (the prepare section) and the schema's roles say."""
    test_size = param(params, "test_size", float)
    if not 0 < test_size < 1:
        raise UserError(f"prepare.test_size must be between 0 and 1, got {test_size}")
    if schema.timestamp is not None:
        gap_days = param(params, "gap_days", float)
        train, test = split_by_time(frame, schema.timestamp.name, test_size, gap_days)
    else:
        dates = [c.name for c in schema.inputs if c.kind == "timestamp"]
        if dates:  # a time column made a feature: the split is no longer by time
            log.warning(
                "no column has role timestamp, so the split is random, although %s is a date "
                "feature; to split by time and still learn from it, give it role: timestamp "
                "and list its calendar features (features: [...]) in schema.yaml",
                ", ".join(dates),
            )
        stratify = schema.target.name if schema.task == "classification" else None
        train, test = split_at_random(frame, stratify, test_size, param(params, "seed", int))
    if train.empty or test.empty:
        raise UserError(
            f"{len(frame)} rows are too few to split with these prepare params: {params}"
        )
    return train, test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate raw data and split it.")
    parser.add_argument("raw", type=Path, help="raw CSV or parquet file")
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args(argv)
    params = load_params("prepare")
    schema = load_schema()

    frame = validate(read_table(args.raw, schema), schema, source=str(args.raw))
    unlabelled = frame[schema.target.name].isna()
    if unlabelled.any():
        log.warning("left out %d rows without a target", int(unlabelled.sum()))
        frame = frame[~unlabelled]
    before = len(frame)
    frame = frame.drop_duplicates()
    if len(frame) < before:
        log.warning("dropped %d duplicate rows", before - len(frame))
    train, test = split(frame, schema, params)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("test", test)):
        part.reset_index(drop=True).to_parquet(args.output_dir / f"{name}.parquet")
    how = f"by {schema.timestamp.name}" if schema.timestamp is not None else "at random"
    log.info(
        "train: %d rows, test: %d rows (split %s), %d rows left out",
        len(train),
        len(test),
        how,
        len(frame) - len(train) - len(test),
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
