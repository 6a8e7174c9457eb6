"""The READMEs as a new user reads them: their shell commands, and a terminal to type them in.

`bash_blocks` and `commands` take the commands out of a README's ```bash blocks, in order, with
each line's comment kept apart (a comment such as "in another terminal" says how to run it).
`documents` is a generated project's README followed by the docs/ pages it links, in the order
a reader meets them.
`Shell` is one bash session, as a user's terminal: `cd`, `source .venv/bin/activate` and
exports carry over from one command to the next. `Session` types a README's commands into it
in the form the README gives for local use (tests/e2e/test_first_hour.py says which), checks
each does what its text says, and keeps the service that `make serve` started running in the
background for the commands meant for "another terminal".
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.project import stop_group, tool_env, wait_until_ready

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def section(markdown: str, heading: str) -> str:
    """The text of the `## heading...` section, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    if match is None:
        raise AssertionError(f"no section '## {heading}' in the README")
    return match.group(1)


def bash_blocks(markdown: str) -> list[str]:
    """The ```bash blocks, in order (the file trees in plain ``` blocks are not commands)."""
    return [body for language, body in FENCE.findall(markdown) if language == "bash"]


# A link to a page of docs/ (an anchor after the page's name aside).
DOC_LINK = re.compile(r"\]\((docs/[\w.-]+\.md)(?:#[^)]*)?\)")


def linked_pages(readme: str) -> list[str]:
    """The docs/ pages a README links, each once, in the order of its first link."""
    return list(dict.fromkeys(DOC_LINK.findall(readme)))


def documents(project: Path) -> list[tuple[str, str]]:
    """The README, then each docs/ page it links, in that order: (path, text) of each.

    A link to no page, or a page of docs/ the README does not link, is an error: every page a
    user can reach from the README is read, so none of its commands escapes the tests.
    """
    readme = (project / "README.md").read_text()
    pages = linked_pages(readme)
    broken = [page for page in pages if not (project / page).is_file()]
    present = sorted(path.relative_to(project).as_posix() for path in project.glob("docs/*.md"))
    unlinked = [page for page in present if page not in pages]
    if broken or unlinked:
        raise AssertionError(f"README.md links no such page {broken}; links not {unlinked}")
    return [("README.md", readme), *((page, (project / page).read_text()) for page in pages)]


@dataclass(frozen=True)
class Command:
    text: str  # as printed, without its comment
    comment: str  # the comment at the end of the line, if any

    def __str__(self) -> str:
        return self.text


def split_comment(line: str) -> tuple[str, str]:
    """`make x   # note` -> ("make x", "note"); a '#' inside quotes or a word is not a comment."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def commands(block: str) -> list[Command]:
    """One command a line; a line ending in a backslash continues on the next."""
    found: list[Command] = []
    pending = ""
    for raw in block.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1].rstrip() + " "
            continue
        text, comment = split_comment(pending + raw.strip())
        pending = ""
        if text:
            found.append(Command(" ".join(text.split()), comment))
    return found


class Shell:
    """A bash session fed one command at a time; each command's exit code and output come back.

    Each command reads /dev/null, never the session's own input, so one that would prompt
    fails instead of swallowing the commands after it.
    """

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, command: str, timeout: float = 900) -> tuple[int, str]:
        """Run ``command`` in the session; its exit code and its output (stdout and stderr)."""
        assert self.process.stdin is not None
        marker = f"__done_{uuid.uuid4().hex}__"
        self.process.stdin.write(f'{{\n{command}\n}} </dev/null 2>&1\necho "{marker} $?"\n')
        self.process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"`{command}` still running after {timeout} s:\n{''.join(output)[-6000:]}"
                ) from None
            if line is None:
                raise AssertionError(f"the shell exited during `{command}`:\n{''.join(output)}")
            if marker in line:  # after output that did not end its line, on the same line
                before, after = line.split(marker, 1)
                return int(after.split()[0]), "".join([*output, before])
            output.append(line)

    def check(self, command: str, timeout: float = 900) -> str:
        code, output = self.run(command, timeout)
        if code != 0:
            raise AssertionError(f"`{command}` exited {code}:\n{output[-8000:]}")
        return output

    def start(self, command: str, log: Path) -> int:
        """Start ``command`` in the background, in its own process group; its pid."""
        line = f"setsid bash -c {shlex.quote(command)} >{shlex.quote(str(log))} 2>&1 </dev/null"
        code, output = self.run(f"{line} & echo $!")
        assert code == 0, output
        return int(output.split()[-1])

    def env(self, name: str) -> str:
        return self.check(f'printf "%s\\n" "${{{name}:-}}"').strip()

    def cwd(self) -> Path:
        return Path(self.check("pwd").strip())

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


# Commands that cannot run here, and what runs in their place.
SKIP = {
    "make docker": "no Docker engine here: tests/e2e/test_container.py builds the image (podman)",
    "docker run": "no Docker engine here: make serve starts the same service for `make predict`",
    "kubectl ": "no Kubernetes cluster here: tests/test_deploy.py renders and validates deploy/",
    "flux ": "no Kubernetes cluster here: tests/test_deploy.py validates the Flux objects",
}
# Commands (exactly these) another test runs, whose run here would only add minutes.
COVERED = {
    "make tune": "tests/e2e/test_lifecycle.py runs a search (two points) and applies its best",
}
# Commands the README says may exit non-zero, and the codes it gives.
EXIT_CODES = {"make monitor": {0, 2}}  # drift: the monitor exits 1, so make exits 2


def no_uv_env(bin_dir: Path, **extra: str) -> dict[str, str]:
    """The user's environment: no uv or uvx on PATH, copier installed in a virtual environment."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    copier_bin = Path(sys.executable).with_name("copier")
    (bin_dir / "copier").symlink_to(copier_bin)
    env = tool_env(extra)
    keep = [
        folder
        for folder in env["PATH"].split(os.pathsep)
        if folder and not any((Path(folder) / tool).exists() for tool in ("uv", "uvx"))
    ]
    env["PATH"] = os.pathsep.join([str(bin_dir), *keep])
    assert shutil.which("uv", path=env["PATH"]) is None
    return env


