"""DVC stage ``prepare``: validate the raw data and split it by time.

Reads ``data/raw/customers.csv`` and the ``prepare`` section of ``params.yaml``; writes
``data/prepared/train.csv`` (older snapshots) and ``data/prepared/test.csv`` (the newest
``test_size`` share), so the model is always evaluated on data from after its training data.
Training stops ``gap_days`` before the test period: the target looks 90 days ahead, so the
labels of later training rows would only have been known during the test period.
Bad raw data stops the stage with a message naming each column and how many rows fail.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from .schema import TIMESTAMP, read_table, validate
from .settings import UserError, load_params, param, run_cli

log = logging.getLogger(__name__)


def split_by_time(
    frame: pd.DataFrame, test_size: float, gap_days: float = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newest ``test_size`` share for testing; training ends ``gap_days`` before it.

    The cut is a point in time, so snapshots with the same timestamp stay on one side.
    """
    if not 0 < test_size < 1:
        raise UserError(f"prepare.test_size must be between 0 and 1, got {test_size}")
    if gap_days < 0:
        raise UserError(f"prepare.gap_days must be 0 or more, got {gap_days}")
    ordered = frame.sort_values(TIMESTAMP.name, kind="stable").reset_index(drop=True)
    cut_time = ordered[TIMESTAMP.name].iloc[
        min(round(len(ordered) * (1 - test_size)), len(ordered) - 1)
    ]
    train = ordered[ordered[TIMESTAMP.name] < cut_time - pd.Timedelta(days=gap_days)]
    test = ordered[ordered[TIMESTAMP.name] >= cut_time]
    if train.empty or test.empty:
        raise UserError(
            f"{len(ordered)} rows are too few to split with test_size={test_size}, "
            f"gap_days={gap_days}"
        )
    return train, test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate raw data and split it by time.")
    parser.add_argument("raw", type=Path, help="raw CSV or parquet file")
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args(argv)
    params = load_params("prepare")

    frame = validate(read_table(args.raw), source=str(args.raw))
    before = len(frame)
    frame = frame.drop_duplicates()
    if len(frame) < before:
        log.warning("dropped %d duplicate rows", before - len(frame))
    test_size = param(params, "test_size", float, "prepare")
    train, test = split_by_time(frame, test_size, param(params, "gap_days", float, "prepare"))

    args.output_dir.mkdir(parents=True, exist_ok=True)
    # ISO timestamps in UTC: what the next stages (and a human) read back unambiguously.
    for name, split in (("train", train), ("test", test)):
        split = split.assign(
            **{TIMESTAMP.name: split[TIMESTAMP.name].dt.strftime("%Y-%m-%dT%H:%M:%SZ")}
        )
        split.to_csv(args.output_dir / f"{name}.csv", index=False)
    log.info(
        "train: %d rows, test: %d rows (newest %.0f%%), %d rows left out in the gap",
        len(train),
        len(test),
        100 * test_size,
        len(frame) - len(train) - len(test),
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
