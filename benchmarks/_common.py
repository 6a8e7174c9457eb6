"""What the benchmarks share: a trained default project, the machine's load, sizes in MB.

Not a benchmark itself (`make bench` runs the modules whose name does not start with _).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.project import TEMPLATE_ROOT, bake_project, tool_env


def train_default_project(where: Path, template: Path = TEMPLATE_ROOT) -> Path:
    """The default project generated from ``template``'s HEAD (the working tree's changes
    included for the template's own checkout) into ``where``/my-model, after `make setup`
    and `make pipeline`."""
    project = bake_project(template, where / "my-model", vcs_ref="HEAD").path
    for command in (["make", "setup"], ["make", "pipeline"]):
        result = subprocess.run(command, cwd=project, env=tool_env(), capture_output=True)
        if result.returncode != 0:
            sys.exit(f"benchmark: `{' '.join(command)}` failed:\n{result.stderr.decode()[-4000:]}")
    return project


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def mb(size: float) -> str:
    return f"{size / 1e6:,.0f} MB"
