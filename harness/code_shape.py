"""The code's shape the template holds itself to: no function longer than MAX_FUNCTION_LINES,
counted from its `def` line to its last line (docstring and comments included, decorators
not), methods and nested functions each on their own."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_FUNCTION_LINES = 60


@dataclass(frozen=True)
class LongFunction:
    path: Path
    line: int
    name: str  # qualified: Class.method, outer.inner
    lines: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.name} ({self.lines} lines)"


def function_lengths(source: str, path: Path) -> list[LongFunction]:
    """Every function and method of one module, with its length."""
    found: list[LongFunction] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                found.append(LongFunction(path, child.lineno, name, length))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source, filename=str(path)), "")
    return found


def long_functions(
    paths: Iterable[Path], limit: int = MAX_FUNCTION_LINES, root: Path | None = None
) -> list[LongFunction]:
    """The functions of the given Python files longer than `limit` lines, longest first; paths
    shown relative to `root` when given."""
    found = []
    for path in paths:
        shown = path.relative_to(root) if root else path
        found += [f for f in function_lengths(path.read_text(), shown) if f.lines > limit]
    return sorted(found, key=lambda f: (-f.lines, str(f.path), f.line))
