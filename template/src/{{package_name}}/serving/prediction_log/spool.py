"""Crash safety of the prediction log: the local spool of rows not yet in a file, its
recovery at the next start, and a batch run's staged rows (written only with its output)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .rows import _from_json, _json_default
from .store import _is_local, _still_there, _try_lock, filesystem, write_rows

if TYPE_CHECKING:  # the writer uses the spool: no import cycle at run time
    from .writer import PredictionLog


_LEDGER = struct.Struct("<QQQ")  # records accepted, found on parsing, settled
_ACCEPTED, _SETTLED = struct.Struct("<Q"), struct.Struct("<QQ")  # each thread's own slots
_DEBRIS_AGE = 60.0  # seconds: a batch staging folder older than this and unlocked is debris


class _Spool:
    """This process's rows that are not in a log file yet, on local disk: an append-only file
    of JSON lines (one each time the thread wakes; a new file after each log file), and a
    ledger of the records accepted, found and settled (written or dropped). The ledger is
    locked while the process lives: an unlocked one is a dead process's, to recover
    (``recover_spools``)."""

    def __init__(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.life = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._ledger = open(os.path.join(folder, f"{self.life}.ledger"), "w+b")  # noqa: SIM115
        fcntl.flock(self._ledger, fcntl.LOCK_EX)
        self._ledger.write(bytes(_LEDGER.size))
        self._ledger.flush()
        # Shared memory over the file: a counter update is a store, yet on disk after kill -9.
        self._counts = mmap.mmap(self._ledger.fileno(), _LEDGER.size)
        self.sequence = 0
        self._segment = self._open_segment()

    def _open_segment(self) -> Any:
        self.sequence += 1
        path = os.path.join(self.folder, f"{self.life}.{self.sequence}.jsonl")
        return open(path, "ab")

    @property
    def token(self) -> str:
        """Names the log files of the current segment's rows."""
        return f"{self.life.rsplit('-', 1)[1]}s{self.sequence}"

    def append(self, rows: list[dict[str, Any]]) -> None:
        """One JSON line of rows (one encoding call: a quarter of the cost of a line a row);
        a line torn by a crash costs its rows, counted as lost."""
        self._segment.write(json.dumps(rows, default=_json_default).encode() + b"\n")
        self._segment.flush()
        os.fsync(self._segment.fileno())

    def rotate(self) -> None:
        """A new segment: the rows of the current one are in a log file (or dropped)."""
        old, self._segment = self._segment, self._open_segment()
        old.close()
        os.unlink(old.name)

    def count_accepted(self, accepted: int) -> None:
        """The request path's counter (its thread only)."""
        _ACCEPTED.pack_into(self._counts, 0, accepted)

    def count_settled(self, found: int, settled: int) -> None:
        """The writer thread's counters (its thread only)."""
        _SETTLED.pack_into(self._counts, _ACCEPTED.size, found, settled)

    def close(self) -> None:
        self._segment.close()
        os.unlink(self._segment.name)
        self._counts.close()
        os.unlink(self._ledger.name)
        self._ledger.close()  # the lock goes last: no one recovers a half-removed spool


def _segment_rows(path: str) -> list[dict[str, Any]]:
    """The rows of a spool segment (a line torn by the crash is skipped: its rows count as
    lost, as the ledger says)."""
    rows = []
    with open(path, "rb") as source:
        for line in source:
            with contextlib.suppress(ValueError):
                rows.extend(_from_json(row) for row in json.loads(line))
    return rows


