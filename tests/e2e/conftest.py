"""The default project, set up and its pipeline run once for the whole run: the modules that
need one trained default project each take a copy (`trained_project`), instead of each paying
for `make setup` and `make pipeline`. With workers (`pytest -n 3`), the first worker to need
it makes it, under a lock, in the run's shared temporary folder; the others wait and copy it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from harness.project import Project, bake_project, copy_project


@pytest.fixture(scope="session")
def _trained_default(
    template_repo: Path, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Project:
    # Under xdist every worker has its own base folder; their parent is this run's alone.
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    folder = shared / "trained" / "my-model"
    with FileLock(str(shared / "trained.lock")):
        if (shared / "trained" / "done").exists():
            return Project(folder, yaml.safe_load((folder / ".copier-answers.yml").read_text()))
        project = bake_project(template_repo, folder)
        project.run("make", "setup", timeout=900)
        project.run("make", "pipeline", timeout=900)
        (shared / "trained" / "done").touch()
    return project


@pytest.fixture(scope="module")
def trained_project(_trained_default: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The default project after `make setup` and `make pipeline`, this module's own copy."""
    return copy_project(_trained_default, tmp_path_factory.mktemp("trained-copy"))
