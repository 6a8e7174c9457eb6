"""Schema inference: what ``make adopt-data`` (and ``make setup`` for an answered file) reads
from a new table before anything is written.

It checks the table against the answers (the target fits the task, the id is unique, the
timestamp parses as dates) and infers each column's kind, nullability, categories and range;
it excludes, with the reason, what should not be a feature: a constant, free text, a row
index, a bare date (its calendar features can be listed instead), or a likely leak (a column
that alone predicts the target on held-out rows with a score of ``LEAK_SCORE`` or more).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..settings import UserError
from .schema import Column, Schema
from .tables import NA_TOKENS, read_table

MAX_CLASSES = 100  # more distinct target values than this is a regression target
MAX_CATEGORIES = 200  # a text column with more distinct values is free text, not a category
# A column that alone predicts the target this well on held-out rows (balanced accuracy
# adjusted for chance, or R²) is a likely leak; judged on a sample, cheap on a million rows.
LEAK_SCORE = 0.9  # a near-copy (|correlation| 0.96) scores 0.92; real features seen: < 0.8
PROBE_ROWS = 30_000


def read_source(path: Path) -> pd.DataFrame:
    """Read the user's file for inference, refusing duplicate or empty column names."""
    if not path.is_file():
        raise UserError(f"{path} not found (a relative path is read from the project folder)")
    suffix = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".csv" or suffix == ".csv.gz":
        try:
            with pd.io.common.get_handle(path, "r", compression="infer") as handle:
                header = next(csv.reader(handle.handle), [])
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read {path}: {error}") from None
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise UserError(f"{path}: duplicate column name(s): {', '.join(duplicates)}")
        if any(not name.strip() for name in header):
            raise UserError(f"{path}: a column has no name (an empty header cell)")
        try:
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
        except pd.errors.EmptyDataError:
            raise UserError(f"{path} is empty") from None
        except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
    else:
        frame = read_table(path)
        if frame.columns.duplicated().any():
            duplicates = sorted(set(frame.columns[frame.columns.duplicated()]))
            raise UserError(f"{path}: duplicate column name(s): {', '.join(map(str, duplicates))}")
    if frame.empty:
        raise UserError(f"{path} has no rows")
    frame.columns = [str(name) for name in frame.columns]
    return frame


def _as_numeric(values: pd.Series) -> pd.Series | None:
    """The values as numbers, treating NA tokens as missing; None if some are not numbers."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return None
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    text = values.astype("string").str.strip()
    text = text.mask(text.isin(list(NA_TOKENS)))
    numbers = pd.to_numeric(text, errors="coerce")
    if (numbers.isna() & text.notna()).any():
        return None
    return numbers.astype("float64")


def _kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values.dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "timestamp"
    numbers = _as_numeric(values)
    if numbers is not None:
        finite = numbers.dropna()
        if len(finite) and (finite % 1 == 0).all() and (finite.abs() < 2**53).all():
            return "integer"
        return "float"
    text = values.dropna().astype(str).str.strip().str.lower()
    if len(text) and text.isin({"true", "false"}).all():
        return "boolean"
    return "category"


def _shown(value: Any) -> str:
    """A value as a message quotes it: 103 or 'yes', never np.int64(103)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _parses_as_time(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    id_column: str | None = None,
    timestamp: str | None = None,
    *,
    task: str,
    name: str = "data",
    source: str = "",
) -> Schema:
    """Check the table against the answers and infer its schema; UserError on the first problem."""
    roles = {"target": target, "id": id_column, "timestamp": timestamp}
    _check_roles(frame, roles)
    _check_target(frame[target].dropna(), target, task)
    if timestamp:
        _check_timestamp(frame[timestamp].dropna(), timestamp)
    if id_column:
        _check_id(frame, id_column)
    # Labelled rows in random order, at most PROBE_ROWS: where leaks are looked for.
    labelled = np.flatnonzero(frame[target].notna().to_numpy())
    probe = frame.iloc[np.random.default_rng(0).permutation(labelled)[:PROBE_ROWS]]
    columns = tuple(_infer_column(frame, probe, column, roles, task) for column in frame.columns)
    return Schema(name=name, task=task, columns=columns, source=source)


