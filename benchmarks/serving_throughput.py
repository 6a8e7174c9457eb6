"""Serving: the generated BentoML service against a plain FastAPI app over the same model.

    uv run python -m benchmarks.serving_throughput [--seconds 10] [--idle 2]   # from the root
        [--project DIR] [--env NAME=VALUE ...]

Generates the default project (or takes a trained one, --project) and serves its one model
artifact, models/model.joblib, two ways on loopback at once:

- generated: `bentoml serve <package>.serving.service:ModelService`, the project's service as it is
  (--env sets its environment, e.g. --env MAX_LATENCY_MS=100, to try settings), logging its
  predictions (PREDICTION_LOG, to a temporary folder);
- unlogged: the same service with PREDICTION_LOG=off, to price the prediction log;
- baseline: what a user would write by hand, FastAPI + uvicorn over the same code: the
  service's request model (`PredictRequest` of `Record`s), `online_features`, `predict_frame`,
  the same response model; a sync endpoint, so FastAPI runs it in its thread pool. It has as
  many worker processes as the generated service started (counted) and no fewer than the
  cores. FastAPI comes from PyPI for this run only (`uv run --with fastapi --with uvicorn`),
  the project's environment is left as it is.

Both answer one record first, and must answer it alike. Then wrk sends the same single-record
request (examples/request.json's first record) to each, one server at a time, at 1, 16 and 64
concurrent clients, --seconds each; then, --idle seconds after the 64-client level, at 1
client again: adaptive batching must not keep waiting for batches after a burst. Each server
gets a 1-client warm-up first. Prints, per level and server, requests/s, p50 and p99 latency
non-2xx answers (with socket errors), the ratio generated/baseline of requests/s, and the
CPU time the server's processes (all of them, BentoML's supervisor included) spent per
request during the level: the figure least disturbed by other work on the machine;
and the floor: the in-process time of one record through `predict_frame(bundle,
online_features([record]))`, median of many, measured in the project's Python before and
after the load (pooled), split into features, preprocessing (the pipeline's 'preprocess'
step) and model (its 'model' step); "other" is predict_frame's own work around the two.

Targets (exit 1 when one is missed):
- 64 clients: the generated service does at least 4x the baseline's requests/s, with no
  non-2xx answer and no socket error, and at least 0.9x the unlogged service's (the
  prediction log costs at most 10% of the throughput);
- 1 client, before and after the burst: the generated service's p50 is at most the floor
  + 3 ms.

Both servers run on this machine at the same time and each level runs both back to back:
absolute numbers drift with the machine's load (printed), compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from benchmarks._common import load_average, train_default_project
from harness import project as harness
from harness.project import descendants, free_port, tool_env

LEVELS = (1, 16, 64)
UV_RUN = ("uv", "run", "--no-sync")  # the project's environment as it is
LISTEN = ("--host", "127.0.0.1", "--port", "{port}")
# FastAPI and uvicorn from PyPI for this run only: the project's environment is left as it is.
FASTAPI = ("--with", "fastapi", "--with", "uvicorn", "python", "-m", "uvicorn")
THROUGHPUT_RATIO = 4.0  # at 64 clients, generated / baseline requests/s
LATENCY_MARGIN_MS = 3.0  # at 1 client, generated p50 over the in-process floor
LOGGING_RATIO = 0.9  # at 64 clients, generated (logging predictions) / unlogged requests/s

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""

BASELINE_APP = '''\
"""The baseline: FastAPI over the project's own request model, features and model."""

from typing import Any

from fastapi import FastAPI

from {package}.model import load_model, predict_frame
from {package}.pipeline.features import online_features
from {package}.serving.service import SCHEMA, Prediction, PredictRequest

BUNDLE = load_model()
ID_NAME = SCHEMA.id.name if SCHEMA.id is not None else None
app = FastAPI()


@app.get("/readyz")
def ready() -> str:
    return "ok"