class Steps:
    """Wall time of each step, printed as a table at the end."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.times: list[tuple[str, float]] = []

    def run(self, label: str, shell: Shell, command: str, timeout: float = 900) -> str:
        start = time.monotonic()
        output = shell.check(command, timeout)
        self.times.append((label, time.monotonic() - start))
        return output

    def add(self, label: str, seconds: float) -> None:
        self.times.append((label, seconds))

    def report(self) -> None:
        print(f"\n{self.title}: wall time of each step")
        for label, seconds in self.times:
            print(f"  {label:<58} {seconds:7.1f} s")


class Service:
    """The service a README starts with `make serve`, in the background of the session."""

    def __init__(self, shell: Shell, logs: Path) -> None:
        self.shell, self.logs = shell, logs
        self.pid: int | None = None
        self.model_time = 0.0
        self.port = 0

    def start(self, command: str, port: int) -> float:
        self.stop()
        started = time.monotonic()
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"serve-{port}-{int(started)}.log"
        self.pid, self.port = self.shell.start(command, log), port
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/readyz", self.pid, 180, log.read_text)
        except AssertionError as error:
            raise AssertionError(f"`{command}`: {error}") from None
        model = self.shell.cwd() / "models" / "model.joblib"
        self.model_time = model.stat().st_mtime
        return time.monotonic() - started

    def current(self) -> bool:
        """Running, and serving the model that is in the working copy now."""
        model = self.shell.cwd() / "models" / "model.joblib"
        return self.pid is not None and model.stat().st_mtime == self.model_time

    def stop(self) -> None:
        if self.pid is not None:
            pid, self.pid = self.pid, None
            if not stop_group(pid):
                raise AssertionError(
                    f"`make serve` (pid {pid}) did not stop within 30 s of SIGTERM"
                )


class Session:
    """Runs README commands in order in one shell, with the local forms described above."""

    def __init__(self, shell: Shell, service: Service, steps: Steps, **places: str) -> None:
        self.shell, self.service, self.steps = shell, service, steps
        self.places = places  # README placeholder -> what stands for it here
        self.tested_at: tuple[str, str] | None = None

    def local_form(self, text: str) -> str:
        text = text.replace("uvx copier", "copier")
        if text.startswith("copier copy "):
            text = text.replace("copier copy ", "copier copy --defaults ", 1)
        for placeholder, value in self.places.items():
            text = text.replace(placeholder, value)
        return text.replace("localhost:3000", f"localhost:{self.service_port()}")

    def service_port(self) -> int:
        return int(self.shell.env("PORT") or 3000)

    def _state(self) -> tuple[str, str]:
        head = self.shell.run("git rev-parse HEAD")[1]
        return head, self.shell.run("git status --porcelain")[1]

    def run(self, command: Command) -> str | None:
        text = self.local_form(command.text)
        why = next((why for start, why in SKIP.items() if text.startswith(start)), None)
        why = COVERED.get(text, why)
        if text == "make test" and (self.shell.cwd() / "copier.yml").is_file():
            why = "the template's own test suite, of which this test is a part"
        elif text == "make test" and self.tested_at == self._state():
            why = "ran already, on this very commit and working copy"
        if why:
            print(f"  skipped `{command.text}`: {why}")
            return None
        chain = re.fullmatch(r"(?:(.*) && )?((?:PORT=(\d+) )?make serve)", text)
        if chain:  # `make setup && ... && make serve`: serve is the terminal's last command
            if chain.group(1):
                self._check(command, chain.group(1))
            port = int(chain.group(3) or self.service_port())
            if self.service.current() and self.service.port == port:
                print(
                    f"  `{chain.group(2)}`: it serves this very model already (and holds the port)"
                )
                return None
            seconds = self.service.start(chain.group(2), port)
            self.steps.add(f"{chain.group(2)} (until /readyz answers)", seconds)
            return None
        needs_service = "another terminal" in command.comment or re.search(
            r"localhost:\d+|make predict\b", text
        )
        if needs_service and not self.service.current():
            seconds = self.service.start("make serve", self.service_port())
            self.steps.add("make serve (for the command below)", seconds)
        return self._check(command, text)

    def _check(self, command: Command, text: str) -> str:
        start = time.monotonic()
        code, output = self.shell.run(text)
        self.steps.add(text if len(text) <= 58 else text[:55] + "...", time.monotonic() - start)
        allowed = next((c for s, c in EXIT_CODES.items() if text.startswith(s)), {0})
        assert code in allowed, f"README command `{command.text}` exited {code}:\n{output[-8000:]}"
        expected = re.fullmatch(r'"(.+)"', command.comment)
        if expected:  # a comment in quotes is what the command prints
            assert expected.group(1) in output, f"`{command.text}` printed:\n{output[-4000:]}"
        if re.search(r"make predict\b|/predict", text):
            assert '"prediction"' in output, f"`{command.text}` printed:\n{output[-4000:]}"
        if "make test" in text:
            self.tested_at = self._state()
        return output