def _check_roles(frame: pd.DataFrame, roles: dict[str, str | None]) -> None:
    for role, column in roles.items():
        if column and column not in frame.columns:
            listed = ", ".join(frame.columns)
            raise UserError(f"{role} column '{column}' not found; the columns are: {listed}")
    given = [column for column in roles.values() if column]
    if len(given) != len(set(given)):
        shown = ", ".join(f"{role}={column}" for role, column in roles.items())
        raise UserError(f"one column has two roles: {shown}")


def _check_target(labels: pd.Series, target: str, task: str) -> None:
    """The target fits the task: two classes at least (and not too many), or numbers."""
    if labels.empty:
        raise UserError(f"target '{target}' has no values")
    if task == "classification":
        classes = labels.nunique()
        if classes < 2:
            raise UserError(
                f"target '{target}' has one class ({_shown(labels.iloc[0])}): nothing to learn"
            )
        if classes > MAX_CLASSES:
            raise UserError(
                f"target '{target}' has {classes} distinct values, too many classes for "
                f"classification (at most {MAX_CLASSES}); for a number to predict, generate "
                "the project with task=regression"
            )
    elif _as_numeric(labels) is None or pd.api.types.is_bool_dtype(labels.dtype):
        example = labels[pd.to_numeric(labels, errors="coerce").isna()]
        shown = f" (e.g. {_shown(example.iloc[0])})" if len(example) else ""
        raise UserError(f"target '{target}' is not numeric{shown}: regression needs numbers")


def _check_timestamp(present: pd.Series, timestamp: str) -> None:
    parsed = _parses_as_time(present)
    if parsed.isna().any() or present.empty:
        bad = present[parsed.isna()]
        example = f" (e.g. {_shown(bad.iloc[0])} in row {bad.index[0] + 1})" if len(bad) else ""
        raise UserError(f"timestamp column '{timestamp}' does not parse as dates{example}")


def _check_id(frame: pd.DataFrame, id_column: str) -> None:
    duplicated = frame[id_column][frame[id_column].duplicated(keep=False)]
    if len(duplicated):
        value = duplicated.iloc[0]
        rows = (frame.index[frame[id_column] == value][:3] + 1).tolist()
        raise UserError(
            f"id column '{id_column}' has duplicate values (e.g. {_shown(value)} in rows "
            f"{', '.join(map(str, rows))})"
        )


def _infer_column(
    frame: pd.DataFrame,
    probe: pd.DataFrame,
    name: str,
    roles: dict[str, str | None],
    task: str,
) -> Column:
    """One column's kind, nullability, categories, range and role (excluded, with why)."""
    values = frame[name]
    # The distinct values decide the kind: a million rows often have a few hundred.
    uniques = pd.Series(values.dropna().unique(), dtype=values.dtype)
    role = next((r for r, c in roles.items() if c == name), "feature")
    if role == "timestamp":
        kind = "timestamp"
    elif role == "target" and task == "classification" and _kind(uniques) == "float":
        kind = "category"  # class labels written as 1.0, 2.0: labels, not numbers
    else:
        kind = _kind(uniques)
    numbers = _as_numeric(uniques)
    present = uniques.astype(str) if kind == "category" and numbers is None else uniques
    nullable = bool(values.isna().any()) or (
        kind in {"integer", "float"} and numbers is not None and bool(numbers.isna().any())
    )
    reason = None
    distinct = present.nunique()
    if role == "feature" and kind == "category" and len(present) and _all_dates(present):
        kind = "timestamp"
    if role == "feature" and kind == "timestamp":
        reason = "constant: the same value in every row" if distinct <= 1 else DATE_REASON
    elif role == "feature":
        target = str(roles["target"])
        reason = _exclusion(frame, probe, name, kind, present, distinct, target, task)
    if reason and kind == "category" and distinct > MAX_CATEGORIES:
        kind = "text"
    categories = None
    if kind == "category" and distinct <= MAX_CATEGORIES:
        categories = tuple(sorted(present.unique().tolist(), key=str))
    return Column(
        name=name,
        kind=kind,
        role="excluded" if reason else role,
        nullable=nullable,
        categories=categories,
        reason=reason,
        range=_seen_range(present, kind) if role == "feature" else None,
    )


DATE_REASON = (
    "a date: not a feature as it is; list the calendar features it feeds under it, e.g. "
    "features: [month, day_of_week_cyclic] (the header says which)"
)


