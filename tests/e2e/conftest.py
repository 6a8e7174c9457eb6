"""The default project, set up and its pipeline run once for the whole session: the modules
that need one trained default project each take a copy (`trained_project`), instead of each
paying for `make setup` and `make pipeline`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.project import Project, bake_project, copy_project


@pytest.fixture(scope="session")
def _trained_default(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = bake_project(template_repo, tmp_path_factory.mktemp("trained") / "my-model")
    project.run("make", "setup", timeout=900)
    project.run("make", "pipeline", timeout=900)
    return project


@pytest.fixture(scope="module")
def trained_project(_trained_default: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The default project after `make setup` and `make pipeline`, this module's own copy."""
    return copy_project(_trained_default, tmp_path_factory.mktemp("trained-copy"))
