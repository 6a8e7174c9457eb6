"""Adjustments of the HTTP server under the service (BentoML and uvicorn), each made once at
import: a rejected request logged in one line, a Prometheus folder of the service's own, a
timeout for slow request headers, and an adaptive batcher that does not hold requests back.
Each says why; where a BentoML release moves what it adjusts, serving works as before (logged).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import uvicorn.config
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .config import HEADER_TIMEOUT_SECONDS

log = logging.getLogger(__name__)


class _ClientErrorLogFilter(logging.Filter):
    """Log a rejected request in one line: a client's mistake is not a server traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in error.errors()[:5])
            record.msg, record.args, record.exc_info = "rejected request: %s", (fields,), None
            record.levelno, record.levelname = logging.INFO, "INFO"
        elif isinstance(error, ClientDisconnect):  # the client left, or RequestGuard cut it off
            record.msg, record.args, record.exc_info = "request body not read whole", (), None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _own_metrics_folder() -> None:
    """Give this service a Prometheus folder of its own. BentoML keeps its workers' metrics
    in one folder of ``BENTOML_HOME`` and empties it when a service starts: a second service
    on the machine would zero the first's /metrics. Each server takes a folder named by its
    process id (its workers inherit it), and removes those of servers that are gone."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # a worker: its server chose the folder
        return
    try:
        from bentoml._internal.configuration.containers import BentoMLContainer
    except ImportError:
        log.warning("BentoML's configuration moved: services may share /metrics")
        return
    root = Path(BentoMLContainer.bentoml_home.get()) / "prometheus_multiproc_dirs"
    for folder in root.glob("*") if root.is_dir() else []:
        if folder.name.isdigit() and not _alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
    BentoMLContainer.prometheus_multiproc_dir.set(str(root / str(os.getpid())))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _with_header_timeout(protocol: type) -> type:
    """uvicorn's HTTP protocol, closing a connection whose request headers are not all in
    within ``HEADER_TIMEOUT_SECONDS`` of its opening or of the request's first byte (a 408
    when some came). uvicorn has no such timeout, and BentoML passes no protocol options:
    without it a client sending a header line every few seconds holds its connection
    forever. The front in production owns connection limits too (README, "Serving")."""

    class HeaderTimeoutProtocol(protocol):  # type: ignore[misc, valid-type]
        _header_timer: Any = None
        _header_bytes = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            if self._header_timer is None and (cycle is None or cycle.response_complete):
                self._arm()  # a new request begins
            self._header_bytes = True
            super().data_received(data)
            if self.cycle is not cycle:  # its headers are in: the request is the app's
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_bytes = False
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                if self._header_bytes:
                    self.transport.write(_HEADERS_TOO_SLOW)
                self.transport.close()

    return HeaderTimeoutProtocol


_HEADERS_TOO_SLOW = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
)


HeaderTimeoutProtocol = _with_header_timeout(AutoHTTPProtocol)


def _dispatch_without_holding_back() -> None:
    """Stop BentoML's adaptive batcher from holding requests back to fill a batch.

    Its dispatcher holds a request for the average wait of its recent batches, and it
    measures that wait on the requests it held: after a burst the average is high, so a lone
    request waits, is counted as having waited, and the average never comes down (measured
    on the default project: one client at 22 ms p50 fresh, 78-93 ms for good after 5 s at 64
    clients). Batches still form without holding back: requests queue while the previous
    batch is predicted. BentoML has no setting for it, so the estimate is pinned at zero;
    where a BentoML release renames this internal class, serving works as before (logged).
    """
    try:
        from bentoml._internal.marshal.dispatcher import Optimizer
    except ImportError:
        log.warning("BentoML's batch dispatcher changed: requests may wait after a burst")
        return
    Optimizer.wait = property(lambda self: 0.0, lambda self, value: None)  # type: ignore[assignment]


def adjust() -> None:
    """Make every adjustment, once, when the service is imported (the server's process and
    each worker's)."""
    logging.getLogger("bentoml._internal.server.http_app").addFilter(_ClientErrorLogFilter())
    _own_metrics_folder()
    if HEADER_TIMEOUT_SECONDS > 0:
        # uvicorn looks the protocol up by name when a worker's server starts, after this.
        uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:HeaderTimeoutProtocol"
    _dispatch_without_holding_back()
