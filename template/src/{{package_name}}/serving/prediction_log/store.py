"""Where the prediction log's files are: a local folder or a bucket (fsspec), written whole
(never appended to) and read back by ``make monitor``."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd

from .rows import DEFAULT_URL, TIMESTAMP, _encoded

log = logging.getLogger(__name__)


OFF = {"", "off", "false", "0", "none"}


def url_from_env() -> str | None:
    """``PREDICTION_LOG`` (default ``logs/predictions``); None when set to ``off``."""
    url = os.environ.get("PREDICTION_LOG", DEFAULT_URL).strip()
    return None if url.lower() in OFF else url


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path in it."""
    from fsspec.core import url_to_fs

    return url_to_fs(url)


def _is_local(fs: Any) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def spool_folder(url: str) -> str:
    """Where this log's spool is: ``PREDICTION_LOG_SPOOL``, else ``<folder>/.spool`` for a
    local log, else a folder of the system's temporary directory named after the URL."""
    configured = os.environ.get("PREDICTION_LOG_SPOOL", "").strip()
    if configured:
        return os.path.abspath(configured)
    fs, root = filesystem(url)
    if _is_local(fs):
        return os.path.join(root, ".spool")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), "prediction-log-spool", digest)


def write_rows(
    url: str,
    rows: list[dict[str, Any]],
    columns: dict[str, str],
    fs_path: Any = None,
    *,
    token: str | None = None,
    on_bad: Callable[[int, BaseException], None] | None = None,
) -> list[str]:
    """Write checked ``rows`` (each with a ``_logged_at`` datetime) as one parquet file a day
    under ``url``; the paths written. A local file appears whole (written aside, synced,
    then renamed). ``token`` names the files (a day that has a file of that token already
    is skipped: what a crash between writing and forgetting the rows leaves). Rows that
    cannot be encoded are reported to ``on_bad(count, error)`` and left out (without it,
    they raise)."""
    fs, root = fs_path or filesystem(url)
    by_day: dict[dt.date, list[dict[str, Any]]] = {}
    for row in rows:
        by_day.setdefault(row[TIMESTAMP].date(), []).append(row)
    written = []
    for day, day_rows in sorted(by_day.items()):
        folder = f"{root.rstrip('/')}/date={day.isoformat()}"
        if token is not None and fs.exists(folder) and fs.glob(f"{folder}/part-*-{token}.parquet"):
            continue
        payload = _encoded(day_rows, columns, on_bad)
        if payload is None:
            continue
        stamp = day_rows[0][TIMESTAMP].strftime("%Y%m%dT%H%M%S%fZ")
        name = f"part-{stamp}-{os.getpid()}-{token or uuid.uuid4().hex[:8]}.parquet"
        if _is_local(fs):
            _write_local(folder, name, payload)
        else:
            with fs.open(f"{folder}/{name}", "wb") as out:
                out.write(payload)
        written.append(f"{folder}/{name}")
    return written


def _write_local(folder: str, name: str, payload: bytes) -> None:
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{name}.tmp")
    try:
        with open(temporary, "wb") as out:
            fcntl.flock(out, fcntl.LOCK_EX)  # unlocked, a leftover is debris (clean_debris)
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, os.path.join(folder, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)  # a full disk leaves no empty file behind
        raise


def read_log(
    url: str,
    since: dt.date | None = None,
    columns: list[str] | None = None,
    skipped: list[str] | None = None,
) -> Any:
    """Every row logged under ``url`` on ``since`` or later (a pandas DataFrame; empty when
    nothing was logged); only ``columns``, when given (those a file has). A file that is not
    parquet (truncated by a crash, or empty) is logged, skipped and added to ``skipped``."""
    fs, root = filesystem(url)
    root = root.rstrip("/")
    if not fs.exists(root):
        return pd.DataFrame()
    frames = []
    for folder in sorted(fs.glob(f"{root}/date=*")):
        try:
            day = dt.date.fromisoformat(folder.rstrip("/").rsplit("date=", 1)[1])
        except ValueError:
            continue
        if since is not None and day < since:
            continue
        for path in sorted(fs.glob(f"{folder.rstrip('/')}/*.parquet")):
            try:
                with fs.open(path, "rb") as source:
                    frame = pd.read_parquet(source)
            except ValueError as error:  # pyarrow's ArrowInvalid: truncated, empty, not parquet
                log.warning("skipped %s: not a readable parquet file (%s)", path, error)
                if skipped is not None:
                    skipped.append(path)
                continue
            frames.append(frame if columns is None else frame[frame.columns.intersection(columns)])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --- the spool: rows on local disk until their file is written -------------------------------
def _try_lock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _still_there(handle: Any, path: str) -> bool:
    """Whether ``path`` is still the file open as ``handle`` (another process may have
    recovered and removed it between our open and our lock)."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False
