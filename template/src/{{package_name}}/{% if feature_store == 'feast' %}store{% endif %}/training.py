"""DVC stage ``features`` (with Feast): point-in-time correct features for training.

Reads ``data/prepared/{train,test}.parquet`` (each labelled row: its id, its timestamp, its
label, and the values a request carries itself) and the feature store; writes
``data/features/{train,test}.parquet`` as ``pipeline/features.py`` does. Each row gets the
stored values of its entity as they were at its timestamp (``get_historical_features``: the
newest feature row not after it and within the TTL), then the features are computed from them
by ``pipeline/features.py``, as the service does from a lookup. A row whose entity had no
value yet keeps its label, with the values missing: no labelled row is dropped.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract.schema import Schema, load_schema
from ..contract.tables import read_table, validate
from ..pipeline.features import feature_set, historical_features
from ..settings import UserError, run_cli
from . import feature_refs, keys, open_store, request_columns, stored_columns

log = logging.getLogger(__name__)

_ROW = "__row"  # each labelled row's position: the join's output is in no set order


def point_in_time(store: Any, labelled: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """``labelled`` (id, timestamp, label, request values) with the stored values of each
    row's entity at its timestamp: as many rows, in the same order."""
    id_column, timestamp = keys(schema)
    carried = [id_column.name, timestamp.name, *(c.name for c in request_columns(schema))]
    if schema.target.name in labelled:
        carried.append(schema.target.name)
    entities = labelled[list(dict.fromkeys(carried))].copy()
    entities[_ROW] = range(len(entities))
    if entities[timestamp.name].isna().any():
        raise UserError(f"rows without a '{timestamp.name}': a point-in-time join needs it")
    joined = store.get_historical_features(
        entity_df=entities, features=feature_refs(schema)
    ).to_df()
    if len(joined) != len(entities):
        raise UserError(f"the feature store returned {len(joined)} rows for {len(entities)}")
    joined = joined.sort_values(_ROW).drop(columns=_ROW).reset_index(drop=True)
    for column in stored_columns(schema):  # Feast gives floats and objects: the schema's types
        if column.kind == "timestamp":
            joined[column.name] = pd.to_datetime(joined[column.name], utc=True)
    joined[timestamp.name] = pd.to_datetime(joined[timestamp.name], utc=True)
    return joined.set_axis(labelled.index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Point-in-time features from the store.")
    parser.add_argument("input_dir", type=Path, help="folder with train.parquet and test.parquet")
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args(argv)
    schema = load_schema()
    features = feature_set(schema)
    store = open_store()
    stored = [column.name for column in stored_columns(schema)]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        labelled = validate(read_table(args.input_dir / f"{split}.parquet"), schema, source=split)
        raw = point_in_time(store, labelled, schema)
        unmatched = int(raw[stored].isna().all(axis=1).sum()) if stored else 0
        if unmatched:
            log.warning(
                "%s: %d labelled rows had no stored values within the TTL at their time "
                "(kept, their values missing)",
                split,
                unmatched,
            )
        historical_features(raw, schema, features).to_parquet(args.output_dir / f"{split}.parquet")
        log.info("%s: %d rows, %d features (point in time)", split, len(raw), len(features))
    return 0


if __name__ == "__main__":
    run_cli(main)
