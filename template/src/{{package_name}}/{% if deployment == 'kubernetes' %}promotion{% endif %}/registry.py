"""The model registry as git holds it: GTO's stage tags, and a version's metrics at its tag.

GTO writes ``NAME#STAGE#N`` when it assigns a stage and ``NAME#STAGE!#N`` when it unassigns
one; ``N`` grows with every event of the model, so the stage's holder before event ``N`` is
its latest event below ``N`` (none when that event was an unassignment).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..settings import UserError

STAGE_TAG = re.compile(r"^(?P<name>[^#@!]+)#(?P<stage>[^#@!]+)(?P<unassign>!?)#(?P<number>\d+)$")
METRICS = "metrics/metrics.json"


@dataclass(frozen=True)
class StageTag:
    """One stage event of a model: the tag, and what it says."""

    tag: str
    name: str
    stage: str
    number: int
    assigned: bool


def parse_stage_tag(tag: str) -> StageTag:
    """``NAME#STAGE#N`` (or ``NAME#STAGE!#N``) as a StageTag; a UserError for anything else."""
    found = STAGE_TAG.match(tag)
    if found is None:
        raise UserError(f"{tag!r} is not a GTO stage tag (NAME#STAGE#N, e.g. my-model#staging#3)")
    return StageTag(tag, found["name"], found["stage"], int(found["number"]), not found["unassign"])


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def stage_events(name: str, stage: str, cwd: Path | None = None) -> list[StageTag]:
    """Every event of ``stage`` for model ``name``, oldest first."""
    listed = _git("tag", "--list", f"{name}#{stage}#*", f"{name}#{stage}!#*", cwd=cwd)
    if listed.returncode != 0:
        raise UserError(f"git tag failed: {listed.stderr.strip()} (run this in the repository)")
    events = [parse_stage_tag(tag) for tag in listed.stdout.split() if STAGE_TAG.match(tag)]
    return sorted(events, key=lambda event: event.number)


def holder(name: str, stage: str, before: int | None = None, cwd: Path | None = None) -> str | None:
    """The tag of the version that holds ``stage`` (before event ``before``), or None."""
    events = [e for e in stage_events(name, stage, cwd) if before is None or e.number < before]
    return events[-1].tag if events and events[-1].assigned else None


def metrics_at(ref: str, cwd: Path | None = None) -> dict[str, Any]:
    """``metrics/metrics.json`` as committed at ``ref`` (a tag, a branch, a commit)."""
    shown = _git("show", f"{ref}:{METRICS}", cwd=cwd)
    if shown.returncode != 0:
        raise UserError(f"{ref} has no {METRICS} ({shown.stderr.strip().splitlines()[-1:]})")
    return _parsed(shown.stdout, f"{METRICS} at {ref}")


def metrics_file(path: Path) -> dict[str, Any]:
    """A metrics file of the workspace (the candidate before it is tagged)."""
    if not path.is_file():
        raise UserError(f"{path} not found: run `make pipeline` first")
    return _parsed(path.read_text(), str(path))


def _parsed(text: str, where: str) -> dict[str, Any]:
    try:
        metrics = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{where} is not JSON: {error}") from None
    if not isinstance(metrics, dict):
        raise UserError(f"{where} is not a JSON object of metrics")
    return metrics
