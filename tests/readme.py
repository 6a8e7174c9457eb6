"""The READMEs as a new user reads them: their shell commands, and a terminal to type them in.

`bash_blocks` and `commands` take the commands out of a README's ```bash blocks, in order, with
each line's comment kept apart (a comment such as "in another terminal" says how to run it).
`Shell` is one bash session, as a user's terminal: `cd`, `source .venv/bin/activate` and
exports carry over from one command to the next.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

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


def stop(pid: int, timeout: float = 30) -> None:
    """SIGTERM to a process group started by `Shell.start`, then wait for it to be gone."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    raise AssertionError(f"process group {pid} did not stop within {timeout} s of SIGTERM")
