"""The data contract: ``schema.yaml``, its columns, their types and roles; reading and validation.

``schema.yaml`` is one reviewable, committed file. ``make setup`` (or ``make adopt-data``)
infers it from your data; the bundled sample ships a hand-curated one. For each column it
records the kind (integer, float, boolean, category, text, timestamp), whether it may be
empty, the role (``feature``, ``target``, ``id``, ``timestamp`` or ``excluded``, the latter
with its reason), the categories and the range of values seen in the data, the calendar
features a date feeds (``features: [month, day_of_week_cyclic]``), and any constraint you add
under ``checks`` in pandera's vocabulary (``in_range``, ``isin``, ``greater_than_or_equal_to``,
``str_matches``, ...). Seen categories and ranges are soft checks, never constraints: a value
outside them is served, counted and logged (``unexpected_values``); a ``checks`` entry refuses it.

Every reader of data goes through here: the prepare stage, the feature stage, the batch CLI,
the service (its request model is built from the feature columns) and the monitor.
Types are converted here; nullability, uniqueness and the checks are validated by pandera.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..settings import UserError

SCHEMA_FILE = Path(os.environ.get("SCHEMA_FILE", "schema.yaml"))

KINDS = ("integer", "float", "boolean", "category", "text", "timestamp")
ROLES = ("feature", "target", "id", "timestamp", "excluded")
NUMERIC_KINDS = ("integer", "float", "boolean")
TEXT_KINDS = ("category", "text")
# The dtype each kind has once validated: what the features, the model and pandera see.
_DTYPES = {
    "integer": "Int64",
    "float": "float64",
    "boolean": "boolean",
    "category": "object",
    "text": "object",
    "timestamp": "datetime64[ns, UTC]",
}
# Tokens a CSV may use for "missing" in a numeric, boolean or time column (text keeps them).
NA_TOKENS = frozenset({"", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A"})
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}
_ROWS_SHOWN = 5  # failing rows named in a message
# What a date can feed (``features:`` of a timestamp column): calendar parts, in UTC, each with
# its period where it has one; ``<part>_cyclic`` is that part as a point on a circle (its sine
# and cosine), so that December sits next to January.
CALENDAR_PARTS: dict[str, int | None] = {
    "year": None,
    "quarter": 4,
    "month": 12,
    "day": 31,
    "day_of_week": 7,
    "day_of_year": 366,
    "hour": 24,
    "is_weekend": None,
}
CYCLIC = "_cyclic"
CALENDAR_FEATURES = (
    *CALENDAR_PARTS,
    *(f"{part}{CYCLIC}" for part, period in CALENDAR_PARTS.items() if period),
)


class DataValidationError(UserError):
    """Data breaks the contract; the message names each column, what fails and in which rows."""


@dataclass(frozen=True)
class Column:
    """One column of the data, as ``schema.yaml`` describes it."""

    name: str
    kind: str
    role: str = "feature"
    nullable: bool = False
    description: str = ""
    categories: tuple[Any, ...] | None = None  # seen in the data; a constraint only via checks
    checks: Mapping[str, Any] = field(default_factory=dict)  # pandera checks, by name
    reason: str | None = None  # why the column is excluded
    range: tuple[Any, Any] | None = None  # smallest and largest seen: a soft check
    features: tuple[str, ...] = ()  # calendar features of a date (CALENDAR_FEATURES)

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "role": self.role, "nullable": self.nullable}
        if self.reason:
            out["reason"] = self.reason
        if self.description:
            out["description"] = self.description
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.range is not None:
            out["range"] = list(self.range)
        if self.features:
            out["features"] = list(self.features)
        if self.checks:
            out["checks"] = dict(self.checks)
        return out


@dataclass(frozen=True)
class Schema:
    """The whole contract: the columns in file order, the task, and where the data came from."""

    name: str
    task: str
    columns: tuple[Column, ...]
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pandera", {})  # pandera schemas by column names, built once
        problems = []
        names = [column.name for column in self.columns]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"duplicate column(s) {', '.join(duplicates)}")
        for column in self.columns:
            if column.kind not in KINDS:
                problems.append(f"'{column.name}': kind '{column.kind}' is not one of {KINDS}")
            if column.role not in ROLES:
                problems.append(f"'{column.name}': role '{column.role}' is not one of {ROLES}")
            problems += _soft_check_problems(column)
        for role in ("target", "id", "timestamp"):
            if sum(column.role == role for column in self.columns) > 1:
                problems.append(f"more than one column has role '{role}'")
        if sum(column.role == "target" for column in self.columns) != 1:
            problems.append("exactly one column must have role 'target'")
        if not any(column.role == "feature" for column in self.columns):
            problems.append("no column has role 'feature': the model would have no input")
        if self.task not in ("classification", "regression"):
            problems.append(f"task '{self.task}' is not classification or regression")
        if problems:
            raise UserError(f"{self.source or 'schema'}: " + "; ".join(problems))

    def role(self, role: str) -> Column | None:
        return next((column for column in self.columns if column.role == role), None)

    @property
    def target(self) -> Column:
        target = self.role("target")
        assert target is not None  # checked in __post_init__
        return target

    @property
    def id(self) -> Column | None:
        return self.role("id")

    @property
    def timestamp(self) -> Column | None:
        return self.role("timestamp")

    @property
    def inputs(self) -> tuple[Column, ...]:
        """The feature columns, one feature each as they are (what a request must carry is
        every column a feature reads: ``features.raw_columns``, these and maybe a date)."""
        return tuple(column for column in self.columns if column.role == "feature")

    @property
    def keys(self) -> tuple[Column, ...]:
        """The id and timestamp columns, where the data has them."""
        return tuple(c for c in (self.id, self.timestamp) if c is not None)

    def subset(self, names: Iterable[str]) -> tuple[Column, ...]:
        wanted = set(names)
        return tuple(column for column in self.columns if column.name in wanted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "columns": {column.name: column.to_dict() for column in self.columns},
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "schema") -> Schema:
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            raise UserError(f"{source}: expected a mapping with 'name', 'task' and 'columns'")
        columns = []
        for name, spec in data["columns"].items():
            if not isinstance(spec, dict) or "kind" not in spec:
                raise UserError(f"{source}: column '{name}' needs at least a 'kind'")
            unknown = set(spec) - {f for f in Column.__dataclass_fields__ if f != "name"}
            if unknown:
                raise UserError(f"{source}: column '{name}' has unknown key(s) {sorted(unknown)}")
            categories, bounds = spec.get("categories"), spec.get("range")
            features = spec.get("features") or ()
            if isinstance(features, str):
                features = (features,)
            columns.append(
                Column(
                    name=str(name),
                    kind=spec["kind"],
                    role=spec.get("role", "feature"),
                    nullable=bool(spec.get("nullable", False)),
                    description=spec.get("description") or "",
                    categories=None if categories is None else tuple(categories),
                    checks=spec.get("checks") or {},
                    reason=spec.get("reason"),
                    range=None if bounds is None else _pair(bounds, f"{source}: '{name}'"),
                    features=tuple(str(f) for f in features),
                )
            )
        return cls(str(data.get("name", "data")), str(data.get("task")), tuple(columns), source)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    @property
    def pandera(self) -> Any:
        """The pandera schema of every column: nullability, uniqueness of the id, the checks."""
        return self.pandera_for(self.columns)

    def pandera_for(self, columns: Iterable[Column]) -> Any:
        """The pandera schema of some columns (cached: building one takes milliseconds)."""
        columns = tuple(columns)
        key = tuple(column.name for column in columns)
        cache: dict[tuple[str, ...], Any] = self._pandera  # type: ignore[attr-defined]
        if key not in cache:
            cache[key] = _pandera_schema(columns, self.source)
        return cache[key]


def _pair(value: Any, where: str) -> tuple[Any, Any]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise UserError(f"{where}: range must be [smallest, largest], not {value!r}")
    return value[0], value[1]


def _soft_check_problems(column: Column) -> list[str]:
    """What is wrong with a column's range and features (empty when nothing is)."""
    problems = []
    if column.range is not None:
        if column.kind not in {"integer", "float", "timestamp"}:
            problems.append(f"'{column.name}': a range needs a number or a date, not {column.kind}")
        else:
            try:
                low, high = _bounds(column)
                if low > high:
                    problems.append(f"'{column.name}': range {list(column.range)} is reversed")
            except (TypeError, ValueError):
                problems.append(f"'{column.name}': range {list(column.range)} is not of its kind")
    if column.features:
        if column.kind != "timestamp":
            problems.append(
                f"'{column.name}': features come from dates; this column is {column.kind} "
                "(derive features from it in features.py)"
            )
        elif column.role == "target":
            problems.append(f"'{column.name}': the target cannot feed features")
        unknown = [f for f in column.features if f not in CALENDAR_FEATURES]
        if unknown:
            problems.append(
                f"'{column.name}': unknown feature(s) {', '.join(map(repr, unknown))}; "
                f"a date can feed: {', '.join(CALENDAR_FEATURES)}"
            )
    return problems


