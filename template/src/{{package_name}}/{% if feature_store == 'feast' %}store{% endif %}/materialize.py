"""DVC stage ``feature_store``, after ``feast -c feature_repo apply``: the online store.

Reads the registry ``feast apply`` wrote and ``data/feast/source.parquet``; writes the newest
value of each entity into the online store (``data/feast/store/online.db``, SQLite). The
window ends at the newest event in the data and starts a TTL before it: what a lookup may
serve. In production a schedule runs ``feast materialize-incremental`` with the current time
instead (docs/feature-store.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from typing import Any

import pandas as pd

from ..contract.schema import load_schema
from ..settings import UserError, run_cli
from . import SOURCE, VIEW, keys, open_store

log = logging.getLogger(__name__)


def newest_event() -> dt.datetime:
    """The newest event time of the offline table (its end is inclusive: one second on)."""
    _, timestamp = keys(load_schema())
    if not SOURCE.exists():
        raise UserError(f"no {SOURCE}: run `dvc repro feature_source` first")
    times = pd.read_parquet(SOURCE, columns=[timestamp.name])[timestamp.name]
    if times.empty:
        raise UserError(f"{SOURCE} has no rows: nothing to materialize")
    return (times.max() + pd.Timedelta(seconds=1)).to_pydatetime()


def materialize(store: Any) -> str:
    """Load the online store (its tables made by ``feast apply``) from the offline table:
    the newest value of each entity within a TTL of the newest event. Returns the view."""
    view = store.get_feature_view(VIEW)
    end = newest_event()
    store.materialize(start_date=end - view.ttl, end_date=end)
    return str(view.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load the online store from the offline table.")
    parser.parse_args(argv)
    store = open_store()
    name = materialize(store)
    log.info("materialized %s up to %s", name, newest_event().isoformat())
    return 0


if __name__ == "__main__":
    run_cli(main)
