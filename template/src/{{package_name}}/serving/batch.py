"""Predictions: load the trained model and predict records or whole files.

The service, the batch CLI and the evaluation all predict through ``predict_frame``.

Batch CLI: reads a CSV or parquet file of raw records (the columns the features read),
writes one prediction per row, with the input columns named by ``--keep`` beside it
(default: the id column, where the schema and the file have one), so predictions join back
to their rows, and logs how many values lie outside what training saw (schema.yaml's soft
checks). It reads and predicts ``--chunk-rows`` records at a time, so memory stays bounded
for a file of any length, and writes the output whole or not at all (never over its input).
With ``--log``, the rows go to the prediction log once the output is written, and only then.
``--escape-formulas`` writes a CSV safe to open in a spreadsheet:

    python -m <package>.serving.batch data/current/customers.csv reports/predictions.csv

Past one machine: ``--parts N`` scores one of N contiguous row ranges of the input, part
``--part K`` (K from 0; default the env var ``JOB_COMPLETION_INDEX`` that a Kubernetes
Indexed Job gives each pod), each part to its own OUTPUT; the parts concatenated in order are
the predictions of one run over the whole input. INPUT and OUTPUT may be object-store URLs
(``s3://``, ``gs://``, ``az://``, through fsspec, where its s3fs, gcsfs or adlfs is installed):
the input is copied to a temporary folder first, the output uploaded whole once written.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from ..contract.checks import unexpected_values
from ..contract.tables import iter_table, validate
from ..model import ModelBundle, load_model, predict_frame
from ..pipeline.features import compute_features, raw_columns
from ..settings import UserError, run_cli

log = logging.getLogger(__name__)

CHUNK_ROWS = 100_000  # records the batch CLI reads and predicts at a time


def predict_file(bundle: ModelBundle, source: Path) -> pd.DataFrame:
    """Validate a file of raw records and predict every row."""
    return pd.concat(predict_chunks(bundle, source), ignore_index=True)


def predict_chunks(
    bundle: ModelBundle,
    source: Path,
    rows: int = CHUNK_ROWS,
    on_chunk: Callable[[pd.DataFrame, pd.DataFrame], None] | None = None,
    keep: Sequence[str] | None = None,
    row_range: tuple[int, int] | None = None,
) -> Iterator[pd.DataFrame]:
    """The predictions of a file, ``rows`` records at a time: memory stays bounded whatever
    the file's length. While the model predicts one chunk (scikit-learn's trees release the
    GIL), a thread reads, validates and computes the features of the next. A bad value stops
    everything, with its row numbered in the whole file; ids are checked unique per chunk.
    ``keep``: input columns put first beside the predictions (default: the id column, where
    the schema and the file have one; a schema column as validated, another as read).
    ``on_chunk(records, predictions)`` sees each chunk (the prediction log, ``--log``).
    ``row_range``: only the file's rows ``start`` to ``stop`` (from 0, stop excluded)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read") as pool:
        chunks = _prepared_chunks(bundle, source, rows, keep, row_range)
        upcoming = pool.submit(next, chunks, None)
        while (chunk := upcoming.result()) is not None:
            upcoming = pool.submit(next, chunks, None)
            kept, features, raw = chunk
            predictions = predict_frame(bundle, features, threads=os.cpu_count() or 1)
            if on_chunk is not None:
                on_chunk(raw, predictions)
            yield pd.concat([kept, predictions], axis=1)


