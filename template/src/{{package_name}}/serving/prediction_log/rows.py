"""The prediction log's rows: one a record, its values checked against its column's kind
(never converted again), and their parquet encoding."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

_INTEGERS, _FLOATS, _BOOLEANS = (int, np.integer), (float, np.floating), (bool, np.bool_)

DEFAULT_URL = "logs/predictions"
TIMESTAMP, REQUEST_ID, PREDICTION = "_logged_at", "_request_id", "_prediction"
RECORD = "_record"  # the record's position in its request: with the request id, its key
PROBABILITY_PREFIX = "_probability_"
_OWN = {TIMESTAMP, REQUEST_ID, PREDICTION, RECORD}  # the log's columns beside the records
_INT64 = 2**63
# --- values: checked, never converted ------------------------------------------------------
# The type a value of each kind has once typed by the request model: the common case, checked
# first with one comparison (the log's thread checks every value it writes).
_PLAIN = {"integer": int, "float": float, "boolean": bool, "category": str, "text": str}


def _value(value: Any, kind: str) -> Any:
    """``value`` as the log stores it for a column of ``kind``. It was typed already (by the
    service's request model, or the batch CLI's validation): a value of another type raises
    TypeError, one out of the log's range ValueError; nothing is parsed."""
    plain = type(value) is _PLAIN.get(kind)
    if plain and (kind != "integer" or -_INT64 <= value < _INT64):
        return value
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, _FLOATS) and math.isnan(value):
        return None
    if isinstance(value, _BOOLEANS):
        if kind == "boolean":
            return bool(value)
    elif kind == "integer" and isinstance(value, _INTEGERS):
        if -_INT64 <= value < _INT64:
            return int(value)
        raise ValueError(f"{value} is out of the 64-bit integer range")
    elif kind == "float" and isinstance(value, _INTEGERS + _FLOATS):
        return float(value)
    elif kind == "timestamp" and isinstance(value, dt.datetime):
        stamp = pd.Timestamp(value)  # out of pandas' range: OutOfBoundsDatetime, a ValueError
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    elif kind in {"category", "text"} and isinstance(value, str):
        return value
    raise TypeError(f"{type(value).__name__} {str(value)[:40]!r} is not of kind {kind}")


def checked_row(row: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """The row with each of ``columns`` (name -> schema kind) checked (``_value``); keys that
    are neither a column nor the log's own are left out."""
    out = {}
    for name, value in row.items():
        if name in columns:
            out[name] = _value(value, columns[name])
        elif name in _OWN or name.startswith(PROBABILITY_PREFIX):
            out[name] = value
    return out


def _array(values: list[Any], kind: str) -> Any:
    if kind == "integer":
        return pd.array(values, dtype="Int64")
    if kind == "float":
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    if kind == "boolean":
        return pd.array(values, dtype="boolean")
    if kind == "timestamp":
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True)
    return pd.array(values, dtype="string")


def to_frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    """A pandas frame of checked ``rows``: ``columns`` (name -> schema kind) typed as the
    schema says (nullable), so every file of the log has the same types; the other columns
    as inferred."""
    names = list(columns) + sorted({k for row in rows for k in row} - set(columns))
    data: dict[str, Any] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if name in columns:
            data[name] = _array(values, columns[name])
        elif name == TIMESTAMP:
            data[name] = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
        else:
            data[name] = values
    return pd.DataFrame(data, columns=names)


def _parquet(rows: list[dict[str, Any]], columns: dict[str, str]) -> bytes:
    """Written with whichever parquet engine is installed: pyarrow where the pipeline runs,
    fastparquet in the container (13 MB against pyarrow's 140: the image stays slim)."""
    out = io.BytesIO()
    to_frame(rows, columns).reset_index(drop=True).to_parquet(out, index=False)
    return out.getvalue()


def _encodable(rows: list[dict[str, Any]], columns: dict[str, str]) -> tuple[list, list]:
    """The rows that encode (halving to find the ones that do not), and the others."""
    try:
        _parquet(rows, columns)
    except (TypeError, ValueError, OverflowError):
        if len(rows) == 1:
            return [], rows
        middle = len(rows) // 2
        good, bad = _encodable(rows[:middle], columns)
        more_good, more_bad = _encodable(rows[middle:], columns)
        return good + more_good, bad + more_bad
    return rows, []


def _encoded(
    rows: list[dict[str, Any]],
    columns: dict[str, str],
    on_bad: Callable[[int, BaseException], None] | None,
) -> bytes | None:
    try:
        return _parquet(rows, columns)
    except (TypeError, ValueError, OverflowError) as error:
        if on_bad is None:
            raise
        good, bad = _encodable(rows, columns)
        on_bad(len(bad), error)  # the others are written: one bad row costs itself only
        return _parquet(good, columns) if good else None


def answer_rows(
    records: Sequence[dict[str, Any]], response_body: bytes, request_id: str, when: dt.datetime
) -> list[dict[str, Any]]:
    """One row a record of a ``/predict`` exchange: the record, its prediction, the ids."""
    predictions = json.loads(response_body)
    if len(records) != len(predictions):
        raise ValueError(f"{len(records)} records but {len(predictions)} predictions")
    rows = []
    for position, (record, answer) in enumerate(zip(records, predictions, strict=True)):
        row = dict(record)
        row[PREDICTION] = answer.get("prediction")
        for label, probability in (answer.get("probabilities") or {}).items():
            row[PROBABILITY_PREFIX + label] = probability
        row[REQUEST_ID], row[RECORD], row[TIMESTAMP] = request_id, position, when
        rows.append(row)
    return rows


def _raw_records(request_body: bytes) -> list[dict[str, Any]]:
    """A request's records as JSON has them: where no typed records were handed over."""
    return list(json.loads(request_body)["records"])


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _from_json(row: dict[str, Any]) -> dict[str, Any]:
    for name, value in row.items():
        if isinstance(value, dict) and set(value) == {"$t"}:
            row[name] = pd.Timestamp(value["$t"])
    return row


def columns_of(schema: Any) -> dict[str, str]:
    """The logged columns of a project schema: every column a request may send."""
    return {c.name: c.kind for c in schema.columns if c.role != "target"}


def frame_rows(
    records: Iterable[dict[str, Any]], predictions: Any, request_id: str, first_record: int = 0
) -> list[dict[str, Any]]:
    """Rows for the batch CLI: its records and ``predict_frame``'s output, side by side; the
    run is the request, and a record's position is its row in the file (from 0:
    ``first_record`` is the chunk's first)."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    outputs = predictions.to_dict(orient="records")
    for position, (record, out) in enumerate(zip(records, outputs, strict=True), first_record):
        row = dict(record)
        for name, value in out.items():
            if name == "prediction":
                row[PREDICTION] = value.item() if hasattr(value, "item") else value
            elif name.startswith("probability_"):
                row[PROBABILITY_PREFIX + name.removeprefix("probability_")] = float(value)
        row[REQUEST_ID], row[RECORD], row[TIMESTAMP] = request_id, position, now
        rows.append(row)
    return rows
