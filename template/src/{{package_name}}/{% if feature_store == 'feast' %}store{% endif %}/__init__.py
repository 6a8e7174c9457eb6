"""The feature store: Feast, over the prepared data, keyed by the schema's id column.

One feature view holds the feature columns of ``schema.yaml`` (role ``feature``) for the
entity named by its id column, stamped by its timestamp column; ``params.yaml``'s
``feature_store.ttl_days`` says how old a value may be and still count. ``definitions``
builds it: ``feature_repo/definitions.py`` (what ``feast apply`` reads) calls it, so the
definitions live here, once, for the training and the serving paths alike. What the model
computes from those values stays in ``pipeline/features.py``.

- ``source.py`` (DVC stage ``feature_source``): the prepared splits as the offline table.
- ``materialize.py`` (stage ``feature_store``, after ``feast apply``): the online store.
- ``training.py`` (stage ``features``): point-in-time features for each labelled row.
- ``online.py`` (the service): features looked up by entity id, once per worker.

Feast is imported inside the functions that need it: its import costs seconds.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from pathlib import Path
from typing import Any

from ..contract.schema import Column, Schema
from ..pipeline.features import raw_columns
from ..settings import PARAMS_FILE, UserError, load_params, param

SOURCE = Path("data/feast/source.parquet")  # the offline table, relative to the project root
VIEW = "entity_features"

# Each kind of schema.yaml as Feast stores it.
_FEAST_TYPES = {
    "integer": "Int64",
    "float": "Float64",
    "boolean": "Bool",
    "category": "String",
    "text": "String",
    "timestamp": "UnixTimestamp",
}
_VALUE_TYPES = {"integer": "INT64", "category": "STRING", "text": "STRING"}
# Feast's metrics module sets these when imported, for a folder of its own: left in this
# process's environment, a `bentoml serve` started from it (a test's) would take the folder
# for the one its server chose, and share /metrics with every other service.
_PROMETHEUS_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")


def import_feast() -> Any:
    """Feast, imported (seconds, once) without changing this process's environment."""
    before = {name: os.environ.get(name) for name in _PROMETHEUS_VARIABLES}
    # prometheus_client picks its storage when first imported: before Feast's folder is set.
    importlib.import_module("prometheus_client.values")
    # feast.metrics is what sets the variables: imported now, not by a later call.
    import feast
    import feast.metrics
    import feast.types

    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
    return feast


def keys(schema: Schema) -> tuple[Column, Column]:
    """The id column (the entity) and the timestamp column (the event time), or why not."""
    if schema.id is None or schema.timestamp is None:
        missing = " and ".join(
            f"a column of role {role}" for role in ("id", "timestamp") if schema.role(role) is None
        )
        raise UserError(
            f"the Feast feature store needs {missing} in schema.yaml (the entity and the "
            "event time): set the roles, or generate the project with feature_store=module"
        )
    if schema.id.kind not in _VALUE_TYPES:
        raise UserError(
            f"the id column '{schema.id.name}' is {schema.id.kind}: Feast's entity key must be "
            "an integer or a text"
        )
    return schema.id, schema.timestamp


def stored_columns(schema: Schema) -> tuple[Column, ...]:
    """The columns the store holds: the feature columns the features read."""
    read = {column.name for column in raw_columns(schema)}
    return tuple(column for column in schema.inputs if column.name in read)


def request_columns(schema: Schema) -> tuple[Column, ...]:
    """The columns a request still carries itself: read by a feature, not in the store (a
    date that feeds calendar features, an excluded column an engineered feature reads)."""
    stored = {column.name for column in stored_columns(schema)}
    id_name = schema.id.name if schema.id is not None else None
    return tuple(c for c in raw_columns(schema) if c.name not in stored and c.name != id_name)


def ttl(params: Path = PARAMS_FILE) -> dt.timedelta:
    """How old a stored value may be and still count (``feature_store.ttl_days``)."""
    days = param(load_params("feature_store", params), "ttl_days", float)
    if days <= 0:
        raise UserError("params.yaml: 'feature_store.ttl_days' must be more than 0")
    return dt.timedelta(days=days)


def feature_refs(schema: Schema) -> list[str]:
    return [f"{VIEW}:{column.name}" for column in stored_columns(schema)]


def definitions(schema: Schema, time_to_live: dt.timedelta | None = None) -> tuple[Any, Any]:
    """The entity and the feature view of ``schema``: what ``feast apply`` registers."""
    feast = import_feast()
    id_column, timestamp = keys(schema)
    entity = feast.Entity(
        name=id_column.name,
        join_keys=[id_column.name],
        value_type=getattr(feast.ValueType, _VALUE_TYPES[id_column.kind]),
        description=id_column.description,
    )
    source = feast.FileSource(
        name=f"{VIEW}_source", path=str(SOURCE), timestamp_field=timestamp.name
    )
    fields = [
        feast.Field(
            name=column.name,
            dtype=getattr(feast.types, _FEAST_TYPES[column.kind]),
            description=column.description,
        )
        for column in stored_columns(schema)
    ]
    view = feast.FeatureView(
        name=VIEW,
        entities=[entity],
        ttl=time_to_live if time_to_live is not None else ttl(),
        schema=fields,
        source=source,
        online=True,
    )
    return entity, view


def open_store(repo: Path | None = None) -> Any:
    """The feature store of ``repo`` (``FEAST_REPO``, else ``feature_repo/``); its
    ``feature_store.yaml`` says where the registry and the online store are
    (``FEAST_FS_YAML`` picks another file of that folder, e.g. one a deployment
    environment)."""
    feast = import_feast()
    # Read now, not at import: the project's tests point the service at a store of their own.
    repo = repo or Path(os.environ.get("FEAST_REPO", "feature_repo"))
    yaml_file = repo / os.environ.get("FEAST_FS_YAML", "feature_store.yaml")
    if not yaml_file.is_file():
        raise UserError(f"no Feast configuration at {yaml_file}: run this from the project root")
    return feast.FeatureStore(repo_path=str(repo), fs_yaml_file=yaml_file)