HEADER = """\
# The data contract of this project: every stage, the batch CLI, the service and the monitor
# read it. Review it and commit it. For each column:
#   kind       integer | float | boolean | category | text | timestamp
#   role       feature | target | id | timestamp | excluded (with the reason)
#   nullable   whether a value may be missing (a request then sends null)
#   categories the values seen in the data, and
#   range      the smallest and largest seen: soft checks (a value outside is served,
#              counted on /metrics and in make monitor, and logged), not constraints
#   features   what a date feeds the model, e.g. features: [month, day_of_week, hour_cyclic]
#              (year, quarter, month, day, day_of_week, day_of_year, hour, is_weekend; and
#              <part>_cyclic: its sine and cosine, so that December is next to January)
#   checks     constraints you add (a value outside is refused), in pandera's vocabulary, e.g.
#                checks: {in_range: {min_value: 0, max_value: 120}}
#                checks: {isin: [basic, premium]}
# Change a role to use or drop a column, then `make pipeline`.
"""


def load_schema(path: Path | None = None) -> Schema:
    """Read ``schema.yaml`` (path from ``SCHEMA_FILE``), with a clear error when it is wrong."""
    path = path or SCHEMA_FILE
    if not path.exists():
        raise UserError(f"{path} not found: run `make setup` (or `make adopt-data`) first")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}") from None
    schema = Schema.from_dict(data, source=str(path))
    schema.pandera  # noqa: B018  (bad checks are reported now, not halfway through a stage)
    return schema


