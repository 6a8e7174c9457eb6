"""Prediction logging: what the service was sent and what it answered, as parquet files.

The service hands each answered ``POST /predict`` to a ``PredictionLog``: the records as its
request model typed them (the very objects the model was given), the response's body, a
request id and the time. That costs the request a queue put and no parsing; a background
thread turns them into one row a record (the record's columns, ``_prediction``,
``_probability_<label>``, ``_request_id``, ``_record`` (the record's position in its request,
from 0), ``_logged_at``) and writes them under the log's URL, one folder a day::

    <url>/date=2026-11-27/part-20261127T101500Z-<pid>-<token>.parquet

Values are stored as they were typed for the model, never converted again: the log checks
each value against its column's kind, and a row that does not pass is dropped alone,
counted (``bad_value``). The URL is a local folder (``logs/predictions``, the default) or
``s3://``, ``gs://``, ``az://`` through fsspec, with the credentials DVC uses for the same
store (the environment, ``~/.aws``, ...; s3fs, gcsfs or adlfs must be installed: ``dvc[s3]``
brings s3fs). A file is closed when it holds ``file_rows`` rows or its oldest row is
``file_seconds`` old, and on ``close()``: files are never appended to, so an object store
takes them as they are.

Crash safety: until its file is written, every row is also appended, within a quarter of a
second, to this process's spool on local disk (``<folder>/.spool/`` for a local log, else
``PREDICTION_LOG_SPOOL``, default a folder under the system's temporary directory), with a
ledger of the records accepted and settled. A process that dies (``kill -9``, a container's
end) leaves both behind, unlocked; the next process that starts with this log writes the
spooled rows into the log, and counts what was accepted but never reached the spool (at
most the last second) as dropped (``lost_in_crash``). The same start removes other
leftovers: temporary files of an interrupted write, and a batch run's rows whose output was
never written (``BatchLog``).

Memory stays bounded: records wait in a queue of at most ``max_queue_bytes`` (counted as
their request's and response's bodies); a request that finds it full is answered as usual
and its records are dropped. A failed write (full disk, unreachable bucket, no permission)
drops the file's records. Every dropped record is counted (``on_drop(reason, count)``; the
service feeds a Prometheus counter on /metrics) and logged, at most once a minute: logging
costs records, never requests.

Why not BentoML's own data collection (``bentoml.monitor``): its default exporter writes
JSON lines through ``logging`` handlers on the request's thread, to local files only, rotated
by day, with no bound, and a failed write is printed by ``logging`` and lost uncounted; the
OTLP exporter needs a collector to send to. And in a batched API (adaptive batching) the
method sees the records of several requests merged, so it cannot say which request each
came from. What is kept from it: its record layout (one row a record, its columns, the
prediction, a timestamp and a request id beside them).
"""

from __future__ import annotations

from .rows import (
    DEFAULT_URL,
    PREDICTION,
    PROBABILITY_PREFIX,
    RECORD,
    REQUEST_ID,
    TIMESTAMP,
    columns_of,
    frame_rows,
)
from .spool import BatchLog
from .store import filesystem, read_log, url_from_env
from .writer import PredictionLog, from_env

__all__ = [
    "DEFAULT_URL",
    "PREDICTION",
    "PROBABILITY_PREFIX",
    "RECORD",
    "REQUEST_ID",
    "TIMESTAMP",
    "BatchLog",
    "PredictionLog",
    "columns_of",
    "filesystem",
    "frame_rows",
    "from_env",
    "read_log",
    "url_from_env",
]
