"""DVC stage ``feature_store``, after ``feast -c feature_repo apply``: the online store.

Reads the registry ``feast apply`` wrote and ``data/feast/source.parquet``; writes the newest
value of each entity into the online store (``data/feast/store/online.db``, SQLite), however
old: the window spans every event in the data. A lookup says when a value is older than the
TTL at the record's time (stale); an entity left out of the window would be answered as an
unknown id instead, though the store has its values (a table that spans more than the TTL).
In production a schedule runs ``feast materialize-incremental`` with the current time
instead (docs/feature-store.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from typing import Any

import pandas as pd

from ..contract.schema import Schema, load_schema
from ..settings import UserError, run_cli
from . import SOURCE, VIEW, keys, open_store

log = logging.getLogger(__name__)


def event_span(schema: Schema | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The oldest and the newest event time of the offline table (the end is inclusive: one
    second on)."""
    _, timestamp = keys(schema or load_schema())
    if not SOURCE.exists():
        raise UserError(f"no {SOURCE}: run `dvc repro feature_source` first")
    times = pd.read_parquet(SOURCE, columns=[timestamp.name])[timestamp.name]
    if times.empty:
        raise UserError(f"{SOURCE} has no rows: nothing to materialize")
    return times.min().to_pydatetime(), (times.max() + pd.Timedelta(seconds=1)).to_pydatetime()


def materialize(store: Any, schema: Schema | None = None) -> dt.datetime:
    """Load the online store (its tables made by ``feast apply``) from the offline table: the
    newest value of each entity. Returns the end of the window (the newest event)."""
    start, end = event_span(schema)
    store.materialize(start_date=start, end_date=end, feature_views=[VIEW])
    return end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load the online store from the offline table.")
    parser.parse_args(argv)
    end = materialize(open_store())
    log.info("materialized %s up to %s", VIEW, end.isoformat())
    return 0


if __name__ == "__main__":
    run_cli(main)
