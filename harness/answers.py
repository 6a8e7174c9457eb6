"""The answer combinations the rendering tests generate, derived from copier.yml.

Every choice of every question appears in at least one combination, so a choice added to
copier.yml is tested without editing a test. Questions that constrain each other (a validator,
`when` or default of one names the other, e.g. `model`'s choices are valid for one `task` only)
are covered together: every combination of their choices that copier accepts appears.
Whether copier accepts a combination is asked of copier itself, with the template's own
copier.yml and validators (a dry run that renders no file).
"""

from __future__ import annotations

import atexit
import functools
import itertools
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import copier
import yaml

from harness.project import TEMPLATE_ROOT

COPIER_YML = TEMPLATE_ROOT / "copier.yml"

# Answers for questions without a valid default that copier asks only after some choice
# (dataset=file asks for the file and its target column). Used only where copier rejects a
# combination without them; tests/test_answers.py checks each is still needed.
FILL_INS: dict[str, str] = {
    "dataset_path": "data/customers.csv",
    "target_column": "churned",
}

# A user's own table with an id and a time column, with the Feast feature store: rendered by
# tests/test_render.py, tests/test_cookiecutter.py and tests/test_feature_store.py.
OWN_FILE_FEAST: dict[str, str] = {
    "dataset": "file",
    "dataset_path": "/srv/exports/visits.csv",
    "target_column": "renewed",
    "id_column": "account_ref",
    "timestamp_column": "seen_at",
    "feature_store": "feast",
}


def questions(copier_yml: Path = COPIER_YML) -> dict[str, dict[str, Any]]:
    """copier.yml's questions, in order (settings, the keys starting with '_', left out)."""
    data = yaml.safe_load(copier_yml.read_text())
    return {
        name: spec if isinstance(spec, dict) else {"default": spec}
        for name, spec in data.items()
        if not name.startswith("_")
    }


def choices(spec: dict[str, Any]) -> list[str]:
    """A question's choice values, in order (empty for a free-text question)."""
    options = spec.get("choices")
    if not options:
        return []
    if isinstance(options, str):
        raise ValueError("templated choices: teach harness/answers.py to render them")
    if isinstance(options, list):
        return [str(value) for value in options]
    return [str(value["value"] if isinstance(value, dict) else value) for value in options.values()]


def _jinja_code(spec: dict[str, Any]) -> str:
    """The Jinja code (string literals left out) that copier renders with other answers: in a
    question's validator, when and default, and in its choices' validators."""
    texts = [str(spec.get(key, "")) for key in ("validator", "when", "default")]
    options = spec.get("choices")
    if isinstance(options, dict):
        texts += [str(v.get("validator", "")) for v in options.values() if isinstance(v, dict)]
    code = re.findall(r"\{\{(.*?)\}\}|\{%(.*?)%\}", "\n".join(texts), re.DOTALL)
    return re.sub(r"'[^']*'|\"[^\"]*\"", "", " ".join(" ".join(pair) for pair in code))


def linked_groups(copier_yml: Path = COPIER_YML) -> list[tuple[str, ...]]:
    """The choice questions, grouped: two are in one group when a question's validator,
    `when` or default (or a choice's validator) names both, directly or through others."""
    spec = questions(copier_yml)
    choice_names = [name for name, q in spec.items() if choices(q)]
    group_of = {name: {name} for name in choice_names}
    for name, question in spec.items():
        code = _jinja_code(question)
        named = [n for n in choice_names if n == name or re.search(rf"\b{n}\b", code)]
        merged = set().union(*(group_of[n] for n in named)) if named else set()
        for member in merged:
            group_of[member] = merged
    groups: list[tuple[str, ...]] = []
    for name in choice_names:
        group = tuple(n for n in choice_names if n in group_of[name])
        if group not in groups:
            groups.append(group)
    return groups


@functools.cache
def _stub_template(copier_yml: Path) -> Path:
    """copier.yml alone, with an empty template folder: copier asks and validates, renders
    nothing. (The repository itself is a git checkout, which copier would clone.)"""
    stub = Path(tempfile.mkdtemp(prefix="copier-answers-"))
    atexit.register(shutil.rmtree, stub, ignore_errors=True)
    shutil.copy2(copier_yml, stub / "copier.yml")
    subdirectory = yaml.safe_load(copier_yml.read_text()).get("_subdirectory", "")
    (stub / subdirectory).mkdir(parents=True, exist_ok=True)
    return stub


def ask_copier(answers: dict[str, str], copier_yml: Path = COPIER_YML) -> None:
    """Give copier these answers as `copier copy --defaults` would, in a dry run of copier.yml
    alone: a ValueError with copier's message if a validator rejects one, else nothing."""
    stub = _stub_template(copier_yml)
    copier.run_copy(
        str(stub), stub / "out", data=answers, defaults=True, pretend=True, quiet=True, unsafe=False
    )


def _copier_accepts(copier_yml: Path, answers: dict[str, str]) -> bool:
    try:
        ask_copier(answers, copier_yml)
    except ValueError:  # what copier raises for an answer its validators reject
        return False
    return True


@functools.cache
def _accepted(
    copier_yml: Path, items: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...] | None:
    answers = dict(items)
    for candidate in (answers, {**FILL_INS, **answers}):
        if _copier_accepts(copier_yml, candidate):
            return tuple(candidate.items())
    return None


def accepted(answers: dict[str, str], copier_yml: Path = COPIER_YML) -> dict[str, str] | None:
    """`answers` as copier accepts them (with the FILL_INS it needs), or None if it cannot."""
    found = _accepted(copier_yml, tuple(answers.items()))
    return None if found is None else dict(found)


@functools.cache
def _matrix(copier_yml: Path) -> tuple[tuple[tuple[str, str], ...], ...]:
    spec = questions(copier_yml)
    defaults = {name: str(q.get("default")) for name, q in spec.items()}
    mentioned = " ".join(_jinja_code(question) for question in spec.values())
    per_group: list[list[dict[str, str]]] = []
    for group in linked_groups(copier_yml):
        # Copier checks only that an answer is one of the choices, unless some Jinja names
        # the question: then it is asked (each copier dry run takes about 0.1 s).
        ask = any(re.search(rf"\b{name}\b", mentioned) for name in group)
        cells = []
        for values in itertools.product(*(choices(spec[name]) for name in group)):
            cell = {n: v for n, v in zip(group, values, strict=True) if v != defaults[n]}
            found = accepted(cell, copier_yml) if cell and ask else cell
            if found is not None:
                cells.append(found)
        if not cells:
            raise ValueError(f"copier accepts no combination of {group}'s choices")
        cells.sort(key=len)  # the defaults first (a stable sort keeps copier.yml's order)
        per_group.append(cells)
    rows = max(len(cells) for cells in per_group)
    matrix = []
    for row in range(rows):
        answers: dict[str, str] = {}
        for cells in per_group:
            answers.update(cells[row] if row < len(cells) else cells[0])
        matrix.append(tuple(answers.items()))
    return tuple(matrix)


def matrix(copier_yml: Path = COPIER_YML) -> list[dict[str, str]]:
    """Combinations of answers that cover every choice, as explained in the module docstring.

    The first is copier's defaults ({}); the others name only what differs from the defaults.
    """
    return [dict(row) for row in _matrix(copier_yml)]


def combination_id(answers: dict[str, str]) -> str:
    """A test id: the chosen values that differ from the defaults (FILL_INS left out)."""
    spec = questions()
    shown = [v for name, v in answers.items() if name not in FILL_INS and choices(spec[name])]
    return "-".join(shown) or "defaults"