@app.post("/predict")
def predict(request: PredictRequest) -> list[Prediction]:
    rows = [record.model_dump(by_alias=True) for record in request.records]
    result = predict_frame(BUNDLE, online_features(rows, SCHEMA))
    probabilities = [c for c in result.columns if c.startswith("probability_")]
    predictions = []
    for row, out in zip(rows, result.to_dict(orient="records"), strict=True):
        value: Any = out["prediction"]
        fields: dict[str, Any] = {{"prediction": value.item() if hasattr(value, "item") else value}}
        if ID_NAME is not None:
            fields["record_id"] = row.get(ID_NAME)
        if probabilities:
            fields["probabilities"] = {{
                name.removeprefix("probability_"): float(out[name]) for name in probabilities
            }}
        predictions.append(Prediction(**fields))
    return predictions
'''

# The floor, in the project's Python: one record, as the service hands it to the model.
FLOOR = """\
import json, statistics, sys, time
import sklearn
from {package}.model import _forest_mean, load_model, predict_frame
from {package}.pipeline.features import online_features
from {package}.serving.service import SCHEMA, Record

record, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
bundle = load_model()
row = Record.model_validate(record).model_dump(by_alias=True)
steps = bundle.pipeline.named_steps
preprocess = steps.get("preprocess", bundle.pipeline[:-1])
model = steps.get("model", bundle.pipeline[-1])
method = "predict" if bundle.classes is None else "predict_proba"
score = lambda x: _forest_mean(model, x, method)  # as predict_frame scores
times = {{"features": [], "preprocess": [], "model": [], "total": []}}
for i in range(repeats + 20):  # the first 20 warm up
    t0 = time.perf_counter()
    features = online_features([row], SCHEMA)
    t1 = time.perf_counter()
    with sklearn.config_context(assume_finite=True):  # as predict_frame does
        x = preprocess.transform(features[bundle.features])
        t2 = time.perf_counter()
        score(x)
        t3 = time.perf_counter()
    predict_frame(bundle, online_features([row], SCHEMA))
    t4 = time.perf_counter()
    if i >= 20:
        for name, took in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[name].append(took * 1e3)
print(json.dumps(times))
"""


@dataclass
class Load:
    """One wrk run against one server."""

    rps: float
    requests: int
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms: float = 0.0  # the server's CPU time per request


def milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[unit]


def wrk(url: str, script: Path, clients: int, seconds: float) -> Load:
    threads = min(clients, 2)  # wrk needs at least as many connections as threads
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentile = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if set(percentile) != {"50", "99"}:
        sys.exit(f"benchmark: no latencies in wrk's output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, sockets.groups())) if sockets else 0,
        p50_ms=milliseconds(percentile["50"]),
        p99_ms=milliseconds(percentile["99"]),
    )


class Server(harness.Server):
    """A server process (and its children, in their own session) on a loopback port: the
    harness's (harness/project.py: started in a session of its own, stopped with its group)."""

    def __init__(self, name: str, command: list[str], project: Path, env: dict, log: Path):
        self.name, port = name, free_port()
        command = [part.replace("{port}", str(port)) for part in command]
        super().__init__(command, project, port, env, log)

    def wait_ready(self) -> None:  # type: ignore[override]
        super().wait_ready(timeout=180)

    def descendants(self) -> dict[int, str]:
        """Every process below this one (BentoML's workers start their own sessions): pid,
        command line."""
        return descendants(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of this server's processes so far."""
        total = 0
        for pid in (self.process.pid, *self.descendants()):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def load(self, script: Path, clients: int, seconds: float) -> Load:
        """wrk against /predict, with the CPU the server spent meanwhile."""
        before = self.cpu_seconds()
        result = wrk(f"{self.url}/predict", script, clients, seconds)
        result.cpu_ms = (self.cpu_seconds() - before) * 1e3 / max(result.requests, 1)
        return result


def floor(project: Path, package: str, record: dict, env: dict, repeats: int) -> dict:
    """Milliseconds per one-record prediction in process, each part (lists of samples)."""
    result = subprocess.run(
        [
            "uv",
            "run",
            "--no-sync",
            "python",
            "-c",
            FLOOR.format(package=package),
            json.dumps(record),
            str(repeats),
        ],
        cwd=project,
        env=tool_env(env),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"benchmark: the in-process measurement failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="per level and server")
    parser.add_argument("--idle", type=float, default=2, help="pause after the burst, seconds")
    parser.add_argument("--repeats", type=int, default=300, help="in-process predictions")
    parser.add_argument("--project", type=Path, help="a trained project (default: generate)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="for the service"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if not shutil.which("wrk"):
        sys.exit("benchmark: wrk is not installed (make install-system)")
    service_env = dict(item.split("=", 1) for item in args.env)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        project = args.project.resolve() if args.project else train_default_project(tmp)
        package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
        model = project / "models" / "model.joblib"
        if not model.exists():
            sys.exit(f"benchmark: no {model}: run `make pipeline` in the project first")
        env = {"MODEL_PATH": str(model)}
        record = json.loads((project / "examples" / "request.json").read_text())["records"][0]
        body = json.dumps({"records": [record]})
        script = tmp / "post.lua"
        script.write_text(LUA.format(body=body))
        (tmp / "baseline_app.py").write_text(BASELINE_APP.format(package=package))
        print(f"project: {project} (package {package}); model: {model}")
        print(f"machine: {os.cpu_count()} cores, {load_average()}", flush=True)

        service = [*UV_RUN, "bentoml", "serve", f"{package}.serving.service:ModelService", *LISTEN]
        logged = {"PREDICTION_LOG": str(tmp / "predictions")}
        generated = Server(
            "generated", service, project, {**env, **logged, **service_env}, tmp / "generated.log"
        )
        unlogged = Server(
            "unlogged",
            service,
            project,
            {**env, **service_env, "PREDICTION_LOG": "off"},
            tmp / "unlogged.log",
        )
        servers = [generated, unlogged]
        try:
            generated.wait_ready()
            unlogged.wait_ready()
            time.sleep(2)  # every worker up, not only the first to answer
            start_baseline(servers, project, env, tmp, args.env)
            same_answers(servers, body)
            floors, results = load_levels(servers, script, project, package, record, env, args)
        finally:
            for server in servers:
                server.stop()

    return report(floors, results, args)


def start_baseline(
    servers: list[Server], project: Path, env: dict[str, str], tmp: Path, service_env: list[str]
) -> None:
    """FastAPI + uvicorn, first in `servers` (which are stopped whatever happens), with as many
    workers as the generated service started, and no fewer than the cores."""
    generated = next(server for server in servers if server.name == "generated")
    workers = sum(
        "_bentoml_impl.worker.service" in command for command in generated.descendants().values()
    )
    baseline_workers = max(workers, os.cpu_count() or 1)
    baseline = Server(
        "baseline",
        [
            *UV_RUN,
            *FASTAPI,
            "baseline_app:app",
            "--app-dir",
            str(tmp),
            *LISTEN,
            "--workers",
            str(baseline_workers),
        ],
        project,
        env,
        tmp / "baseline.log",
    )
    servers.insert(0, baseline)
    baseline.wait_ready()
    time.sleep(2)
    print(
        f"generated: bentoml serve, {workers} worker process(es)"
        + (f", {' '.join(service_env)}" if service_env else "")
        + f"; baseline: FastAPI + uvicorn, {baseline_workers} worker processes"
    )


def same_answers(servers: list[Server], body: str) -> None:
    """Each server answers the one record, and alike."""
    answers = [
        httpx.post(
            f"{s.url}/predict",
            content=body,
            timeout=30,
            headers={"Content-Type": "application/json"},
        )
        for s in servers
    ]
    for server, answer in zip(servers, answers, strict=True):
        if answer.status_code != 200:
            sys.exit(f"benchmark: {server.name} answered {answer.status_code}: {answer.text}")
        if answer.json() != answers[0].json():
            sys.exit(f"benchmark: the servers disagree: {answers[0].text} {answer.text}")


def load_levels(
    servers: list[Server],
    script: Path,
    project: Path,
    package: str,
    record: dict,
    env: dict[str, str],
    args: argparse.Namespace,
) -> tuple[dict[str, dict], dict[tuple[str, str], Load]]:
    """A warm-up, the floor, each level on each server, the idle pause, 1 client again, and
    the floor again."""
    for server in servers:  # warm-up, not reported
        server.load(script, 1, 3)
    floors = {"before": floor(project, package, record, env, args.repeats)}
    results: dict[tuple[str, str], Load] = {}
    for clients in LEVELS:
        for server in servers:
            results[str(clients), server.name] = server.load(script, clients, args.seconds)
    time.sleep(args.idle)
    # The generated service first: right after its burst (the unlogged one's is older).
    for server in sorted(servers, key=lambda server: server.name != "generated"):
        results["1 after", server.name] = server.load(script, 1, args.seconds)
    floors["after"] = floor(project, package, record, env, args.repeats)
    return floors, results


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def report(
    floors: dict[str, dict], results: dict[tuple[str, str], Load], args: argparse.Namespace
) -> int:
    """Print the table and the targets; 1 when a target is missed."""
    print()
    total = print_floors(floors)
    print_table(results, args)
    checks = targets(results, total)
    for text, passed in checks:
        print(f"{'met   ' if passed else 'MISSED'}  {text}")
    return 0 if all(passed for _, passed in checks) else 1


def print_floors(floors: dict[str, dict]) -> dict[str, float]:
    """The in-process time of one record, before and after the load; its totals."""
    total = {}
    for when, samples in floors.items():
        parts = {name: median(values) for name, values in samples.items()}
        other = parts["total"] - parts["features"] - parts["preprocess"] - parts["model"]
        total[when] = parts["total"]
        print(
            f"in process, one record, {when} the load (median of {len(samples['total'])}):"
            f" {parts['total']:.2f} ms = features {parts['features']:.2f} + preprocessing"
            f" {parts['preprocess']:.2f} + model {parts['model']:.2f} + other {other:.2f}"
        )
    return total


def print_table(results: dict[tuple[str, str], Load], args: argparse.Namespace) -> None:
    print(
        f"\n{'clients':>8}  {'server':9}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>8}"
        f"  {'CPU ms/req':>10}  {'non-2xx/requests':>17}  generated/baseline, /unlogged"
    )
    for level in ("1", "16", "64", "1 after"):
        for name in ("baseline", "unlogged", "generated"):
            r = results[level, name]
            errors = f"{r.non_2xx}/{r.requests}" + (
                f" +{r.socket_errors} socket errors" if r.socket_errors else ""
            )
            ratios = ""
            if name == "generated":
                ratios = (
                    f"{r.rps / results[level, 'baseline'].rps:.2f}x,"
                    f" {r.rps / results[level, 'unlogged'].rps:.2f}x"
                )
            print(
                f"{level:>8}  {name:9}  {r.rps:8.1f}  {r.p50_ms:7.2f}  {r.p99_ms:8.2f}"
                f"  {r.cpu_ms:10.2f}  {errors:>17}  {ratios}"
            )
    print(
        f"(wrk, {args.seconds:g} s a level; '1 after': {args.idle:g} s after the 64-client"
        f" level; {load_average()})\n"
    )


def targets(
    results: dict[tuple[str, str], Load], total: dict[str, float]
) -> list[tuple[str, bool]]:
    burst, base = results["64", "generated"], results["64", "baseline"]
    quiet = results["64", "unlogged"]
    checks = [
        (
            f"64 clients: generated (logging) {burst.rps:.0f} req/s >= {LOGGING_RATIO:g}x"
            f" unlogged {quiet.rps:.0f} ({burst.rps / quiet.rps:.2f}x; CPU a request"
            f" {burst.cpu_ms:.2f} ms against {quiet.cpu_ms:.2f})",
            burst.rps >= LOGGING_RATIO * quiet.rps,
        ),
        (
            f"64 clients: generated {burst.rps:.0f} req/s >= {THROUGHPUT_RATIO:g}x baseline"
            f" {base.rps:.0f} ({burst.rps / base.rps:.2f}x)",
            burst.rps >= THROUGHPUT_RATIO * base.rps,
        ),
        (
            f"64 clients: generated non-2xx {burst.non_2xx}, socket errors {burst.socket_errors}",
            burst.non_2xx == 0 and burst.socket_errors == 0,
        ),
    ]
    for level, when in (("1", "before"), ("1 after", "after")):
        p50, limit = results[level, "generated"].p50_ms, total[when] + LATENCY_MARGIN_MS
        checks.append(
            (
                f"1 client {when} the burst: generated p50 {p50:.2f} ms <= in-process"
                f" {total[when]:.2f} + {LATENCY_MARGIN_MS:g} ms = {limit:.2f} ms",
                p50 <= limit,
            )
        )
    return checks


if __name__ == "__main__":
    sys.exit(main())
