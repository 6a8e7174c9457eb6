"""The data contract: ``schema.yaml``, its columns, their kinds, roles, checks and ranges.

``schema.yaml`` is one reviewable, committed file. ``make setup`` (or ``make adopt-data``)
infers it from your data; the bundled sample ships a hand-curated one. For each column it
records the kind (integer, float, boolean, category, text, timestamp), whether it may be
empty, the role (``feature``, ``target``, ``id``, ``timestamp`` or ``excluded``, the latter
with its reason), the categories and the range of values seen in the data, the calendar
features a date feeds (``features: [month, day_of_week_cyclic]``), and any constraint you add
under ``checks`` in pandera's vocabulary (``in_range``, ``isin``, ``greater_than_or_equal_to``,
``str_matches``, ...). Seen categories and ranges are soft checks, never constraints: a value
outside them is served, counted and logged (``checks.py``); a ``checks`` entry refuses it.

This module reads, checks and writes the contract itself; ``tables.py`` reads and validates
data against it. The trained model carries a copy (``model.py``): the service and the batch
CLI read that one, never ``schema.yaml``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
                low, high = range_bounds(column)
                if low > high:
                    problems.append(f"'{column.name}': range {list(column.range)} is reversed")
            except (TypeError, ValueError):
                problems.append(f"'{column.name}': range {list(column.range)} is not of its kind")
    if column.features:
        if column.kind != "timestamp":
            problems.append(
                f"'{column.name}': features come from dates; this column is {column.kind} "
                "(derive features from it in pipeline/features.py)"
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


def with_columns(schema: Schema, columns: Iterable[Column]) -> Schema:
    """A copy of ``schema`` with these columns in place of its own (for tests and adoption)."""
    return replace(schema, columns=tuple(columns))


def range_bounds(column: Column) -> tuple[Any, Any]:
    """A column's range as values its validated data compares with."""
    assert column.range is not None
    low, high = column.range
    if column.kind == "timestamp":
        return pd.to_datetime(low, utc=True), pd.to_datetime(high, utc=True)
    if isinstance(low, bool | str) or isinstance(high, bool | str):
        raise TypeError("a range of numbers")
    return float(low), float(high)
