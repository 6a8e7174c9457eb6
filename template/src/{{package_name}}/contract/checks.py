"""Soft checks: the values served although training never saw them.

``schema.yaml`` records, for each column, the range of numbers and dates and the categories
seen in the training data. A value outside them is served, never refused (a constraint is a
``checks`` entry), but counted: on the service's ``/metrics`` (``unexpected_values``), in the
batch CLI's log and in ``make monitor``'s report (``out_of_range``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .schema import Column, Schema, range_bounds


@dataclass(frozen=True)
class _SoftChecks:
    """A schema's soft checks, ready to apply: (column, smallest, largest) for the ranges,
    (column, the categories seen) for the categories. Built once a schema (the service
    applies them to every request)."""

    ranges: tuple[tuple[Column, Any, Any], ...]
    categories: tuple[tuple[str, frozenset[str]], ...]


def _soft_checks(schema: Schema) -> _SoftChecks:
    cache: dict[tuple[str, ...], Any] = schema._pandera  # type: ignore[attr-defined]
    key = ("soft checks",)
    if key not in cache:
        ranges = tuple((c, *range_bounds(c)) for c in schema.columns if c.range is not None)
        categories = tuple(
            (c.name, frozenset(map(str, c.categories)))
            for c in schema.columns
            if c.categories is not None and c.kind == "category"
        )
        cache[key] = _SoftChecks(ranges, categories)
    return cache[key]


def out_of_range(frame: pd.DataFrame, schema: Schema) -> dict[str, int]:
    """Soft checks, numbers and dates: per column of ``frame`` with a ``range`` in the schema,
    how many (validated) values lie outside it, where some do."""
    counts = {}
    for column, low, high in _soft_checks(schema).ranges:
        if column.name not in frame:
            continue
        values = frame[column.name]
        if column.kind == "timestamp":
            outside = int(((values < low) | (values > high)).sum())
        else:
            array = values.to_numpy(dtype="float64", na_value=np.nan)
            with np.errstate(invalid="ignore"):
                outside = int(np.count_nonzero((array < low) | (array > high)))
        if outside:
            counts[column.name] = outside
    return counts


def unseen_categories(frame: pd.DataFrame, schema: Schema) -> dict[str, int]:
    """Soft checks, categories: per category column of ``frame``, how many values are not
    among the ``categories`` the schema lists, where some are not."""
    counts = {}
    for name, seen in _soft_checks(schema).categories:
        if name not in frame:
            continue
        values = frame[name].to_numpy(dtype=object)
        if len(values) <= 100:  # a request: a loop beats pandas' set-up
            unseen = sum(1 for v in values if isinstance(v, str) and v not in seen)
        else:
            present = pd.notna(values)
            unseen = int((present & ~pd.Series(values).astype(str).isin(seen).to_numpy()).sum())
        if unseen:
            counts[name] = unseen
    return counts


def unexpected_values(frame: pd.DataFrame, schema: Schema) -> dict[str, int]:
    """Every soft check: per column, the values outside its range or its categories seen in
    the training data. Counted and logged by the service, the batch CLI and the monitor;
    never refused (a constraint is a ``checks`` entry)."""
    return {**out_of_range(frame, schema), **unseen_categories(frame, schema)}
