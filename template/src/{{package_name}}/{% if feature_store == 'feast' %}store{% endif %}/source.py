"""DVC stage ``feature_source``: the offline table of the feature store.

Reads ``data/prepared/{train,test}.parquet`` and ``schema.yaml``; writes
``data/feast/source.parquet``: the id, the timestamp and the stored feature columns of every
prepared row, both splits (a point-in-time join never reads a row newer than the label it is
joined to, so the test period's rows cannot leak into training). The feature view of
``store/__init__.py`` reads it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from ..contract.schema import load_schema
from ..contract.tables import read_table, validate
from ..settings import run_cli
from . import SOURCE, keys, stored_columns

log = logging.getLogger(__name__)


def source_table(prepared: Path) -> pd.DataFrame:
    """The id, the timestamp and the stored columns of both prepared splits."""
    schema = load_schema()
    id_column, timestamp = keys(schema)
    wanted = [id_column.name, timestamp.name, *(c.name for c in stored_columns(schema))]
    splits = [
        validate(read_table(prepared / f"{split}.parquet"), schema, source=split)[wanted]
        for split in ("train", "test")
    ]
    table = pd.concat(splits, ignore_index=True)
    keyed = table[id_column.name].notna() & table[timestamp.name].notna()
    if not keyed.all():
        log.warning("%d rows without an id or a timestamp left out", int((~keyed).sum()))
    return table[keyed].sort_values(timestamp.name, kind="stable").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the feature store's offline table.")
    parser.add_argument("prepared", type=Path, help="folder with train.parquet and test.parquet")
    parser.add_argument("output", type=Path, nargs="?", default=SOURCE)
    args = parser.parse_args(argv)
    table = source_table(args.prepared)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(args.output, index=False)
    log.info("%d rows of %d columns -> %s", len(table), table.shape[1], args.output)
    return 0


if __name__ == "__main__":
    run_cli(main)
