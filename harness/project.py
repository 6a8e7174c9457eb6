"""The tests' harness: a generated project as the tests see it (files to read, commands to run
in it), and the one way each of these is done, for the tests, harness/demo.py and benchmarks/:

- `run` a command to its end and fail with its output (`Project.run` and `git` are built on it);
- `require` something this machine may lack: skip locally, fail under CI=true;
- `serving` a project (`make serve` on a free port, in a session of its own) until a block ends:
  `Server` is the process and its log, `wait_until_ready` the wait for /readyz, `stop_group`
  the stop (SIGTERM to the process group, a wait, SIGKILL after it);
- `template_at` a past commit of the template, as a repository to generate from (`archive`
  takes its files, `has_commit` says whether this clone has it).

harness/checkers.py holds the static checkers (actionlint, zizmor, ...), each called one way.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import copier
import httpx
import pytest
import yaml

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]


def run(
    *command: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 900,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end, its output captured; with ``check``, a non-zero exit fails
    with the tail of that output in the assertion."""
    args = [str(part) for part in command]
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"`{' '.join(args)}` exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-8000:]}\n--- stderr ---\n{result.stderr[-8000:]}"
        )
    return result


def git(cwd: Path, *args: str) -> str:
    return run("git", *args, cwd=cwd).stdout


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
    # PYTHONDONTWRITEBYTECODE (set by some CI images): a user's Python caches bytecode.
    outer = {
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "MAKEFLAGS",
        "MAKELEVEL",
        "MFLAGS",
        "PYTHONDONTWRITEBYTECODE",
    }
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
        return run(*command, cwd=self.path, env=tool_env(env), check=check, timeout=timeout)

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


def has_commit(ref: str, source: Path = TEMPLATE_ROOT) -> bool:
    """Whether ``source``'s history holds ``ref`` (a shallow clone may not)."""
    known = run("git", "cat-file", "-e", f"{ref}^{{commit}}", cwd=source, check=False)
    return known.returncode == 0


def archive(source: Path, ref: str, destination: Path) -> None:
    """The files of ``source`` at ``ref`` (git archive), into ``destination``."""
    tar = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=source, capture_output=True, check=True
    )
    destination.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(destination)], input=tar.stdout, check=True)


def template_at(ref: str, destination: Path, source: Path = TEMPLATE_ROOT) -> Path:
    """The template as it was at ``ref`` of ``source``'s history: its files (`archive`),
    committed alone in a new repository ``destination``, to generate from with vcs_ref="HEAD"
    (copier takes a template's files from a commit)."""
    archive(source, ref, destination)
    git(destination, "init", "--quiet", "--initial-branch=main")
    git(destination, "add", "--all")
    identity = ("-c", "user.name=copier-mlops", "-c", "user.email=copier-mlops@example.com")
    git(destination, *identity, "commit", "--quiet", "--no-verify", "-m", f"Template at {ref}")
    return destination


def copy_project(project: Project, destination: Path) -> Project:
    """A copy of a set-up project in the folder ``destination``, with what lies beside it (the
    default DVC storage, ``../my-model-dvc-storage``). Its virtual environment is not copied
    (its scripts and editable install point at the original): `make setup`, a no-op for a
    set-up project otherwise, makes one and installs the git hooks for the copy."""

    def outside_the_copy(folder: str, names: list[str]) -> list[str]:
        return [".venv"] if Path(folder) == project.path else []

    shutil.copytree(
        project.path.parent, destination, symlinks=True, ignore=outside_the_copy, dirs_exist_ok=True
    )
    copy = Project(destination / project.path.name, dict(project.answers))
    copy.run("make", "setup")
    return copy


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range. A port from bind(0) can be
    handed out again at once to any process's bind(0) (BentoML's arbiter reserves its own
    ports that way: seen taking the port a test had just picked for the server)."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chooser = random.Random()
    for _ in range(200):
        port = chooser.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port found below the ephemeral range")


