"""A generated project as the tests see it: files to read, commands to run in it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import copier
import httpx
import pytest
import yaml

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(
            f"`git {' '.join(args)}` exited {result.returncode}\n"
            f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        )
    return result.stdout


def require(available: object, what: str) -> None:
    """Skip a test this machine cannot run (`what` says what is missing and what installs it);
    under CI=true, fail instead: a check that cannot run on CI must not pass there unseen.

    Every skip in tests/ goes through here (tests/test_checkers.py checks that).
    """
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}; under CI=true this fails instead of skipping")
    pytest.skip(what)


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for commands in a generated project: uv on PATH, no outer venv."""
    # As a user would run it: not inside our venv, nor inside our make.
    outer = {"VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    env = {k: v for k, v in os.environ.items() if k not in outer}
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    env["PATH"] = os.pathsep.join([str(Path(uv).parent), env.get("PATH", "")])
    env.setdefault("UV_NO_PROGRESS", "1")
    env.update(extra or {})
    return env


@dataclass
class Project:
    path: Path
    answers: dict[str, Any]

    def has_file(self, name: str) -> bool:
        return (self.path / name).is_file()

    def read(self, name: str) -> str:
        return (self.path / name).read_text()

    def run(
        self,
        *command: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the project; on failure, show its output in the assertion."""
        result = subprocess.run(
            list(command),
            cwd=self.path,
            env=tool_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"`{' '.join(command)}` exited {result.returncode}\n"
                f"--- stdout ---\n{result.stdout[-8000:]}\n--- stderr ---\n{result.stderr[-8000:]}"
            )
        return result

    def commit(self, message: str) -> None:
        git(self.path, "add", "--all")
        git(self.path, "commit", "--quiet", "-m", message)


def bake_project(
    template: Path, destination: Path, vcs_ref: str | None = None, **answers: str
) -> Project:
    """Generate with copier's API, as `copier copy --defaults` with these answers would."""
    copier.run_copy(
        str(template),
        destination,
        data=answers,
        defaults=True,
        unsafe=False,
        quiet=True,
        vcs_ref=vcs_ref,
    )
    recorded = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    return Project(destination, recorded)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(
    url: str, server: subprocess.Popen, timeout: float = 120, log: Callable[[], str] = str
) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise AssertionError(f"the server exited ({server.returncode}):\n{log()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} not ready within {timeout} s:\n{log()[-4000:]}")
        time.sleep(0.3)


def load_script(path: Path) -> ModuleType:
    """Import a script of the template repository (scripts/*.py) as a module, by its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
