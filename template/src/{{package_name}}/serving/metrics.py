"""The service's own Prometheus metrics (on ``/metrics``, beside BentoML's)."""

from __future__ import annotations

import logging

import bentoml
import pandas as pd

from ..contract.checks import unexpected_values
from ..contract.schema import Schema

log = logging.getLogger(__name__)
DROPPED = bentoml.metrics.Counter(
    name="prediction_log_dropped_records",
    documentation="Records not written to the prediction log (queue full, write failed, "
    "bad value, lost in a crash)",
    labelnames=["reason"],
)
LOGGED = bentoml.metrics.Counter(
    name="prediction_log_written_records",
    documentation="Records written to the prediction log",
)
UNEXPECTED = bentoml.metrics.Counter(
    name="unexpected_values",
    documentation="Values served although outside what training saw (schema.yaml's range or "
    "categories: soft checks), by column",
    labelnames=["column"],
)


def count_unexpected(raw: pd.DataFrame, schema: Schema) -> None:
    """Soft checks: count (on /metrics) and log the values training never saw; serve them."""
    counts = unexpected_values(raw, schema)
    for name, count in counts.items():
        UNEXPECTED.labels(column=name).inc(count)
    if counts:
        shown = ", ".join(f"{name}: {count}" for name, count in counts.items())
        log.warning("served values outside what training saw (schema.yaml): %s", shown)