def wait_until_ready(
    url: str,
    server: subprocess.Popen | int,
    timeout: float = 120,
    log: Callable[[], str] = str,
) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or times out.

    ``server`` is the process, or the pid of one this process did not start (then "exits"
    means the pid is gone).
    """
    deadline = time.monotonic() + timeout
    while True:
        status = _exit_status(server)
        if status is not None:
            raise AssertionError(f"the server exited ({status}):\n{log()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} not ready within {timeout} s:\n{log()[-4000:]}")
        time.sleep(0.3)


def _exit_status(server: subprocess.Popen | int) -> int | str | None:
    if isinstance(server, subprocess.Popen):
        return server.poll()
    try:
        os.kill(server, 0)
    except ProcessLookupError:
        return "gone"
    return None


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``, whatever its session (BentoML's workers start their own):
    pid -> command line, from /proc."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = _cmdline(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = commands.get(child, "")
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _group_alive(pgid: int, process: subprocess.Popen | None) -> bool:
    if process is not None:
        process.poll()  # reap the leader: a zombie would keep the group "alive"
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def stop_group(pid: int, timeout: float = 30, process: subprocess.Popen | None = None) -> bool:
    """Stop the process group of ``pid`` (a process started in a session of its own, and what
    it started): SIGTERM, then wait up to ``timeout`` s for every member to be gone, then
    SIGKILL. A descendant that left the group (its own session) and outlives the rest is
    killed too. ``process``, when this process started ``pid``, is reaped.

    True when SIGTERM alone stopped the group within ``timeout``.
    """
    below = descendants(pid)
    stopped = True
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    else:
        deadline = time.monotonic() + timeout
        while _group_alive(pid, process) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(pid, process):
            stopped = False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    if process is not None:
        process.wait()
    deadline = time.monotonic() + 2  # workers whose supervisor is gone: a moment to exit
    while True:
        left = []
        for child, command in below.items():
            with contextlib.suppress(OSError):
                if _cmdline(child) == command:
                    left.append(child)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for child in left:
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
    return stopped


class Server:
    """A server process started in a session (and process group) of its own, on a loopback
    port, its output appended to a log file (a pipe would fill up and block it).

    ``process`` is the Popen (send it signals, wait for it); ``log`` the file, ``read_log``
    its text. Without a ``log`` path the file is a temporary one, removed by ``stop``.
    """

    def __init__(
        self,
        command: Sequence[str],
        cwd: Path,
        port: int,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._temporary = log is None
        if log is None:
            handle, name = tempfile.mkstemp(prefix=f"serve-{port}-", suffix=".log")
            os.close(handle)
            log = Path(name)
        self.log = log
        self._final: str | None = None
        self.stopped_on_sigterm: bool | None = None
        # Appended: reading the file never moves where the server writes.
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=tool_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def read_log(self) -> str:
        if self._final is not None:
            return self._final
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120, path: str = "/readyz") -> None:
        wait_until_ready(self.url + path, self.process, timeout, log=self.read_log)

    def stop(self, timeout: float = 30) -> str:
        """Stop its process group (`stop_group`) once; its log."""
        if self.stopped_on_sigterm is None:
            self.stopped_on_sigterm = stop_group(self.process.pid, timeout, self.process)
            if self._temporary:
                self._final = self.read_log()
                self.log.unlink(missing_ok=True)
        return self.read_log()


def start_server(
    command: Sequence[str],
    cwd: Path,
    port: int,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 120,
) -> Server:
    """A `Server`, started and ready (its /readyz answered 200); stopped again if it is not."""
    server = Server(command, cwd, port, env, log)
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def serving(
    project: Project,
    command: Sequence[str] | None = None,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 120,
    check: bool = True,
) -> Iterator[Server]:
    """`make serve PORT=<port>` in the project (or ``command``, which then listens on
    ``port``), ready, until the block ends; then stopped (`Server.stop`).

    With ``check``, after a block that raised nothing: the server must have stopped on SIGTERM
    (within 30 s) and have logged no traceback.
    """
    if command is None:
        port = port or free_port()
        command = ["make", "serve", f"PORT={port}"]
    elif port is None:
        raise ValueError("a command of its own must be given the port it listens on")
    server = start_server(command, project.path, port, env, log, timeout)
    try:
        yield server
    finally:
        server.stop()
    if check:
        text = server.read_log()
        assert server.stopped_on_sigterm, (
            f"`{' '.join(command)}` did not stop within 30 s of SIGTERM:\n{text[-4000:]}"
        )
        assert "Traceback" not in text, text[-4000:]


def load_script(path: Path) -> ModuleType:
    """Import a script of the template repository (scripts/*.py) as a module, by its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# Credentials moto's S3 server accepts (any do); the region boto3 and DVC need.
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def moto_s3(log: Path) -> Iterator[str]:
    """An S3-compatible server (moto, from PyPI) on loopback until the block ends; its URL."""
    port = free_port()
    with log.open("w") as errors:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{endpoint}/moto-api/", server, timeout=60)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


# Azurite's documented development account: a public, fixed key, not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE = TEMPLATE_ROOT / ".tools" / "node" / "node_modules" / ".bin" / "azurite-blob"


def _until_listening(port: int, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise AssertionError(f"the server exited ({server.returncode}):\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on {port} after {timeout} s:\n{log.read_text()}")
        time.sleep(0.2)


@contextlib.contextmanager
def object_store(kind: str, bucket: str, folder: Path) -> Iterator[dict[str, str]]:
    """An Azure Blob Storage (Azurite, npm: .ci/deps.d/actionlint.sh) or Google Cloud Storage
    (gcp-storage-emulator, PyPI) server on loopback until the block ends; the environment that
    points adlfs or gcsfs at it. A GCS ``bucket`` is made; an Azure container is the caller's
    to make (with adlfs, which the template's environment does not have)."""
    port, log = free_port(), folder / f"{kind}.log"
    if kind == "az":
        require(AZURITE.exists(), "azurite is not installed (make install-system)")
        command = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
        command += ["--location", str(folder / "azurite"), "--skipApiVersionCheck", "--loose"]
        env = {
            "AZURE_STORAGE_CONNECTION_STRING": (
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
            )
        }
    else:
        emulator = Path(sys.executable).parent / "gcp-storage-emulator"
        command = [str(emulator), "start", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--in-memory", "--default-bucket", bucket]
        env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
    with log.open("w") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _until_listening(port, server, log)
        yield env
    finally:
        stop_group(server.pid, 10, server)  # Azurite (node) can outlive a SIGTERM