def pandera_checks(column: Column) -> list[Any]:
    """The column's checks as pandera Check objects (to apply to single values, too)."""
    return list(_pandera_schema((column,), column.name).columns[column.name].checks)


def write_schema(schema: Schema, path: Path | None = None) -> None:
    (path or SCHEMA_FILE).write_text(HEADER + schema.to_yaml(), encoding="utf-8")


def _pandera_schema(columns: Iterable[Column], source: str) -> Any:
    # Imported here: pandera is only needed where a whole table is validated.
    import pandera.pandas as pa
    from pandera.errors import SchemaDefinitionError

    document = {
        "schema_type": "dataframe",
        "version": "0.35.0",
        "columns": {
            column.name: {
                "dtype": None,  # types are converted (and reported) by _convert, not here
                "nullable": column.nullable,
                "unique": column.role == "id",
                "coerce": False,
                "required": True,
                "checks": dict(column.checks) or None,
            }
            for column in columns
        },
        "coerce": False,
        "strict": False,
    }
    try:
        return pa.DataFrameSchema.from_yaml(yaml.safe_dump(document))
    except (SchemaDefinitionError, TypeError, ValueError, KeyError, AttributeError) as error:
        raise UserError(f"{source}: a check is not valid: {error}") from None


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


def with_columns(schema: Schema, columns: Iterable[Column]) -> Schema:
    """A copy of ``schema`` with these columns in place of its own (for tests and adoption)."""
    return replace(schema, columns=tuple(columns))


def _bounds(column: Column) -> tuple[Any, Any]:
    """A column's range as values its validated data compares with."""
    assert column.range is not None
    low, high = column.range
    if column.kind == "timestamp":
        return pd.to_datetime(low, utc=True), pd.to_datetime(high, utc=True)
    if isinstance(low, bool | str) or isinstance(high, bool | str):
        raise TypeError("a range of numbers")
    return float(low), float(high)


@dataclass(frozen=True)
class _SoftChecks:
    """A schema's soft checks, ready to apply: (column, smallest, largest) for the ranges,
    (column, the categories seen) for the categories. Built once a schema (the service
    applies them to every request)."""

    ranges: tuple[tuple[Column, Any, Any], ...]
    categories: tuple[tuple[str, frozenset[str]], ...]


def _soft_checks(schema: Schema) -> _SoftChecks:
    cache: dict[tuple[str, ...], Any] = schema._pandera  # type: ignore[attr-defined]
    key = ("soft checks",)
    if key not in cache:
        ranges = tuple((c, *_bounds(c)) for c in schema.columns if c.range is not None)
        categories = tuple(
            (c.name, frozenset(map(str, c.categories)))
            for c in schema.columns
            if c.categories is not None and c.kind == "category"
        )
        cache[key] = _SoftChecks(ranges, categories)
    return cache[key]


def out_of_range(frame: pd.DataFrame, schema: Schema) -> dict[str, int]:
    """Soft checks, numbers and dates: per column of ``frame`` with a ``range`` in the schema,
    how many (validated) values lie outside it, where some do."""
    counts = {}
    for column, low, high in _soft_checks(schema).ranges:
        if column.name not in frame:
            continue
        values = frame[column.name]
        if column.kind == "timestamp":
            outside = int(((values < low) | (values > high)).sum())
        else:
            array = values.to_numpy(dtype="float64", na_value=np.nan)
            with np.errstate(invalid="ignore"):
                outside = int(np.count_nonzero((array < low) | (array > high)))
        if outside:
            counts[column.name] = outside
    return counts


def unseen_categories(frame: pd.DataFrame, schema: Schema) -> dict[str, int]:
    """Soft checks, categories: per category column of ``frame``, how many values are not
    among the ``categories`` the schema lists, where some are not."""
    counts = {}
    for name, seen in _soft_checks(schema).categories:
        if name not in frame:
            continue
        values = frame[name].to_numpy(dtype=object)
        if len(values) <= 100:  # a request: a loop beats pandas' set-up
            unseen = sum(1 for v in values if isinstance(v, str) and v not in seen)
        else:
            present = pd.notna(values)
            unseen = int((present & ~pd.Series(values).astype(str).isin(seen).to_numpy()).sum())
        if unseen:
            counts[name] = unseen
    return counts


def unexpected_values(frame: pd.DataFrame, schema: Schema) -> dict[str, int]:
    """Every soft check: per column, the values outside its range or its categories seen in
    the training data. Counted and logged by the service, the batch CLI and the monitor;
    never refused (a constraint is a ``checks`` entry)."""
    return {**out_of_range(frame, schema), **unseen_categories(frame, schema)}
