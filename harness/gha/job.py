"""What a job run gives back (its result, its steps' results) and what a step handler sees of
the job it runs in; GITHUB_OUTPUT and GITHUB_ENV as a step writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.gha.runner import LocalRunner


@dataclass
class StepResult:
    name: str
    outcome: str  # success | failure | skipped
    conclusion: str
    output: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class JobResult:
    job_id: str
    result: str  # success | failure | skipped
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    workspace: Path | None = None

    def step(self, name_part: str) -> StepResult:
        for step in self.steps:
            if name_part in step.name:
                return step
        raise KeyError(f"no step named like {name_part!r} in job {self.job_id}")


class StepFailed(AssertionError):
    pass


@dataclass
class Job:
    """What a step handler sees of the job it runs in."""

    runner: LocalRunner
    job_id: str
    workspace: Path
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)


def parse_file_commands(path: Path) -> dict[str, str]:
    """name=value lines and name<<DELIMITER blocks, as GITHUB_OUTPUT and GITHUB_ENV hold them."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            index += 1
            while index < len(lines) and lines[index] != delimiter:
                block.append(lines[index])
                index += 1
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        index += 1
    return values
