"""Fixtures: a tagged git copy of the template's working tree, and `bake` to generate from it.

Generating from a temporary repository (not from this checkout) tests uncommitted changes
too, and gives `copier update` tagged versions to move between.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.project import TEMPLATE_ROOT, Project, bake_project, git


def _tracked_files() -> list[str]:
    listing = git(TEMPLATE_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [name for name in listing.split("\0") if name and (TEMPLATE_ROOT / name).exists()]


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree, committed and tagged v0.1.0 in a fresh repository."""
    repo = tmp_path_factory.mktemp("template") / "copier-mlops"
    for name in _tracked_files():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_ROOT / name, target)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "-m", "template under test")
    git(repo, "tag", "v0.1.0")
    return repo


@pytest.fixture
def bake(template_repo: Path, tmp_path: Path) -> Callable[..., Project]:
    """Generate a project from the template: ``bake(task="regression")``."""

    def _bake(**answers: str) -> Project:
        folder = answers.get("project_name", "my-model").replace(" ", "-")
        return bake_project(template_repo, tmp_path / folder, **answers)

    return _bake


@pytest.fixture(scope="session")
def baked(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Project]:
    """Like `bake`, but one render per set of answers for the whole session, shared by every
    test that asks for the same answers: for tests that only read the project."""
    cache: dict[tuple[tuple[str, str], ...], Project] = {}

    def _baked(**answers: str) -> Project:
        key = tuple(sorted(answers.items()))
        if key not in cache:
            folder = answers.get("project_name", "my-model").replace(" ", "-")
            destination = tmp_path_factory.mktemp("baked") / folder
            cache[key] = bake_project(template_repo, destination, **answers)
        return cache[key]

    return _baked


@pytest.fixture(scope="session", autouse=True)
def _git_identity() -> Iterator[None]:
    """Commits in generated projects need an identity, whatever the machine's git config."""
    names = {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    saved = {key: os.environ.get(key) for key in names}
    os.environ.update(names)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session", autouse=True)
def _nested_pytest_temp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The generated projects' own pytest runs keep their temporary folders under this run's
    (PYTEST_DEBUG_TEMPROOT, which pytest reads). In the shared /tmp/pytest-of-<user> each of
    them took a number, so this run's own folders fell out of the three pytest keeps: the
    solo phase's end then deleted the e2e phase's (gigabytes of generated projects, about 80
    s of a fresh machine's `make test` spent removing files)."""
    saved = os.environ.get("PYTEST_DEBUG_TEMPROOT")
    nested = tmp_path_factory.getbasetemp() / "nested-pytest"
    nested.mkdir(exist_ok=True)
    os.environ["PYTEST_DEBUG_TEMPROOT"] = str(nested)
    yield
    if saved is None:
        os.environ.pop("PYTEST_DEBUG_TEMPROOT", None)
    else:
        os.environ["PYTEST_DEBUG_TEMPROOT"] = saved


# The end-to-end modules, longest first (`make test` lists the slowest tests). With workers
# (`make test`: `--dist loadfile`, a module's tests on one worker, so a module-scoped
# fixture such as a set-up project or a built image is made once), the longest start first
# and the fast modules fill the gaps.
LONGEST_FIRST = (
    "test_ci_steps",
    "test_update",
    "test_first_hour",
    "test_lifecycle",
    "test_own_data",
    "test_feast",
    "test_real_tables",
    "test_prediction_log",
    "test_container",
    "test_serving",
    "test_s3_remote",
)


# End-to-end modules with no module-scoped fixture, whose tests are long and independent: each
# test is a work unit of its own, so that a module's three journeys do not all wait for one
# worker (the rest stay grouped by file, their set-up made once).
SPLIT_MODULES = ("tests/e2e/test_lifecycle.py", "tests/e2e/test_first_hour.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadfile`, but the tests of SPLIT_MODULES scheduled one by one."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path in SPLIT_MODULES else path

    return _Scheduling(config, log)  # type: ignore[arg-type]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a worker of `pytest -n N`: the longest work first
        items.sort(key=_longest_first)
    else:
        # Fast rendering tests first: a broken render fails in seconds, not after the e2e runs.
        items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def _longest_first(item: pytest.Item) -> int:
    module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
    if module in LONGEST_FIRST:
        return LONGEST_FIRST.index(module)
    return len(LONGEST_FIRST) + (item.get_closest_marker("e2e") is None)
