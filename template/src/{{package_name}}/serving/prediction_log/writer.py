"""The prediction log's writer: a queue the service hands answered requests to, and the
background thread that turns them into rows, spools them and writes them as files
(``PredictionLog``); ``from_env`` makes the service's from its environment."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .rows import _raw_records, answer_rows, checked_row, columns_of
from .spool import _Spool, clean_debris, recover_batches, recover_spools
from .store import filesystem, spool_folder, url_from_env, write_rows

log = logging.getLogger(__name__)


# --- the log ----------------------------------------------------------------------------------
class PredictionLog:
    """A bounded queue of answered requests and the thread that writes them (see the module's
    docstring). ``submit`` is what the request path calls: it never blocks, never raises."""

    def __init__(
        self,
        url: str,
        columns: dict[str, str],
        *,
        sample_rate: float = 1.0,
        max_queue_bytes: int = 64 * 1024 * 1024,
        file_rows: int = 10_000,
        file_seconds: float = 60.0,
        spool: str | None = "",
        row_of: Callable[[Any], dict[str, Any]] = dict,
        on_drop: Callable[[str, int], None] | None = None,
        on_write: Callable[[int], None] | None = None,
        warn_every: float = 60.0,
    ) -> None:
        """``spool``: its folder ("" for ``spool_folder(url)``, None for none). ``row_of``
        turns a typed record into the dict of its values (the service's own function)."""
        if not 0 <= sample_rate <= 1:
            raise ValueError(f"the sample rate must be in [0, 1], got {sample_rate}")
        self.url, self.columns = url, columns
        self.sample_rate, self.max_queue_bytes = sample_rate, max_queue_bytes
        self.file_rows, self.file_seconds = file_rows, file_seconds
        self.spool_folder = spool_folder(url) if spool == "" else spool
        self._row_of = row_of
        self._on_drop, self._on_write = on_drop, on_write
        self._warn_every, self._last_warning = warn_every, -float("inf")
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        # The spool is written each time the thread wakes: at most this much is only in memory.
        self.poll = max(0.01, min(0.25, file_seconds))
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._fs_path: Any = None
        self._spool: _Spool | None = None
        self.accepted = self._found = self._settled = 0  # records; the ledger's counters
        self.dropped: dict[str, int] = {}
        self.written = 0
        self.recovered = 0

    # --- the request path ----------------------------------------------------------------
    def submit(
        self,
        request_body: bytes,
        response_body: bytes,
        request_id: str,
        logged_at: dt.datetime | None = None,
        records: Sequence[Any] | None = None,
    ) -> bool:
        """Queue one answered request: ``records`` as typed for the model (else the request
        body's, as JSON has them); False when it was sampled out or dropped (counted: its
        records, or one when they are not given)."""
        try:
            if self._closed or (self.sample_rate < 1 and random.random() >= self.sample_rate):
                return False
            count = 1 if records is None else len(records)
            size = len(request_body) + len(response_body)
            with self._lock:
                if self._queued_bytes + size > self.max_queue_bytes:
                    full = True
                else:
                    full, self._queued_bytes = False, self._queued_bytes + size
            if full:
                self._drop("queue_full", count)
                return False
            when = logged_at or dt.datetime.now(dt.UTC)
            body = request_body if records is None else b""
            self._queue.put((records, body, response_body, request_id, when, size, count))
            self.accepted += count
            spool = self._spool
            if spool is not None:
                spool.count_accepted(self.accepted)
            self._start()
            return True
        except Exception:  # never the request's problem
            log.exception("prediction log: could not queue a request")
            return False

    def submit_rows(self, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` now, on the caller's thread (no request to protect)."""
        try:
            good = self._checked(rows)
            if good:
                write_rows(self.url, good, self.columns, self._filesystem(), on_bad=self._bad)
                self._wrote(len(good))
        except Exception as error:
            self._drop("write_failed", len(rows), error)

    # --- the background thread -------------------------------------------------------------
    def start(self) -> None:
        """Start the writer now (a service's worker does: it recovers what a crashed process
        left in the spool at once, not at its first request)."""
        if not self._closed:
            self._start()

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="prediction-log", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        # The thread wakes every `poll` seconds and takes what is queued, rather than being
        # woken by each request: a wake-up a request costs the serving thread a GIL hand-off
        # (measured: 19% of the throughput at 16 clients).
        self._open_spool()
        self.recover()
        buffer: list[dict[str, Any]] = []
        spooled, oldest = 0, 0.0
        while True:
            stopping = self._stop.wait(self.poll)
            for rows in self._taken():
                if rows and not buffer:
                    oldest = time.monotonic()
                buffer.extend(rows)
                if len(buffer) >= self.file_rows:
                    self._flush(buffer)
                    buffer, spooled = [], 0
            if len(buffer) > spooled:
                self._spool_rows(buffer[spooled:])
                spooled = len(buffer)
            if buffer and (stopping or time.monotonic() - oldest >= self.file_seconds):
                self._flush(buffer)
                buffer, spooled = [], 0
            if stopping:
                self._close_spool()
                return

    def _taken(self) -> Iterator[list[dict[str, Any]]]:
        """The rows of each queued request, checked; what cannot be read is dropped."""
        while True:
            try:
                records, body, response, request_id, when, size, count = self._queue.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                self._queued_bytes -= size
            try:
                values = _raw_records(body) if records is None else list(map(self._row_of, records))
                rows = answer_rows(values, response, request_id, when)
            except Exception as error:
                self._drop("unreadable", count, error)
                self._settle(count)
                continue
            if len(rows) != count:  # a request whose records were not counted on submit
                self._found += len(rows) - count
                self._settle(0)
            yield self._checked(rows)

    def _checked(self, rows: list[dict[str, Any]], settle: bool = True) -> list[dict[str, Any]]:
        """The rows whose values are of their columns' kinds; the others dropped, each alone
        (and settled in this process's ledger, unless they were another's)."""
        good = []
        for row in rows:
            try:
                good.append(checked_row(row, self.columns))
            except (TypeError, ValueError) as error:
                if settle:
                    self._bad(1, error)
                else:
                    self._drop("bad_value", 1, error)
        return good

    def _bad(self, count: int, error: BaseException) -> None:
        self._drop("bad_value", count, error)
        self._settle(count)

    def _flush(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        spool = self._spool
        token = spool.token if spool is not None else None
        try:
            self._write(rows, token)
        except Exception as error:
            self._drop("write_failed", len(rows), error)
        if spool is not None:
            try:
                spool.rotate()
            except OSError as error:
                self._spool_failed(error)
        self._settle(len(rows))

    def _write(self, rows: list[dict[str, Any]], token: str | None) -> None:
        bad = 0

        def on_bad(count: int, error: BaseException) -> None:
            nonlocal bad
            bad += count
            self._drop("bad_value", count, error)

        write_rows(self.url, rows, self.columns, self._filesystem(), token=token, on_bad=on_bad)
        self._wrote(len(rows) - bad)

    def _settle(self, count: int) -> None:
        self._settled += count
        spool = self._spool
        if spool is not None:
            spool.count_settled(self._found, self._settled)

    def _filesystem(self) -> Any:
        if self._fs_path is None:
            self._fs_path = filesystem(self.url)
        return self._fs_path

    def _wrote(self, count: int) -> None:
        self.written += count
        if self._on_write is not None and count:
            self._on_write(count)

    def _drop(self, reason: str, count: int, error: BaseException | None = None) -> None:
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            total = sum(self.dropped.values())
            now = time.monotonic()
            warn = now - self._last_warning >= self._warn_every
            if warn:
                self._last_warning = now
        if self._on_drop is not None:
            try:
                self._on_drop(reason, count)
            except Exception:
                log.exception("prediction log: the drop counter failed")
        if warn:
            cause = f": {type(error).__name__}: {error}" if error is not None else ""
            log.warning(
                "prediction log: %d record(s) dropped (%s%s); %d dropped since start, "
                "requests are answered as usual",
                count,
                reason.replace("_", " "),
                cause,
                total,
            )

    # --- the spool ----------------------------------------------------------------------------
    def _open_spool(self) -> None:
        if self.spool_folder is None:
            return
        try:
            spool = _Spool(self.spool_folder)
        except OSError as error:
            log.warning(
                "prediction log: no spool in %s (%s): rows wait in memory only until their "
                "file is written",
                self.spool_folder,
                error,
            )
            return
        spool.count_accepted(self.accepted)
        spool.count_settled(self._found, self._settled)
        self._spool = spool

    def _spool_rows(self, rows: list[dict[str, Any]]) -> None:
        spool = self._spool
        if spool is not None:
            try:
                spool.append(rows)
            except (OSError, TypeError, ValueError) as error:
                self._spool_failed(error)

    def _spool_failed(self, error: BaseException) -> None:
        log.warning("prediction log: the spool failed (%s): rows wait in memory only", error)
        spool, self._spool = self._spool, None
        if spool is not None:
            with contextlib.suppress(OSError, ValueError):
                spool.close()

    def _close_spool(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            with contextlib.suppress(OSError, ValueError):
                spool.close()

    def recover(self) -> None:
        """Write into the log what processes that died left in the spool, count what they
        lost, and remove the leftovers of interrupted writes (see the module's docstring)."""
        try:
            removed = clean_debris(self.url, self._filesystem())
            if removed:
                log.info("prediction log: removed %d unfinished temporary file(s)", removed)
            if self.spool_folder is None:
                return
            recovered, lost = recover_spools(self.spool_folder, self._write_recovered)
            staged = recover_batches(self.spool_folder, self._filesystem())
        except Exception as error:
            log.warning("prediction log: could not recover the spool: %s", error)
            return
        self.recovered += recovered
        if lost:
            self._drop("lost_in_crash", lost)
        if recovered or lost:
            log.warning(
                "prediction log: recovered %d row(s) that stopped processes left in %s; "
                "%d answered record(s) had not reached it (lost)",
                recovered,
                self.spool_folder,
                lost,
            )
        if staged:
            log.info(
                "prediction log: %d interrupted batch run(s): logged where the output was "
                "written, else their staged rows removed",
                staged,
            )

    def _write_recovered(self, rows: list[dict[str, Any]], token: str) -> None:
        good = self._checked(rows, settle=False)
        if good:
            self._write(good, token)

    # --- shutdown -------------------------------------------------------------------------
    def close(self, timeout: float = 20.0) -> None:
        """Write what is queued and stop the thread (idempotent). What is not written after
        ``timeout`` s stays in the spool, for the next start."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            log.warning(
                "prediction log: not written within %.0f s: the rows wait in %s for the next start",
                timeout,
                self.spool_folder,
            )


def from_env(schema: Any, **options: Any) -> PredictionLog | None:
    """The log the environment asks for (``PREDICTION_LOG``, ``PREDICTION_LOG_SAMPLE``,
    ``PREDICTION_LOG_MAX_MB``, ``PREDICTION_LOG_FILE_ROWS``, ``PREDICTION_LOG_FILE_SECONDS``,
    ``PREDICTION_LOG_SPOOL``), or None when it is off."""
    url = url_from_env()
    if url is None:
        return None
    return PredictionLog(
        url,
        columns_of(schema),
        sample_rate=float(os.environ.get("PREDICTION_LOG_SAMPLE", "1")),
        max_queue_bytes=int(float(os.environ.get("PREDICTION_LOG_MAX_MB", "64")) * 1024 * 1024),
        file_rows=int(os.environ.get("PREDICTION_LOG_FILE_ROWS", "10000")),
        file_seconds=float(os.environ.get("PREDICTION_LOG_FILE_SECONDS", "60")),
        **options,
    )