def recover_spools(
    folder: str, write: Callable[[list[dict[str, Any]], str], None]
) -> tuple[int, int]:
    """Hand the rows of every dead process's spool under ``folder`` to ``write(rows, token)``
    and remove the spool; the rows recovered, and the records lost (accepted by that process
    but never spooled: what it held in memory when it died)."""
    recovered = lost = 0
    for ledger in sorted(Path(folder).glob("*.ledger")) if os.path.isdir(folder) else []:
        with contextlib.suppress(FileNotFoundError), open(ledger, "rb") as handle:
            if not _try_lock(handle) or not _still_there(handle, str(ledger)):
                continue  # a live process's, or recovered by another one just now
            accepted, found, settled = _LEDGER.unpack(handle.read().ljust(_LEDGER.size, b"\0"))
            life = ledger.stem
            segments = sorted(
                Path(folder).glob(f"{life}.*.jsonl"), key=lambda p: int(p.suffixes[-2][1:])
            )
            spooled = 0
            for segment in segments:
                rows = _segment_rows(str(segment))
                if rows:
                    write(rows, f"{life.rsplit('-', 1)[1]}s{segment.suffixes[-2][1:]}")
                spooled += len(rows)
                segment.unlink()
            recovered += spooled
            lost += max(0, accepted + found - settled - spooled)
            ledger.unlink()
    return recovered, lost


def clean_debris(url: str, fs_path: Any = None) -> int:
    """Remove the temporary files of interrupted writes under a local log (unlocked
    ``.part-*.tmp``: a process killed while writing); the count removed."""
    fs, root = fs_path or filesystem(url)
    if not _is_local(fs) or not os.path.isdir(root):
        return 0
    removed = 0
    for leftover in Path(root).glob("date=*/.part-*.tmp"):
        with contextlib.suppress(FileNotFoundError), open(leftover, "rb") as handle:
            if _try_lock(handle) and _still_there(handle, str(leftover)):
                leftover.unlink()
                removed += 1
    return removed


# --- batch runs: logged once their output is written ----------------------------------------
class BatchLog:
    """The rows of a batch run (the batch CLI, ``--log``), staged in the spool folder and
    moved into the log by ``commit`` once the run's output is written: a run that fails or
    is killed logs nothing (its staging is removed at the next start), and a committed run
    is logged once. The staging folder is locked while the run lives; ``READY`` in it means
    the output was written, so an interrupted commit is finished at the next start."""

    def __init__(self, log_: PredictionLog, run_id: str) -> None:
        self.log = log_
        folder = log_.spool_folder or os.path.join(tempfile.gettempdir(), "prediction-log-spool")
        self.folder = os.path.join(folder, f"batch-{run_id}")
        os.makedirs(self.folder)
        self._lock = open(os.path.join(self.folder, "lock"), "wb")  # noqa: SIM115
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.rows = 0

    def stage(self, rows: list[dict[str, Any]]) -> None:
        good = self.log._checked(rows)
        if good:
            write_rows(self.folder, good, self.log.columns, on_bad=self.log._bad)
            self.rows += len(good)

    def commit(self) -> None:
        """Move the staged files into the log (the output is written)."""
        Path(self.folder, "READY").touch()
        try:
            _move_staged(self.folder, self.log._filesystem())
        except Exception as error:
            self.log._drop("write_failed", self.rows, error)
        else:
            self.log._wrote(self.rows)
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self._lock.close()


def _move_staged(folder: str, fs_path: Any) -> None:
    """Move a staging folder's files into the log (renamed on one local disk)."""
    fs, root = fs_path
    for staged in sorted(Path(folder).glob("date=*/part-*.parquet")):
        target = f"{root.rstrip('/')}/{staged.parent.name}/{staged.name}"
        if _is_local(fs):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.move(staged, target)
        else:
            fs.put_file(str(staged), target)


def recover_batches(folder: str, fs_path: Any) -> int:
    """Finish the commit of batch runs whose output was written, remove the staging of runs
    that died before; the count of stagings handled."""
    handled = 0
    for staging in sorted(Path(folder).glob("batch-*")) if os.path.isdir(folder) else []:
        lock = staging / "lock"
        if not lock.exists() and time.time() - staging.stat().st_mtime < _DEBRIS_AGE:
            continue  # being created
        with contextlib.suppress(FileNotFoundError), open(lock, "ab") as handle:
            if not _try_lock(handle):
                continue  # a run in progress
            if (staging / "READY").exists():
                _move_staged(str(staging), fs_path)
            shutil.rmtree(staging, ignore_errors=True)
            handled += 1
    return handled