def _prepared_chunks(
    bundle: ModelBundle,
    source: Path,
    rows: int,
    keep: Sequence[str] | None,
    row_range: tuple[int, int] | None = None,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    schema = bundle.contract
    unexpected: Counter[str] = Counter()  # soft checks: counted and logged, not refused
    for first_row, table in _tables(source, schema, rows, row_range):
        kept_names = _kept_columns(bundle, table, source, keep)
        id_column = schema.id.name if schema.id is not None and schema.id.name in table else None
        read = raw_columns(schema, bundle.feature_definitions)
        columns = (*([schema.id] if id_column else []), *read)
        raw = validate(table, schema, columns, source=str(source), first_row=first_row)
        unexpected.update(unexpected_values(raw, schema))
        features = compute_features(raw, bundle.feature_definitions)
        kept = pd.DataFrame(
            {name: (raw if name in raw else table)[name].array for name in kept_names},
            index=raw.index,
        )
        yield kept, features, raw
    if unexpected:
        shown = ", ".join(f"{name}: {count}" for name, count in unexpected.items())
        log.warning("%s: values outside what training saw (schema.yaml), served: %s", source, shown)


def _tables(
    source: Path, schema: Any, rows: int, row_range: tuple[int, int] | None
) -> Iterator[tuple[int, pd.DataFrame]]:
    """The file's frames (only its rows in ``row_range``, when given), each with the number of
    its first row in the file (from 1); one frame with no row when there is no row to give."""
    start, stop = row_range or (0, None)
    position, empty, given = 0, None, False  # rows read so far; the columns, no row
    for table in iter_table(source, schema, rows):
        if empty is None:
            empty = table.iloc[:0]
        skip = max(0, start - position)
        end = len(table) if stop is None else max(0, min(len(table), stop - position))
        part = table.iloc[skip:end]
        first, position = position + skip + 1, position + len(table)
        if not part.empty:
            given = True
            yield first, part
        if table.empty or (stop is not None and position >= stop):
            break
    if not given:
        yield start + 1, empty


def _kept_columns(
    bundle: ModelBundle, table: pd.DataFrame, source: Path, keep: Sequence[str] | None
) -> list[str]:
    """The input columns to write beside the predictions; a clear error for one the file
    does not have, or one named like an output column."""
    schema = bundle.contract
    if keep is None:
        return [schema.id.name] if schema.id is not None and schema.id.name in table else []
    outputs = [n for n in keep if n == "prediction" or str(n).startswith("probability_")]
    if outputs:
        raise UserError(f"--keep: {', '.join(outputs)} would clash with an output column")
    unknown = [name for name in keep if name not in table]
    if unknown:
        shown = ", ".join(map(str, list(table.columns)[:20]))
        raise UserError(f"--keep: {source} has no column {', '.join(unknown)} (it has: {shown})")
    return list(dict.fromkeys(keep))


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    bundle = load_model(args.model)
    with _local_files(args.input, args.output) as (source, output):
        row_range = _row_range(args, bundle, source)
        count = _score(args, bundle, source, output, row_range)
    log.info("wrote %d predictions to %s", count, args.output)
    return 0


def _score(
    args: argparse.Namespace,
    bundle: ModelBundle,
    source: Path,
    output: Path,
    row_range: tuple[int, int] | None,
) -> int:
    """Predict ``source`` (its rows in ``row_range``) into ``output``; the row count."""
    output.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_partials(output.parent)
    # Written beside the output and renamed at the end: a failure leaves no half file and
    # an earlier output untouched.
    partial = output.with_name(f".partial-{output.name}")
    first = row_range[0] if row_range else 0
    batch_log = _BatchLogger(bundle, source, first) if args.log else None
    try:
        with _claimed(partial):
            on_chunk = batch_log.on_chunk if batch_log is not None else None
            chunks = _predictions(args, bundle, source, on_chunk, row_range)
            with contextlib.closing(chunks):  # a failed write stops the reading thread too
                parquet = output.suffix == ".parquet"
                count = _write(chunks, partial, parquet, escape=args.escape_formulas)
            partial.replace(output)
        if batch_log is not None:
            batch_log.commit()  # logged once, and only with its output written
    finally:
        if batch_log is not None:
            batch_log.discard()
    return count


def _predictions(
    args: argparse.Namespace,
    bundle: ModelBundle,
    source: Path,
    on_chunk: Callable[[pd.DataFrame, pd.DataFrame], None] | None,
    row_range: tuple[int, int] | None,
) -> Iterator[pd.DataFrame]:
    """The chunks to write. A part with no row (more parts than rows) gets the columns alone:
    its output is an empty table like the others, not a missing file."""
    if row_range is None or row_range[0] < row_range[1]:
        return predict_chunks(bundle, source, args.chunk_rows, on_chunk, args.keep, row_range)
    return _columns_only(predict_chunks(bundle, source, args.chunk_rows, None, args.keep, (0, 1)))


def _columns_only(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    with contextlib.closing(chunks):  # stop the reading thread when the writer stops
        for chunk in chunks:
            yield chunk.iloc[:0]


def _part(args: argparse.Namespace) -> tuple[int, int] | None:
    """(K, N): the part to score, from --part or JOB_COMPLETION_INDEX; None without --parts."""
    if args.parts is None:
        if args.part is not None:
            raise UserError("--part K needs --parts N (the number of parts)")
        return None
    if args.parts < 1:
        raise UserError(f"--parts must be at least 1, not {args.parts}")
    part = args.part
    if part is None:
        index = os.environ.get("JOB_COMPLETION_INDEX", "").strip()
        if not index:
            raise UserError(
                f"--parts {args.parts} needs --part K or JOB_COMPLETION_INDEX (an Indexed Job's)"
            )
        if not index.isdigit():
            raise UserError(f"JOB_COMPLETION_INDEX is {index!r}, not a part number")
        part = int(index)
    if not 0 <= part < args.parts:
        raise UserError(
            f"part {part} is out of range: --parts {args.parts} has parts 0 to {args.parts - 1}"
        )
    return part, args.parts


def _row_range(
    args: argparse.Namespace, bundle: ModelBundle, source: Path
) -> tuple[int, int] | None:
    """The rows (from 0, the stop excluded) of part K of N: contiguous, their sizes within one
    row of each other, counted as the scoring reads them (a quoted line break is no row)."""
    part = _part(args)
    if part is None:
        return None
    total = sum(len(table) for table in iter_table(source, bundle.contract, args.chunk_rows))
    index, parts = part
    start, stop = index * total // parts, (index + 1) * total // parts
    log.info("part %d of %d: rows %d to %d of %d", index, parts, start, stop, total)
    return start, stop


def _is_url(name: str) -> bool:
    return "://" in name


@contextlib.contextmanager
def _local_files(source: str, output: str) -> Iterator[tuple[Path, Path]]:
    """The input and the output as local files: an object-store URL's input is copied to a
    temporary folder first; the output written there is uploaded whole once complete."""
    if not _is_url(source) and not _is_url(output):
        yield Path(source), Path(output)
        return
    with tempfile.TemporaryDirectory(prefix="batch-") as folder:
        local_source = Path(source)
        if _is_url(source):
            local_source = Path(folder) / "in" / PurePosixPath(source).name
            local_source.parent.mkdir()
            _store(source, lambda fs, path: fs.get_file(path, str(local_source)))
        local_output = (
            Path(folder) / "out" / PurePosixPath(output).name if _is_url(output) else Path(output)
        )
        yield local_source, local_output
        if _is_url(output):
            _store(output, lambda fs, path: fs.put_file(str(local_output), path))


def _store(url: str, action: Callable[[Any, str], Any]) -> None:
    """``action(filesystem, path)`` on the object store of ``url``; one clear line on failure."""
    try:
        from fsspec.core import url_to_fs

        filesystem, path = url_to_fs(url)
        action(filesystem, path)
    except ImportError as error:
        raise UserError(f"{url}: {error} (s3fs, gcsfs or adlfs: dvc[s3] brings s3fs)") from None
    except FileNotFoundError:
        raise UserError(f"{url} not found") from None
    except (OSError, ValueError) as error:
        raise UserError(f"{url}: {error}") from None


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Predict every row of a CSV or parquet file.")
    parser.add_argument("input", help="CSV or parquet file of raw records (or s3://, gs://, ...)")
    parser.add_argument("output", help="where to write predictions (.csv or .parquet; or a URL)")
    parser.add_argument("--model", type=Path, default=None, help="default: $MODEL_PATH or models/")
    parser.add_argument(
        "--chunk-rows", type=int, default=CHUNK_ROWS, help="records read and predicted at a time"
    )
    parser.add_argument(
        "--keep",
        nargs="+",
        metavar="COLUMN",
        help="input columns written first, beside the predictions, to join them back "
        "(default: the id column, when the schema has one)",
    )
    parser.add_argument(
        "--escape-formulas",
        action="store_true",
        help="a CSV for spreadsheets: a text value starting with = + - @ (or a tab or carriage "
        "return) gets a leading ' so that a spreadsheet shows it instead of running it",
    )
    parser.add_argument(
        "--log",
        action="store_true",
        help="log records and predictions as the service does, to $PREDICTION_LOG "
        "(default logs/predictions), for make monitor; once the output is written",
    )
    parser.add_argument(
        "--parts",
        type=int,
        default=None,
        metavar="N",
        help="score one of N contiguous row ranges of the input (one a pod of an Indexed Job)",
    )
    parser.add_argument(
        "--part",
        type=int,
        default=None,
        metavar="K",
        help="which part, from 0 (default: $JOB_COMPLETION_INDEX)",
    )
    args = parser.parse_args(argv)
    output = PurePosixPath(args.output) if _is_url(args.output) else Path(args.output)
    if output.suffix not in {".csv", ".parquet"}:
        raise UserError(f"{args.output}: output must end in .csv or .parquet")
    if args.chunk_rows < 1:
        raise UserError(f"--chunk-rows must be at least 1, not {args.chunk_rows}")
    if args.escape_formulas and output.suffix != ".csv":
        raise UserError("--escape-formulas is for a CSV output (parquet has no formulas)")
    _part(args)  # a bad --parts or --part fails before the model loads
    if args.output == args.input or (
        not _is_url(args.input) and not _is_url(args.output) and _same_file(args)
    ):
        raise UserError(f"{args.output} is the input file: write the predictions elsewhere")
    return args


def _same_file(args: argparse.Namespace) -> bool:
    source, output = Path(args.input), Path(args.output)
    return output.resolve() == source.resolve() or (
        output.exists() and source.exists() and output.samefile(source)
    )


@contextlib.contextmanager
def _claimed(partial: Path) -> Iterator[None]:
    """Hold a lock on the partial output while it is written, and remove what is left of it
    after: a partial file nobody holds is what a killed run left (the next run removes it)."""
    with partial.open("ab") as claim:
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another run is writing {partial.name[9:]} now") from None
        try:
            yield
        finally:
            partial.unlink(missing_ok=True)


def _remove_abandoned_partials(folder: Path) -> None:
    for partial in folder.glob(".partial-*"):
        with contextlib.suppress(OSError), partial.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            partial.unlink()
            log.info("removed %s, left by a run that did not finish", partial)


class _BatchLogger:
    """Each chunk's records and predictions staged for the prediction log (prediction_log
    .BatchLog), moved into it once the output is written. The request id is the run's,
    ``batch-<file>-<random>`` (logged), and a record's position its row in the file (from
    0): the keys of labels that come later."""

    def __init__(self, bundle: ModelBundle, source: Path, first: int = 0) -> None:
        from . import prediction_log

        self.prediction_log = prediction_log
        url = prediction_log.url_from_env() or prediction_log.DEFAULT_URL
        target = prediction_log.PredictionLog(url, prediction_log.columns_of(bundle.contract))
        target.recover()  # what crashed services or runs left
        self.run_id = f"batch-{source.name}-{uuid.uuid4().hex[:8]}"
        self.staged = prediction_log.BatchLog(target, self.run_id)
        self.logged = first  # a part's first row: positions stay rows of the whole file
        log.info("logging the predictions to %s (request id %s)", url, self.run_id)

    def on_chunk(self, raw: pd.DataFrame, predictions: pd.DataFrame) -> None:
        records = raw.to_dict(orient="records")
        rows = self.prediction_log.frame_rows(records, predictions, self.run_id, self.logged)
        self.staged.stage(rows)
        self.logged += len(records)

    def commit(self) -> None:
        self.staged.commit()

    def discard(self) -> None:
        self.staged.discard()


def _write(chunks: Iterator[pd.DataFrame], path: Path, parquet: bool, escape: bool = False) -> int:
    """Write the chunks one after the other as one CSV or parquet file; the row count.
    ``escape``: text that a spreadsheet would run as a formula is escaped (``escape_formulas``).

    pyarrow writes both (its CSV writer is eight times faster than pandas' ``to_csv``: a
    fifth of the batch CLI's time on a million rows was writing). Its CSV has the same values
    as pandas', spelled its way: the header and text quoted (``"customer_id"``), ``true``,
    ``2`` for 2.0. Without pyarrow (the serving image has fastparquet instead), CSV is
    written by pandas (``True``, ``2.0``)."""
    if escape:
        chunks = map(escape_formulas, chunks)
    try:
        import pyarrow as pa
    except ImportError as error:
        if parquet:
            raise UserError(f"cannot write parquet: {error}") from None
        return _write_with_pandas(chunks, path)
    try:
        return _write_parquet(chunks, path) if parquet else _write_csv(chunks, path)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise UserError(f"cannot write {path.name}: {error}") from None


# What makes a spreadsheet read a cell as a formula (OWASP's list for CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text values that start like a formula, prefixed with ``'``: a spreadsheet shows them
    as text. Numbers are left as they are (a negative number is not text)."""
    out = frame.copy()
    for name in frame.columns:
        values = frame[name]
        if values.dtype == object:
            risky = values.map(_formula_like).astype(bool)
        elif pd.api.types.is_string_dtype(values.dtype):
            risky = values.str.startswith(FORMULA_STARTS).fillna(False).astype(bool)
        else:
            continue
        if risky.any():
            out[name] = values.astype(object).where(~risky, "'" + values[risky].astype(str))
    return out


def _formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def _write_csv(chunks: Iterator[pd.DataFrame], path: Path) -> int:
    """Each chunk with its own types (CSV has none), the header with the first."""
    import pyarrow as pa
    import pyarrow.csv

    count = 0
    with pa.OSFile(str(path), "wb") as sink:
        for chunk in chunks:
            options = pyarrow.csv.WriteOptions(include_header=count == 0)
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            pyarrow.csv.write_csv(table, sink, write_options=options)
            count += len(chunk)
    return count


def _write_parquet(chunks: Iterator[pd.DataFrame], path: Path) -> int:
    """One schema for the file: the first chunk's types."""
    import pyarrow as pa
    import pyarrow.parquet

    count, writer, schema = 0, None, None
    try:
        for chunk in chunks:
            table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
            if writer is None:
                schema = _without_null_types(table.schema)
                table = table.cast(schema)
                writer = pyarrow.parquet.ParquetWriter(path, schema)
            writer.write_table(table)
            count += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    return count


def _without_null_types(schema: Any) -> Any:
    """A column with no value in the first chunk has arrow's type null: text, for the rest."""
    import pyarrow as pa

    fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _write_with_pandas(chunks: Iterator[pd.DataFrame], path: Path) -> int:
    count = 0
    for chunk in chunks:
        chunk.to_csv(path, index=False, mode="a" if count else "w", header=not count)
        count += len(chunk)
    return count


if __name__ == "__main__":
    run_cli(main)
