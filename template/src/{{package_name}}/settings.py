"""Shared plumbing: params.yaml, logging, and how a user's mistake is reported.

Reads ``params.yaml`` (path from ``PARAMS_FILE``); logging level from ``LOG_LEVEL``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

PARAMS_FILE = Path(os.environ.get("PARAMS_FILE", "params.yaml"))


class UserError(Exception):
    """A mistake the user can fix (bad data, a missing file): reported in one line, no traceback."""


def configure_logging() -> None:
    """Configure the root logger once, at the level named by ``LOG_LEVEL`` (default INFO)."""
    level_name = os.environ.get("LOG_LEVEL", "INFO").upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        level = logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


class Section(dict[str, Any]):
    """One section of params.yaml: its values, and its name for error messages."""

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.name = name


def load_params(section: str | None = None, path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Return ``params.yaml`` (or one section of it); each section is a ``Section``."""
    if not path.exists():
        raise UserError(f"{path} not found: run this from the project root")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}") from None
    sections = {
        name: Section(name, values) if isinstance(values, dict) else values
        for name, values in params.items()
    }
    if section is None:
        return sections
    if section not in sections:
        raise UserError(f"{path} has no '{section}' section")
    return sections[section]


def param(section: dict[str, Any], name: str, kind: Callable[[Any], Any]) -> Any:
    """One value of a params.yaml section, converted, or a UserError naming it."""
    where = f"{section.name}.{name}" if isinstance(section, Section) else name
    if name not in section:
        raise UserError(f"params.yaml: '{where}' is missing")
    try:
        return kind(section[name])
    except (TypeError, ValueError):
        expected = getattr(kind, "__name__", "valid")
        raise UserError(f"params.yaml: '{where}' is {section[name]!r}, not a {expected}") from None


def run_cli(main: Callable[[list[str] | None], int | None]) -> None:
    """Run a command-line entry point: user mistakes exit 2 with one clear line."""
    configure_logging()
    try:
        code = main(None)
    except UserError as error:
        log.error("%s", error)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code or 0)