def _all_dates(values: pd.Series) -> bool:
    """Whether every value reads as a date (a hundred first: most text columns fail there)."""
    return bool(
        _parses_as_time(values.head(100)).notna().all() and _parses_as_time(values).notna().all()
    )


def _seen_range(present: pd.Series, kind: str) -> tuple[Any, Any] | None:
    """The smallest and largest values of a number or date column (a soft check)."""
    if kind in {"integer", "float"}:
        numbers = _as_numeric(present)
        if numbers is None or numbers.dropna().empty:
            return None
        low, high = numbers.min(), numbers.max()
        if kind == "integer":
            return int(low), int(high)
        return float(low), float(high)
    if kind == "timestamp":
        times = _parses_as_time(present).dropna()
        if times.empty:
            return None
        return tuple(t.isoformat().replace("+00:00", "Z") for t in (times.min(), times.max()))
    return None


def _exclusion(
    frame: pd.DataFrame,
    probe: pd.DataFrame,
    name: str,
    kind: str,
    present: pd.Series,
    distinct: int,
    target: str,
    task: str,
) -> str | None:
    """Why a column should not be a feature, or None."""
    if distinct <= 1:
        return "constant: the same value in every row"
    if kind == "category" and distinct == len(frame) and len(frame) > 20:
        return "every value is distinct: an identifier or free text, not a category"
    if kind == "category" and distinct > MAX_CATEGORIES:
        return f"free text: {distinct} distinct values (more than {MAX_CATEGORIES})"
    if kind == "integer" and distinct == len(frame) and len(frame) > 20:
        numbers = _as_numeric(present)
        if numbers is not None and numbers.max() - numbers.min() == len(frame) - 1:
            low, high = int(numbers.min()), int(numbers.max())
            return (
                f"a row index: the integers {low} to {high}, each once (it numbers the rows, "
                "it does not describe them)"
            )
    if kind in {"integer", "float", "boolean", "category"}:
        score = _alone_score(probe[name], probe[target], kind, task)
        if score is not None and score >= LEAK_SCORE:
            measure = "R²" if task == "regression" else "balanced accuracy, adjusted for chance,"
            return (
                f"likely leaks the target: alone it predicts '{target}' almost perfectly "
                f"({measure} {score:.3f} on held-out rows); if it is known when predicting, "
                "make it a feature (role: feature)"
            )
    return None


def _alone_score(values: pd.Series, target: pd.Series, kind: str, task: str) -> float | None:
    """How well one column alone predicts the target on the held-out third of ``values``
    (rows in random order): R² for regression, balanced accuracy adjusted for chance (0 is
    guessing, 1 perfect) for classification. Numbers through a shallow decision tree;
    categories through the most common class (or the mean) of each value."""
    from sklearn.metrics import balanced_accuracy_score, r2_score
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if len(values) < 30:
        return None
    fit = np.arange(len(values)) % 3 != 0
    regression = task == "regression"
    y = target.astype("float64") if regression else target.astype(str)
    numbers = _as_numeric(values) if kind in {"integer", "float"} else None
    if numbers is not None:
        filled = numbers.fillna(numbers.min() - 1 if numbers.notna().any() else 0).to_numpy()
        tree = DecisionTreeRegressor if regression else DecisionTreeClassifier
        model = tree(max_depth=6, min_samples_leaf=5, random_state=0)
        model.fit(filled[fit].reshape(-1, 1), y[fit])
        predicted = model.predict(filled[~fit].reshape(-1, 1))
    else:
        keys = values.astype(str).where(values.notna(), "")
        pairs = pd.DataFrame({"key": keys, "y": y})
        learned = pairs[fit].groupby("key")["y"]
        table = learned.mean() if regression else learned.agg(lambda v: v.mode().iloc[0])
        default = y[fit].mean() if regression else y[fit].mode().iloc[0]
        predicted = pairs.loc[~fit, "key"].map(table).fillna(default).to_numpy()
    truth = y[~fit].to_numpy()
    if regression:
        return float(r2_score(truth, predicted)) if np.std(truth) > 0 else None
    if len(set(truth)) < 2:
        return None
    with warnings.catch_warnings():  # a class absent from the held-out rows: still a score
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(truth, predicted, adjusted=True))
