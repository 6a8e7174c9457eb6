"""Issue 21's restructuring: the generated project before it against now, served and batch-scored.

    uv run python -m benchmarks.restructure_compare [--before 1f95687] [--seconds 10]   # root
        [--rounds 2] [--rows 200000] [--runs 3] [--before-project DIR --project DIR]

Generates the default project twice, with the same answers, and trains each (`make setup`,
`make pipeline`): at --before, the template's commit before the restructuring (default
1f95687, the flat layout, tests/e2e/test_update.py's FLAT_LAYOUT; its files taken with `git
archive` into a temporary repository, `harness.project.template_at`), and at the working tree
(`copier copy --vcs-ref HEAD`, uncommitted changes included). The same answers, sample and
seed make the same model: the two projects' raw data must have the same DVC hash, both
services must answer the same record with the same prediction and probabilities, and both
batch CLIs must write the same predictions, or the run stops. Then:

- serving: each project's own service as its `make serve` starts it (read from its Makefile:
  `bentoml serve <package>.service:ModelService` before, `<package>.serving.service:...`
  now), both running at once, each logging its predictions (PREDICTION_LOG, a temporary
  folder), as a user's would. After a 1-client warm-up of each, wrk sends examples/request.json's
  first record at 1, 16 and 64 concurrent clients, --seconds at a time: at each level the two
  services back to back, --rounds times, the order turned each time (before, now, now, before
  at 1 and 64 clients; now first at 16), so that a drift of the machine's load hits both.
  Prints, per level and side, over its rounds: requests/s and p50 (means), p99 (the
  highest), non-2xx answers (with socket errors), the CPU time the service's processes spent
  per request (the figure least disturbed by other work on the machine), and the ratio
  now/before of requests/s.
- batch: each project's batch CLI as its `make predict-batch` runs it (`python -m
  <package>.predict` before, `<package>.serving.batch` now) on one file of --rows records of
  the input columns (made by the new project's sample-data module, drifted, no target),
  --runs times each, the two in turns; wall time from start to exit (interpreter, model,
  reading, validation, features, model, writing) and the process's peak resident set (wait4).
  Prints rows/s of each side's median run, the peaks, and the ratio now/before.

Targets (exit 1 when one is missed):
- 64 clients: now's requests/s at least 0.9x before's, with no non-2xx answer and no
  socket error;
- 1 client: now's p50 at most before's + 1 ms;
- batch: now's rows/s at least 0.9x before's.

Both services run on this machine at the same time and each level runs both back to back:
absolute numbers drift with the machine's load (printed), compare within one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from benchmarks._common import load_average, mb, train_default_project
from benchmarks.batch_scoring import make_tables, peak_run
from benchmarks.serving_throughput import LEVELS, LISTEN, LUA, UV_RUN, Load, Server
from harness.project import has_commit, template_at

BEFORE = "1f95687"  # the last template commit with the flat layout (FLAT_LAYOUT)
THROUGHPUT_RATIO = 0.9  # at 64 clients, now / before requests/s, at least
LATENCY_MARGIN_MS = 1.0  # at 1 client, now's p50 over before's, at most
BATCH_RATIO = 0.9  # batch CLI rows/s, now / before, at least
SIDES = ("before", "now")
# The targets of `make serve` and `make predict-batch` in a project's Makefile.
SERVE = re.compile(r"bentoml serve \$\(PACKAGE\)\.(\S+)")
PREDICT_BATCH = re.compile(r"^predict-batch:.*\n\t.*?python -m \$\(PACKAGE\)\.(\S+)", re.MULTILINE)


@dataclass
class Side:
    """One generated project: where it is and how its service and batch CLI start."""

    name: str
    project: Path
    package: str
    service: str  # module:Service, as `bentoml serve` takes it
    batch: str  # the batch CLI's module
    batch_runs: list[dict] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, project: Path) -> Side:
        if not (project / "models" / "model.joblib").exists():
            sys.exit(f"benchmark: no model in {project}: run `make pipeline` there first")
        package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
        makefile = (project / "Makefile").read_text()
        serve, batch = SERVE.search(makefile), PREDICT_BATCH.search(makefile)
        if serve is None or batch is None:
            sys.exit(f"benchmark: {project}/Makefile has no `make serve` or `make predict-batch`")
        return cls(name, project, package, f"{package}.{serve[1]}", f"{package}.{batch[1]}")

    @property
    def python(self) -> str:
        return str(self.project / ".venv" / "bin" / "python")

    def rate(self, rows: int) -> float:
        """Rows/s of the median run."""
        return rows / statistics.median(run["seconds"] for run in self.batch_runs)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="the template's commit before")
    parser.add_argument("--seconds", type=float, default=10, help="per level and service")
    parser.add_argument("--rounds", type=int, default=2, help="of each level and service")
    parser.add_argument("--rows", type=int, default=200_000, help="records batch-scored")
    parser.add_argument("--runs", type=int, default=3, help="batch CLI runs of each side")
    parser.add_argument("--before-project", type=Path, help="a trained project at --before")
    parser.add_argument("--project", type=Path, help="a trained project of the working tree")
    args = parser.parse_args(argv)
    if (args.before_project is None) != (args.project is None):
        parser.error("--before-project and --project go together")
    if min(args.rows, args.runs, args.rounds) < 1 or args.seconds <= 0:
        parser.error("--rows, --runs, --rounds and --seconds must be positive")
    if args.before_project is None and not has_commit(args.before):
        parser.error(
            f"no commit {args.before} in this clone's history (a shallow clone: git fetch"
            " --unshallow)"
        )
    return args


def projects(args: argparse.Namespace, tmp: Path) -> tuple[Side, Side]:
    """The two trained projects: given, or generated and trained here."""
    if args.project is not None:
        return Side.of("before", args.before_project.resolve()), Side.of(
            "now", args.project.resolve()
        )
    print(f"generating and training the default project at {args.before} ...", flush=True)
    template = template_at(args.before, tmp / "template-before")
    before = train_default_project(tmp / "before", template)
    print("generating and training the default project at the working tree ...", flush=True)
    now = train_default_project(tmp / "now")
    return Side.of("before", before), Side.of("now", now)


def same_data(sides: tuple[Side, Side]) -> None:
    """The raw data under DVC of both projects has the same hashes."""
    hashes = []
    for side in sides:
        files = sorted((side.project / "data" / "raw").glob("*.dvc"))
        hashes.append({f.name: yaml.safe_load(f.read_text())["outs"][0]["md5"] for f in files})
    if not hashes[0] or hashes[0] != hashes[1]:
        sys.exit(f"benchmark: the two projects' raw data differ: {hashes[0]} {hashes[1]}")


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if not shutil.which("wrk"):
        sys.exit("benchmark: wrk is not installed (make install-system)")
    with tempfile.TemporaryDirectory(prefix="restructure-compare-") as tmp_name:
        tmp = Path(tmp_name)
        sides = projects(args, tmp)
        same_data(sides)
        for side in sides:
            print(f"{side.name}: {side.project}; serve {side.service}; batch {side.batch}")
        print(f"machine: {os.cpu_count()} cores, {load_average()}", flush=True)
        serving = serve_both(sides, tmp, args.seconds, args.rounds)
        batch_both(sides, tmp, args.rows, args.runs)
    report(sides, serving, args)
    checks = targets(sides, serving, args.rows)
    for text, passed in checks:
        print(f"{'met   ' if passed else 'MISSED'}  {text}")
    return 0 if all(passed for _, passed in checks) else 1


def serve_both(
    sides: tuple[Side, Side], tmp: Path, seconds: float, rounds: int
) -> dict[tuple, Load]:
    """Both services at once; the same answer from each, a warm-up, then each level: the two
    services back to back, ``rounds`` times, the order turned each time (ABBA for two)."""
    record = json.loads((sides[1].project / "examples" / "request.json").read_text())
    body = json.dumps({"records": record["records"][:1]})
    script = tmp / "post.lua"
    script.write_text(LUA.format(body=body))
    servers = []
    try:
        for side in sides:
            env = {
                "MODEL_PATH": str(side.project / "models" / "model.joblib"),
                "PREDICTION_LOG": str(tmp / f"predictions-{side.name}"),
            }
            command = [*UV_RUN, "bentoml", "serve", side.service, *LISTEN]
            servers.append(Server(side.name, command, side.project, env, tmp / f"{side.name}.log"))
        for server in servers:
            server.wait_ready()
        time.sleep(2)  # every worker up, not only the first to answer
        same_answers(servers, body)
        for server in servers:  # warm-up, not reported
            server.load(script, 1, 3)
        runs: dict[tuple, list[Load]] = {}
        for level, clients in enumerate(LEVELS):
            for round_ in range(rounds):
                for server in servers if (level + round_) % 2 == 0 else servers[::-1]:
                    load = server.load(script, clients, seconds)
                    runs.setdefault((clients, server.name), []).append(load)
                    print(
                        f"  {clients:>2} clients, {server.name}: {load.rps:.0f} req/s,"
                        f" p50 {load.p50_ms:.2f} ms",
                        flush=True,
                    )
        return {key: pooled(loads) for key, loads in runs.items()}
    finally:
        for server in servers:
            server.stop()


def pooled(loads: list[Load]) -> Load:
    """The rounds of one level and service as one: requests/s and p50 their means (rounds of
    equal length), p99 the highest, errors summed, CPU a request over all requests."""
    requests = sum(load.requests for load in loads)
    return Load(
        rps=statistics.mean(load.rps for load in loads),
        requests=requests,
        non_2xx=sum(load.non_2xx for load in loads),
        socket_errors=sum(load.socket_errors for load in loads),
        p50_ms=statistics.mean(load.p50_ms for load in loads),
        p99_ms=max(load.p99_ms for load in loads),
        cpu_ms=sum(load.cpu_ms * load.requests for load in loads) / max(requests, 1),
    )


def essentials(answer: httpx.Response) -> list[dict]:
    """What a prediction is, whatever else a version adds to its answer."""
    keys = ("prediction", "probabilities", "record_id")
    return [{key: item.get(key) for key in keys} for item in answer.json()]


def same_answers(servers: list[Server], body: str) -> None:
    """Each service answers the one record with 200, and both with the same prediction."""
    answers = []
    for server in servers:
        answer = httpx.post(
            f"{server.url}/predict",
            content=body,
            timeout=30,
            headers={"Content-Type": "application/json"},
        )
        if answer.status_code != 200:
            sys.exit(f"benchmark: {server.name} answered {answer.status_code}: {answer.text}")
        answers.append(answer)
    if essentials(answers[0]) != essentials(answers[1]):
        sys.exit(f"benchmark: the services disagree: {answers[0].text} {answers[1].text}")
    print(f"both services answer {json.dumps(essentials(answers[1]))}")


def batch_both(sides: tuple[Side, Side], tmp: Path, rows: int, runs: int) -> None:
    """One file of ``rows`` records, each side's batch CLI ``runs`` times in turns; the
    predictions of both must be the same."""
    table = tmp / "score.csv"
    now = sides[1]
    make_tables(now.project, now.package, [(table, rows, 11)])
    for run in range(runs):
        for side in sides if run % 2 == 0 else sides[::-1]:
            output = tmp / f"predictions-{side.name}.csv"
            command = [side.python, "-m", side.batch, str(table), str(output)]
            side.batch_runs.append(peak_run(command, side.project))
            print(f"  batch run {run + 1}, {side.name}: done", flush=True)
    same_predictions(*(tmp / f"predictions-{side.name}.csv" for side in sides))


def same_predictions(before: Path, now: Path) -> None:
    """The prediction (and probability) columns the two files share hold the same values."""
    with before.open(newline="") as old, now.open(newline="") as new:
        old_rows, new_rows = csv.DictReader(old), csv.DictReader(new)
        shared = [
            name
            for name in new_rows.fieldnames or []
            if name in (old_rows.fieldnames or [])
            and (name == "prediction" or name.startswith("probability_"))
        ]
        if "prediction" not in shared:
            sys.exit(f"benchmark: no prediction column in both {before} and {now}")
        for number, (a, b) in enumerate(zip(old_rows, new_rows, strict=True), start=1):
            if any(a[name] != b[name] for name in shared):
                sys.exit(f"benchmark: the batch CLIs disagree on row {number}: {a} {b}")


def report(sides: tuple[Side, Side], serving: dict[tuple, Load], args: argparse.Namespace) -> None:
    print(
        f"\nserving, examples/request.json's first record (wrk, {args.rounds} x {args.seconds:g} s"
        f" a level and service, pooled; {load_average()}):"
    )
    print(
        f"{'clients':>8}  {'side':6}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>8}"
        f"  {'CPU ms/req':>10}  {'non-2xx/requests':>17}  now/before"
    )
    for clients in LEVELS:
        for name in SIDES:
            r = serving[clients, name]
            errors = f"{r.non_2xx}/{r.requests}" + (
                f" +{r.socket_errors} socket errors" if r.socket_errors else ""
            )
            ratio = f"{r.rps / serving[clients, 'before'].rps:.2f}x" if name == "now" else ""
            print(
                f"{clients:>8}  {name:6}  {r.rps:8.1f}  {r.p50_ms:7.2f}  {r.p99_ms:8.2f}"
                f"  {r.cpu_ms:10.2f}  {errors:>17}  {ratio}"
            )
    print(f"\nbatch CLI, {args.rows:,} rows, {args.runs} run(s) each ({load_average()}):")
    for side in sides:
        seconds = ", ".join(f"{run['seconds']:.2f}" for run in side.batch_runs)
        peak = max(run["peak"] for run in side.batch_runs)
        print(
            f"  {side.name:6}  {side.rate(args.rows):10,.0f} rows/s (median; runs {seconds} s)"
            f"  peak {mb(peak)}  python -m {side.batch}"
        )
    print(f"  now/before: {sides[1].rate(args.rows) / sides[0].rate(args.rows):.2f}x\n")


def targets(
    sides: tuple[Side, Side], serving: dict[tuple, Load], rows: int
) -> list[tuple[str, bool]]:
    burst, old = serving[64, "now"], serving[64, "before"]
    p50, old_p50 = serving[1, "now"].p50_ms, serving[1, "before"].p50_ms
    rate, old_rate = sides[1].rate(rows), sides[0].rate(rows)
    return [
        (
            f"64 clients: now {burst.rps:.0f} req/s >= {THROUGHPUT_RATIO:g}x before"
            f" {old.rps:.0f} ({burst.rps / old.rps:.2f}x)",
            burst.rps >= THROUGHPUT_RATIO * old.rps,
        ),
        (
            f"64 clients: now non-2xx {burst.non_2xx}, socket errors {burst.socket_errors}",
            burst.non_2xx == 0 and burst.socket_errors == 0,
        ),
        (
            f"1 client: now p50 {p50:.2f} ms <= before {old_p50:.2f} + {LATENCY_MARGIN_MS:g} ms",
            p50 <= old_p50 + LATENCY_MARGIN_MS,
        ),
        (
            f"batch CLI: now {rate:,.0f} rows/s >= {BATCH_RATIO:g}x before {old_rate:,.0f}"
            f" ({rate / old_rate:.2f}x)",
            rate >= BATCH_RATIO * old_rate,
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
