"""Reading data files and validating tables against the contract (``schema.yaml``).

Every reader of data goes through here: the prepare and feature stages, the batch CLI, the
monitor and the adoption of a new file. Types are converted here (text columns stay text,
whatever they look like); nullability, uniqueness and the ``checks`` of the schema are
validated by pandera. A failure names each column, what fails and the first rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..settings import UserError
from .schema import TEXT_KINDS, Column, Schema

# Tokens a CSV may use for "missing" in a numeric, boolean or time column (text keeps them).
NA_TOKENS = frozenset({"", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A"})
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}
_ROWS_SHOWN = 5  # failing rows named in a message


class DataValidationError(UserError):
    """Data breaks the contract; the message names each column, what fails and in which rows."""


def read_table(path: str | Path, schema: Schema | None = None) -> pd.DataFrame:
    """Read a CSV or parquet file, with a clear error when it is missing or unreadable.

    Text columns of the schema are read as text, whatever they look like: pandas' defaults
    would turn a category "10" into a number and "NA" into a missing value. Only an empty
    cell is missing.
    """
    return next(_read(Path(path), schema, None))


def iter_table(path: str | Path, schema: Schema | None, rows: int) -> Iterator[pd.DataFrame]:
    """``read_table`` in frames of at most ``rows`` rows (at least one frame), so that a file
    of any length is processed in bounded memory."""
    return _read(Path(path), schema, rows)


def _read(path: Path, schema: Schema | None, rows: int | None) -> Iterator[pd.DataFrame]:
    if not path.is_file():
        raise UserError(f"{path} not found")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            if rows is None:
                yield pd.read_parquet(path)
                return
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path)
            if parquet.metadata.num_rows == 0:
                yield parquet.schema_arrow.empty_table().to_pandas()
            for batch in parquet.iter_batches(batch_size=rows):
                yield batch.to_pandas()
        elif path.suffix.lower() == ".csv" or suffixes == ".csv.gz":
            text = (
                {c.name: "string" for c in schema.columns if c.kind in TEXT_KINDS} if schema else {}
            )
            options = {"dtype": text, "keep_default_na": False, "na_values": [""]}
            if rows is None:
                yield pd.read_csv(path, **options)
                return
            with pd.read_csv(path, chunksize=rows, **options) as chunks:
                first = True
                for chunk in chunks:
                    yield chunk
                    first = False
            if first:  # a header without rows: one empty frame, as read_table gives
                yield pd.read_csv(path, **options)
        else:
            raise UserError(f"{path}: unsupported file type '{path.suffix}' (use .csv or .parquet)")
    except ImportError as error:
        raise UserError(f"cannot read {path}: {error}") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} is empty") from None
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path}: {str(error).splitlines()[0]}") from None


def validate(
    frame: pd.DataFrame,
    schema: Schema,
    columns: Iterable[Column] | None = None,
    source: str = "data",
    checks: bool = True,
    first_row: int = 1,
) -> pd.DataFrame:
    """Check ``frame`` against ``columns`` (default: all) and return them with their dtypes.

    Raises DataValidationError naming every failing column, what fails and the first rows
    (numbered from ``first_row``, the frame's first row: 1, the file's first data row, unless
    the frame is a later chunk of the file) where it does. ``checks=False`` converts the types
    only: for request records, whose nullability and checks the service has enforced already.
    """
    columns = tuple(schema.columns if columns is None else columns)
    missing = [column.name for column in columns if column.name not in frame.columns]
    if missing:
        raise DataValidationError(f"{source}: missing required column(s): {', '.join(missing)}")
    if frame.empty:
        raise DataValidationError(f"{source}: no rows")

    frame = frame.reset_index(drop=True)
    problems: list[str] = []
    out = pd.DataFrame(index=frame.index)
    type_errors: dict[str, pd.Series] = {}
    for column in columns:
        converted, bad = _convert(frame[column.name], column)
        if bad.any():
            problems.append(_problem(column.name, f"not of type {column.kind}", bad, first_row))
            type_errors[column.name] = bad
        out[column.name] = converted
    if checks:
        problems += _pandera_problems(schema.pandera_for(columns), out, type_errors, first_row)
    if problems:
        raise DataValidationError(f"{source}: {len(frame)} rows; " + "; ".join(problems))
    return out


def _problem(name: str, what: str, mask: pd.Series | np.ndarray, first_row: int = 1) -> str:
    rows = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(row + first_row) for row in rows[:_ROWS_SHOWN])
    more = ", ..." if len(rows) > _ROWS_SHOWN else ""
    return f"'{name}': {len(rows)} row(s) {what} (row {shown}{more})"


def _pandera_problems(
    checked: Any, frame: pd.DataFrame, type_errors: Mapping[str, pd.Series], first_row: int
) -> list[str]:
    from pandera.errors import SchemaErrors

    try:
        # inplace: nothing is coerced, so pandera need not copy the frame (half its time).
        checked.validate(frame, lazy=True, inplace=True)
    except SchemaErrors as error:
        cases = error.failure_cases
    else:
        return []
    problems = []
    for (name, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        if name in type_errors:  # a value of the wrong type is not reported twice
            bad_rows = frame.index[type_errors[name].to_numpy()]
            group = group[~group["index"].isin(bad_rows)]
            if group.empty:
                continue
        if check == "not_nullable":
            what = "empty"
        elif str(check).startswith("field_uniqueness"):
            what = "not unique"
        else:
            what = f"fail {check}"
        mask = frame.index.isin(group["index"].dropna())
        problems.append(_problem(str(name), what, mask, first_row))
    return problems


def _convert(values: pd.Series, column: Column) -> tuple[pd.Series, pd.Series]:
    """Convert to the column's dtype; return the converted values and a mask of bad ones."""
    if column.kind not in TEXT_KINDS and values.dtype in (object, "string"):
        values = values.mask(values.astype("string").str.strip().isin(NA_TOKENS))
    present = values.notna()
    if column.kind in {"integer", "float"}:
        if values.dtype == bool:
            values = values.astype("float64")
        converted = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = present & converted.isna()
        infinite = np.isinf(converted)
        bad |= infinite
        converted = converted.where(~infinite)
        if column.kind == "integer":
            # Beyond int64 a value would wrap around: reject it rather than misread it.
            too_big = converted.abs() >= 2**63
            fractional = converted.notna() & (converted % 1 != 0)
            bad |= too_big | fractional
            converted = converted.where(~(too_big | fractional)).astype("Float64").astype("Int64")
        return converted, bad
    if column.kind == "boolean":
        if pd.api.types.is_bool_dtype(values.dtype):
            return values.astype("boolean"), pd.Series(False, index=values.index)
        text = values.astype("string").str.strip().str.lower()
        converted = pd.Series(pd.NA, index=values.index, dtype="boolean")
        converted[text.isin(_TRUE).fillna(False).astype(bool)] = True
        converted[text.isin(_FALSE).fillna(False).astype(bool)] = False
        return converted, present & converted.isna()
    if column.kind == "timestamp":
        converted = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
        return converted, present & converted.isna()
    converted = values.astype("string").astype(object).where(present, None)
    return converted, pd.Series(False, index=values.index)
