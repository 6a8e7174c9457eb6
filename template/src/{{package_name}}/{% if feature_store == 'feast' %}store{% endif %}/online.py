"""Serving: the stored values of an entity, looked up by its id in the online store.

A request record may carry just the id and the values a request carries itself
(``request_columns``): ``with_lookup`` gives the service's request model a validator that
fills each stored column the record left out from the online store, before the record is
batched, predicted and logged (the prediction log then holds what the model was given). An id
the store does not hold, and values older than the TTL at the record's time (its timestamp
column when sent, else now), are the client's to fix: a 400 naming the id.

The store is opened once per worker process (``Lookups``), not per request. When it cannot
be opened (a missing registry, an unreachable online store), that is said once in the log and
sticks for the worker: ``/readyz`` stays 503, and a record that needs a lookup is answered 503
with the reason (the server's problem, not the client's: ``SERVER_FAULTS``, which
``RequestGuard`` answers), at once, without trying to open the store again; a record sent
whole is still served. Restart the worker once the store is fixed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, create_model, model_validator

from ..contract.schema import Schema
from ..serving.api import SERVER_FAULTS
from . import VIEW, feature_refs, keys, open_store, stored_columns

log = logging.getLogger(__name__)


class OnlineFeatures:
    """The online store's lookups for one schema."""

    def __init__(self, store: Any, schema: Schema, time_to_live: dt.timedelta) -> None:
        self.store, self.schema, self.ttl = store, schema, time_to_live
        self.id_name = keys(schema)[0].name
        self.refs = feature_refs(schema)
        self.columns = [column.name for column in stored_columns(schema)]

    def lookup(self, entity_id: Any, as_of: dt.datetime | None = None) -> dict[str, Any]:
        """The stored values of ``entity_id``; a ValueError naming it when the store does not
        hold it, or holds values older than the TTL at ``as_of`` (now when None)."""
        found = self.store.get_online_features(
            features=self.refs, entity_rows=[{self.id_name: entity_id}]
        ).to_dict(include_event_timestamps=True)
        stamps = [found[f"{name}__ts"][0] for name in self.columns]
        if not self.columns or not any(stamps):
            raise ValueError(
                f"{self.id_name} {entity_id!r} is not in the feature store (unknown id)"
            )
        stamped = dt.datetime.fromtimestamp(max(stamps), tz=dt.UTC)
        now = as_of or dt.datetime.now(dt.UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        if now - stamped > self.ttl:
            raise ValueError(
                f"{self.id_name} {entity_id!r}: its stored values are from "
                f"{stamped.isoformat()}, older than the TTL of {self.ttl.days} days at "
                f"{now.isoformat()} (stale)"
            )
        return {name: found[name][0] for name in self.columns}


class StoreUnavailable(RuntimeError):
    """The online store could not be opened in this worker: the server's fault."""


class Lookups:
    """The online store of this worker process: opened once, in the background (importing
    Feast and reading the registry take seconds), before the worker says it is ready. A
    failed open is not tried again: ``failure`` says why, and ``get`` raises it at once."""

    def __init__(self, schema: Schema, repo: Path | None = None) -> None:
        self.schema, self.repo = schema, repo
        self.failure: str | None = None
        self._features: OnlineFeatures | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._features is not None

    def open_in_background(self) -> None:
        threading.Thread(target=self._open_logged, name="open-feature-store", daemon=True).start()

    def get(self) -> OnlineFeatures:
        """The lookups (the store opened by the first call; the next ones wait for it), or
        StoreUnavailable when it could not be opened."""
        with self._lock:
            if self._features is None and self.failure is None:
                self._open()
            if self._features is None:
                raise StoreUnavailable(f"the feature store is unavailable: {self.failure}")
            return self._features

    def _open(self) -> None:
        started = time.monotonic()
        try:
            store = open_store(self.repo)
            view = store.get_feature_view(VIEW)
        except Exception as error:  # a missing registry or store fails in many ways
            self.failure = f"{type(error).__name__}: {error}"
            log.error("the feature store cannot be opened (not retried): %s", self.failure)
            return
        self._features = OnlineFeatures(store, self.schema, view.ttl)
        log.info("feature store opened in %.1f s", time.monotonic() - started)

    def _open_logged(self) -> None:
        with contextlib.suppress(StoreUnavailable):  # logged once by _open
            self.get()


def with_lookup(record: type[BaseModel], lookups: Lookups) -> type[BaseModel]:
    """``record`` (the service's request model) with its stored columns filled from the
    online store when a request leaves any out."""
    schema = lookups.schema
    aliases = {field.alias or name: name for name, field in record.model_fields.items()}
    stored = [aliases[column.name] for column in stored_columns(schema)]
    id_attribute = aliases[keys(schema)[0].name]
    time_attribute = aliases.get(keys(schema)[1].name)

    def fill(self: BaseModel) -> BaseModel:
        missing = [name for name in stored if name not in self.model_fields_set]
        if not missing:
            return self
        entity_id = getattr(self, id_attribute)
        if entity_id is None:
            raise ValueError(f"{keys(schema)[0].name} is needed to look the features up")
        as_of = getattr(self, time_attribute) if time_attribute else None
        try:
            features = lookups.get()
        except StoreUnavailable as error:
            faults = SERVER_FAULTS.get()
            if faults is not None:  # RequestGuard answers 503 with it, not this 400
                faults.append(f"{error}; a record sent whole is still served")
            raise ValueError(str(error)) from None
        values = features.lookup(entity_id, as_of)
        for name, column in zip(stored, stored_columns(schema), strict=True):
            if name in missing:
                setattr(self, name, values[column.name])
        return self

    return create_model(  # type: ignore[call-overload, no-any-return]
        "Record",
        __base__=record,
        __validators__={"lookup": model_validator(mode="after")(fill)},
    )
