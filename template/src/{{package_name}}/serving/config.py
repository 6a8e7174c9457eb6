"""The service's settings, from environment variables, read once when it starts.

The defaults are what benchmarks/serving_throughput.py of the template measured best; the
README's "Serving" section has the figures.
"""

from __future__ import annotations

import os

import numpy as np

# Adaptive batching: requests arriving together are predicted as one batch, several times
# the throughput of one-by-one on the same CPU. Settings (environment variables):
#   MAX_BATCH_SIZE     records in one batch, and at most in one request: more is a 400, as
#                      BentoML's batcher would answer 503 (send big jobs to the batch CLI)
#   MAX_LATENCY_MS     how long a request may wait in the queue before BentoML answers 503
#                      (default 10000): under overload, queueing beats refusing; a request
#                      is not held back to fill a batch (server.py)
#   ADAPTIVE_BATCHING  "false" predicts each request alone
#   MODEL_WAIT_SECONDS a prediction reaching a worker whose model is still loading waits
#                      this long for it (default 5), then gets a 503 with Retry-After
#   MAX_BODY_BYTES     the largest request body (default 1 MiB); more is a 413, unread
#   WORKERS            worker processes, a number or "cpu_count" (the default: each worker
#                      holds its own model copy, so set a number where memory is short)
#   ACCESS_LOG         "false" drops the one log line per request (it costs throughput)
#   HEADER_TIMEOUT_SECONDS  a connection whose request headers are not all in within this
#                      is closed (default 10; 0: never): slow clients cannot hold the server
#   BODY_TIMEOUT_SECONDS    a request body with no part arriving for this long is a 408
#                      (default 10)
# Prediction logging (records and predictions of each answered /predict, for make monitor):
#   PREDICTION_LOG              where: a folder (default logs/predictions) or an s3://, gs://,
#                               az:// URL (credentials as for DVC); "off" logs nothing
#   PREDICTION_LOG_SAMPLE       the share of requests logged (default 1)
#   PREDICTION_LOG_MAX_MB       request bodies waiting to be written, at most (default 64);
#                               beyond, records are dropped, never requests (counted on
#                               /metrics: prediction_log_dropped_records_total)
#   PREDICTION_LOG_FILE_ROWS    rows in one parquet file, at most (default 10000)
#   PREDICTION_LOG_FILE_SECONDS a file is written when its first row is this old (default 60)
#   PREDICTION_LOG_SPOOL        where rows wait on local disk until their file is written
#                               (default <log folder>/.spool, or a temporary folder for a
#                               bucket): what a crash leaves there is logged at the next start
ADAPTIVE_BATCHING = os.environ.get("ADAPTIVE_BATCHING", "true").lower() != "false"
MAX_BATCH_SIZE = int(os.environ.get("MAX_BATCH_SIZE", "1000"))
MAX_LATENCY_MS = int(os.environ.get("MAX_LATENCY_MS", "10000"))
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", str(1024 * 1024)))
WORKERS: int | str = os.environ.get("WORKERS", "cpu_count")
WORKERS = WORKERS if WORKERS == "cpu_count" else int(WORKERS)
ACCESS_LOG = os.environ.get("ACCESS_LOG", "true").lower() != "false"
MODEL_WAIT_SECONDS = float(os.environ.get("MODEL_WAIT_SECONDS", "5"))
HEADER_TIMEOUT_SECONDS = float(os.environ.get("HEADER_TIMEOUT_SECONDS", "10"))
BODY_TIMEOUT_SECONDS = float(os.environ.get("BODY_TIMEOUT_SECONDS", "10"))
MAX_TEXT_LENGTH = 10_000  # characters in one text value
# Beyond these a value overflows the model's input: scikit-learn's trees read float32, and
# the batch CLI reads integers as float64 then int64 (the largest integer whose float64 is
# below 2**63: the next ones round up to 2**63).
FLOAT_LIMIT = float(np.finfo(np.float32).max)
INT_LIMIT = 2**63 - 513
