"""End to end: the generated service over real HTTP, under attack and under load.

- an OpenAPI fuzzer (schemathesis) drives the service's own spec: no input gets a 5xx;
- a minute at 64 concurrent clients (wrk): no error, and resident memory grows less than 10%
  from the end of the warm-up to the end;
- SIGTERM with requests in flight: they finish, the server stops listening, and it exits
  within the grace period of the container's command.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.project import (
    Project,
    Server,
    free_port,
    require,
    start_server,
)

pytestmark = pytest.mark.e2e

SIGTERM_GRACE_SECONDS = 30  # the Dockerfile's CMD has 5: test_container checks the exit


@pytest.fixture(scope="module")
def project(trained_project: Project) -> Project:
    return trained_project


def _start(project: Project, port: int, *extra: str, env: dict[str, str] | None = None) -> Server:
    """`bentoml serve` on loopback, ready; its log in the project folder."""
    package = project.answers["package_name"]
    return start_server(
        [
            *(".venv/bin/bentoml", "serve", f"{package}.serving.service:ModelService"),
            *("--host", "127.0.0.1", "--port", str(port), *extra),
        ],
        project.path,
        port,
        env=env,
        log=project.path / f"serve-{port}.log",
    )


def _stop(server: Server) -> str:
    """Its process group stopped (SIGTERM, then SIGKILL after 30 s); its log."""
    return server.stop()


@pytest.fixture(scope="module")
def served(project: Project) -> Iterator[str]:
    port = free_port()
    server = _start(project, port)
    yield f"http://127.0.0.1:{port}"
    log = _stop(server)
    assert "Traceback" not in log, log[-4000:]


def _tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) * 1024 if match else 0
    return total


def test_fuzzing_the_openapi_finds_no_server_error(served: str, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{served}/docs.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "300",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,  # its reports folder
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert re.search(r"\d+ generated, \d+ passed", result.stdout), result.stdout[-3000:]


@pytest.mark.solo  # a load test: alone on the machine, after the others
def test_a_minute_at_64_clients_has_no_error_and_no_memory_growth(
    project: Project, tmp_path: Path
) -> None:
    require(shutil.which("wrk"), "wrk is missing (make install-system installs it)")
    port = free_port()
    # The prediction log holds up to PREDICTION_LOG_FILE_ROWS rows a worker before it writes
    # a file (bounded; tens of MB a worker at the default 10,000): at 2,000 its buffer fills
    # and empties many times within the warm-up, so growth after it would be a leak.
    server = _start(project, port, env={"PREDICTION_LOG_FILE_ROWS": "2000"})
    try:
        record = json.loads(project.read("examples/request.json"))["records"][0]
        script = tmp_path / "post.lua"
        body = json.dumps({"records": [record]})
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = [[{body}]]\n"
        )
        url = f"http://127.0.0.1:{port}/predict"

        # One wrk run, memory read 30 s in (the warm-up: imports, caches, allocator pools,
        # the batcher's estimates) and at its end: the same 64 connections throughout. Two
        # runs would reconnect, and the workers' share of the connections can change between
        # them: an idle worker of the first run then warms up in the measured minute.
        command = ["wrk", "-t2", "-c64", "-d90s", "--latency", "-s", str(script), url]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as wrk:
            time.sleep(30)
            before = _tree_rss(server.process.pid)
            out, _ = wrk.communicate(timeout=120)
            after = _tree_rss(server.process.pid)
        assert wrk.returncode == 0, out
    finally:
        log = _stop(server)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    assert requests > 1000, out
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    assert after < 1.10 * before, f"resident memory {before / 1e6:.0f} MB -> {after / 1e6:.0f} MB"
    assert "Traceback" not in log, log[-4000:]


def test_sigterm_lets_requests_in_flight_finish(project: Project) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # As the container runs it (`docker stop` signals the main process only), with a grace
    # period that requests of 50,000 records each fit in on a loaded machine: they take
    # seconds, longer than the server may take to handle the signal (seen: half a second).
    records = 50_000
    server = _start(
        project,
        port,
        "--timeout-graceful-shutdown",
        str(SIGTERM_GRACE_SECONDS),
        env={"MAX_BATCH_SIZE": str(records), "MAX_BODY_BYTES": str(64 << 20)},
    )
    record = json.loads(project.read("examples/request.json"))["records"][0]
    body = json.dumps({"records": [record] * records}).encode()  # encoded once, not per thread
    answers: list[object] = []
    finished: list[float] = []

    def post() -> None:
        try:
            answer = httpx.post(
                f"{base}/predict",
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
            answers.append(answer.status_code)
        except httpx.HTTPError as error:
            answers.append(repr(error))
        finished.append(time.monotonic())

    clients = [threading.Thread(target=post) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(1)  # the requests are in flight
    # Under this load a readiness probe is answered; after SIGTERM, while the requests in
    # flight finish, it is not (no new connection is served).
    assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    probed = _until_probes_go_unanswered(f"{base}/readyz", signalled)
    for client in clients:
        client.join()
    try:
        server.process.wait(timeout=SIGTERM_GRACE_SECONDS + 10)
    finally:
        log = _stop(server)
    assert answers == [200] * len(clients), answers
    assert max(finished) > probed, "all answered before the probe: nothing was in flight"
    assert time.monotonic() - signalled < SIGTERM_GRACE_SECONDS + 10
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/readyz", timeout=2)
    assert "Traceback" not in log, log[-4000:]


def _until_probes_go_unanswered(url: str, signalled: float) -> float:
    """Once the signal is handled, probes go unanswered: when the first went unanswered."""
    while True:
        probed = time.monotonic()
        try:
            httpx.get(url, timeout=0.5)
        except httpx.HTTPError:
            return probed
        assert probed - signalled < 10, "a readiness probe was still answered 10 s after SIGTERM"
        time.sleep(0.05)


def _status_until(url: str, status: int, server: Server, timeout: float = 60) -> httpx.Response:
    """GET `url` until it answers `status` (connection refused while the server starts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.get(url, timeout=2)
            if answer.status_code == status:
                return answer
        except httpx.HTTPError:
            pass
        assert server.process.poll() is None, server.read_log()[-4000:]
        assert time.monotonic() < deadline, f"{url} never answered {status}"
        time.sleep(0.2)


# A model file whose header is the real model's (the service builds its API from it at
# once) and whose pipeline arrives only when the test creates a flag file: unpickling it
# waits for the flag, then loads the real pipeline. Written by the project's Python.
SLOW_MODEL = """
import operator, pickle, subprocess, sys
from pathlib import Path
import joblib

model, pipeline, flag, slow = map(Path, sys.argv[1:])
with model.open("rb") as file:
    pickle.load(file)  # the header: plain values
    header = model.read_bytes()[: file.tell()]
    pipeline.write_bytes(file.read())


class Call:
    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


wait = Call(subprocess.call, ["sh", "-c", f"until [ -e '{flag}' ]; do sleep 0.05; done"])
loaded = Call(joblib.load, str(pipeline))
slow.write_bytes(header + pickle.dumps(Call(operator.getitem, (wait, loaded), 1)))
"""


def test_not_ready_while_the_model_loads_nor_when_it_cannot(
    project: Project, tmp_path: Path
) -> None:
    """The model loads in the background: the server answers from the start (its API comes
    from the model's header), /readyz 503 until the model is in, then 200. Here the model's
    pipeline arrives when the test says so. A prediction waits MODEL_WAIT_SECONDS for the
    model (a worker may be a little behind the one that answered /readyz), then 503 with
    Retry-After; one that comes in time is answered. A model that cannot be loaded: /readyz,
    /livez and /predict 503 with the reason, logged in one line, no traceback."""
    request = json.loads(project.read("examples/request.json"))
    slow, flag = tmp_path / "model.joblib", tmp_path / "arrived"
    model = project.path / "models" / "model.joblib"
    paths = (model, tmp_path / "pipeline.joblib", flag, slow)
    project.run(".venv/bin/python", "-c", SLOW_MODEL, *map(str, paths))
    port = free_port()
    server = _start_unready(project, port, slow, MODEL_WAIT_SECONDS="5")
    try:
        _status_until(f"{server.url}/livez", 200, server)
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 503
        started = time.monotonic()
        early = httpx.post(f"{server.url}/predict", json=request, timeout=30)
        assert early.status_code == 503 and "still loading" in early.text, early.text
        assert early.headers["retry-after"] == "1"
        assert time.monotonic() - started >= 5, "the 503 came before MODEL_WAIT_SECONDS"
        waited: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: waited.append(
                httpx.post(f"{server.url}/predict", json=request, timeout=30)
            )
        )
        waiting.start()
        time.sleep(0.3)  # the request is in, waiting for the model
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 503
        flag.touch()  # the pipeline arrives
        waiting.join()
        assert waited[0].status_code == 200, waited[0].text
        _status_until(f"{server.url}/readyz", 200, server)
        answer = httpx.post(f"{server.url}/predict", json=request, timeout=10)
        assert answer.status_code == 200, answer.text
    finally:
        log = _stop(server)
    assert "Traceback" not in log, log[-4000:]

    broken = tmp_path / "broken.joblib"
    broken.write_text("not a model")
    server = _start_unready(project, free_port(), broken)
    try:
        _status_until(f"{server.url}/livez", 503, server)
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 503
        refused = httpx.post(f"{server.url}/predict", json=request, timeout=5)
        assert refused.status_code == 503, refused.text
        assert "is not a model written by the train stage" in refused.text, refused.text
    finally:
        log = _stop(server)
    assert "the model cannot be served: " in log and "Traceback" not in log, log[-4000:]


def _start_unready(project: Project, port: int, model: Path, **env: str) -> Server:
    """`bentoml serve` with one worker on MODEL_PATH=model, not waited for."""
    package = project.answers["package_name"]
    return Server(
        [
            *(".venv/bin/bentoml", "serve", f"{package}.serving.service:ModelService"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        project.path,
        port,
        env={"MODEL_PATH": str(model), "WORKERS": "1", "PREDICTION_LOG": "off", **env},
        log=project.path / f"serve-{port}.log",
    )
