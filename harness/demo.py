"""`make demo` (`python -m harness.demo`, from the repository's root): generate the default
project into demo/ and run its whole lifecycle.

Re-running it reuses demo/my-model (every step is idempotent), so nothing made there is lost.
`make test` needs no pipeline output (its tests train on tests/fixtures/data.csv), so it runs
beside the pipeline, the service and the monitor; the monitor runs beside the service. The
demo then takes about as long as the tests alone. Each step's wall time is printed at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import copier
import httpx
import yaml

from harness.project import TEMPLATE_ROOT, Project, free_port, start_server, tool_env

DEMO = TEMPLATE_ROOT / "demo" / "my-model"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Demo",
    "GIT_AUTHOR_EMAIL": "demo@example.com",
    "GIT_COMMITTER_NAME": "Demo",
    "GIT_COMMITTER_EMAIL": "demo@example.com",
}


TIMES: list[tuple[str, float]] = []


def banner(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


@contextmanager
def timed(label: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    TIMES.append((label, time.monotonic() - start))


def step(project: Project, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    print(f"$ {' '.join(command)}", flush=True)
    result = subprocess.run(
        list(command),
        cwd=project.path,
        env=tool_env(IDENTITY),
        text=True,
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    tail = result.stdout.strip().splitlines()[-12:]
    print("\n".join(f"    {line}" for line in tail), flush=True)
    if check and result.returncode != 0:
        sys.exit(f"demo: `{' '.join(command)}` failed (exit {result.returncode}); output above")
    return result


@dataclass
class Finished:
    returncode: int
    tail: str


class Background:
    """A command started now and waited for later; its output kept until then."""

    def __init__(self, project: Project, *command: str) -> None:
        print(f"$ {' '.join(command)}   (in the background)", flush=True)
        self.log = tempfile.TemporaryFile("w+")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            list(command),
            cwd=project.path,
            env=tool_env(IDENTITY),
            text=True,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def finish(self, label: str) -> Finished:
        self.process.wait()
        TIMES.append((label, time.monotonic() - self.started))
        self.log.seek(0)
        lines = self.log.read().strip().splitlines()[-6:]
        self.log.close()
        return Finished(self.process.returncode, "\n".join(f"    {line}" for line in lines))


def serve_and_predict(project: Project) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    print(f"$ make serve PORT={port}   (in the background)", flush=True)
    try:
        server = start_server(["make", "serve", f"PORT={port}"], project.path, port)
    except AssertionError as error:  # it exited, or was not ready in time
        sys.exit(f"demo: {error}")
    try:
        step(project, "make", "predict", f"PORT={port}")
        for path, what in [("/", "Swagger UI"), ("/docs.json", "OpenAPI spec")]:
            print(f"    {what}: {base}{path} answers {httpx.get(base + path).status_code}")
        request = json.loads((project.path / "examples" / "request.json").read_text())
        bad_record = request["records"][0] | {"age": "old"}
        bad = httpx.post(f"{base}/predict", json={"records": [bad_record]})
        error = bad.json()["detail"][0]
        where = ".".join(map(str, error["loc"]))
        print(f'    with "age": "old" it answers {bad.status_code}: {where}: {error["msg"]}')
    finally:
        server.stop()
        print("    service stopped")


START = time.monotonic()


def main() -> None:
    warnings.filterwarnings("ignore", message="Dirty template changes")
    project = generate()
    banner("make setup: git, uv environment, sample data under DVC, pre-commit hooks")
    with timed("make setup"):
        step(project, "make", "setup")
    if not _has_commits():
        with timed("first commit (pre-commit hooks)"):
            step(project, "git", "add", "--all")
            step(project, "git", "commit", "--quiet", "-m", "Initial commit from copier-mlops")

    banner("make test: in the background, beside the steps below")
    tests = Background(project, "make", "test")
    try:
        lifecycle(project)
    finally:
        tested = tests.finish("make test (beside the steps above)")
    banner("make test")
    print(tested.tail, flush=True)
    if tested.returncode != 0:
        sys.exit(f"demo: `make test` failed (exit {tested.returncode}); output above")
    where_things_are()


def generate() -> Project:
    """The default project in demo/, or the one there already (said so)."""
    if DEMO.exists():
        made_from = yaml.safe_load((DEMO / ".copier-answers.yml").read_text()).get("_commit")
        describe = ["git", "describe", "--tags", "--always", "--dirty"]
        now = subprocess.run(describe, cwd=TEMPLATE_ROOT, capture_output=True, text=True).stdout
        banner(
            f"reusing {DEMO.relative_to(TEMPLATE_ROOT)}, generated from template {made_from} "
            f"(now {now.strip()}): `make clean` first to generate it anew"
        )
    else:
        banner(f"copier copy --defaults . {DEMO.relative_to(TEMPLATE_ROOT)}")
        copier.run_copy(
            str(TEMPLATE_ROOT), DEMO, defaults=True, vcs_ref="HEAD", quiet=True, unsafe=False
        )
    return Project(DEMO, {})


def lifecycle(project: Project) -> None:
    """make pipeline, then make monitor in the background beside make serve and make predict."""
    banner("make pipeline: dvc repro (prepare -> features -> train -> evaluate)")
    with timed("make pipeline"):
        step(project, "make", "pipeline")
        step(project, "uv", "run", "dvc", "plots", "show", "--out", "dvc_plots")

    banner(
        "make monitor CURRENT=data/current/customers.csv: in the background too (the"
        " sample's current batch is drifted; `make monitor` alone checks served traffic)"
    )
    monitor = Background(project, "make", "monitor", "CURRENT=data/current/customers.csv")
    try:
        banner("make serve, then make predict")
        with timed("make serve, make predict"):
            serve_and_predict(project)
    finally:
        drift = monitor.finish("make monitor CURRENT=... (beside make serve)")
    banner("make monitor CURRENT=data/current/customers.csv")
    print(drift.tail)
    verdict = "drift detected: non-zero exit, as a CI job would see"
    print(f"    {verdict if drift.returncode else 'no drift'}")


def where_things_are() -> None:
    metrics = json.loads((DEMO / "metrics" / "metrics.json").read_text())
    banner("where things are")
    scores = json.dumps({k: round(v, 3) for k, v in metrics.items()})
    where = DEMO.relative_to(Path.cwd()) if DEMO.is_relative_to(Path.cwd()) else DEMO
    print(f"""    project        {DEMO}
    metrics        {DEMO / "metrics/metrics.json"}  {scores}
    plots          {DEMO / "dvc_plots/index.html"}  (open in a browser)
    model          {DEMO / "models/model.joblib"}  (DVC output of the train stage)
    drift report   {DEMO / "reports/drift.html"}  (and drift.json)
    next           cd {where} && make help""")
    banner("wall time of each step")
    for label, seconds in TIMES:
        print(f"    {label:<36} {seconds:6.1f} s")
    print(f"    {'total (after make install)':<36} {time.monotonic() - START:6.1f} s")


def _has_commits() -> bool:
    return (
        subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=DEMO,
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


if __name__ == "__main__":
    main()
