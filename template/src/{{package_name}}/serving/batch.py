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

    python -m <package>.predict data/current/customers.csv reports/predictions.csv
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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
) -> Iterator[pd.DataFrame]:
    """The predictions of a file, ``rows`` records at a time: memory stays bounded whatever
    the file's length. While the model predicts one chunk (scikit-learn's trees release the
    GIL), a thread reads, validates and computes the features of the next. A bad value stops
    everything, with its row numbered in the whole file; ids are checked unique per chunk.
    ``keep``: input columns put first beside the predictions (default: the id column, where
    the schema and the file have one; a schema column as validated, another as read).
    ``on_chunk(records, predictions)`` sees each chunk (the prediction log, ``--log``)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read") as pool:
        chunks = _prepared_chunks(bundle, source, rows, keep)
        upcoming = pool.submit(next, chunks, None)
        while (chunk := upcoming.result()) is not None:
            upcoming = pool.submit(next, chunks, None)
            kept, features, raw = chunk
            predictions = predict_frame(bundle, features, threads=os.cpu_count() or 1)
            if on_chunk is not None:
                on_chunk(raw, predictions)
            yield pd.concat([kept, predictions], axis=1)


def _prepared_chunks(
    bundle: ModelBundle, source: Path, rows: int, keep: Sequence[str] | None
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    schema = bundle.contract
    first_row = 1
    unexpected: Counter[str] = Counter()  # soft checks: counted and logged, not refused
    for table in iter_table(source, schema, rows):
        if first_row > 1 and table.empty:
            break
        kept_names = _kept_columns(bundle, table, source, keep)
        id_column = schema.id.name if schema.id is not None and schema.id.name in table else None
        read = raw_columns(schema, bundle.feature_definitions)
        columns = (*([schema.id] if id_column else []), *read)
        raw = validate(table, schema, columns, source=str(source), first_row=first_row)
        first_row += len(raw)
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
    args.output.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_partials(args.output.parent)
    # Written beside the output and renamed at the end: a failure leaves no half file and
    # an earlier output untouched.
    partial = args.output.with_name(f".partial-{args.output.name}")
    batch_log = _BatchLogger(bundle, args.input) if args.log else None
    try:
        with _claimed(partial):
            on_chunk = batch_log.on_chunk if batch_log is not None else None
            chunks = predict_chunks(bundle, args.input, args.chunk_rows, on_chunk, args.keep)
            with contextlib.closing(chunks):  # a failed write stops the reading thread too
                parquet = args.output.suffix == ".parquet"
                count = _write(chunks, partial, parquet, escape=args.escape_formulas)
            partial.replace(args.output)
        if batch_log is not None:
            batch_log.commit()  # logged once, and only with its output written
    finally:
        if batch_log is not None:
            batch_log.discard()
    log.info("wrote %d predictions to %s", count, args.output)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Predict every row of a CSV or parquet file.")
    parser.add_argument("input", type=Path, help="CSV or parquet file of raw records")
    parser.add_argument("output", type=Path, help="where to write predictions (.csv or .parquet)")
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
    args = parser.parse_args(argv)
    if args.output.suffix not in {".csv", ".parquet"}:
        raise UserError(f"{args.output}: output must end in .csv or .parquet")
    if args.chunk_rows < 1:
        raise UserError(f"--chunk-rows must be at least 1, not {args.chunk_rows}")
    if args.escape_formulas and args.output.suffix != ".csv":
        raise UserError("--escape-formulas is for a CSV output (parquet has no formulas)")
    if args.output.resolve() == args.input.resolve() or (
        args.output.exists() and args.input.exists() and args.output.samefile(args.input)
    ):
        raise UserError(f"{args.output} is the input file: write the predictions elsewhere")
    return args


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

    def __init__(self, bundle: ModelBundle, source: Path) -> None:
        from . import prediction_log

        self.prediction_log = prediction_log
        url = prediction_log.url_from_env() or prediction_log.DEFAULT_URL
        target = prediction_log.PredictionLog(url, prediction_log.columns_of(bundle.contract))
        target.recover()  # what crashed services or runs left
        self.run_id = f"batch-{source.name}-{uuid.uuid4().hex[:8]}"
        self.staged = prediction_log.BatchLog(target, self.run_id)
        self.logged = 0
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
