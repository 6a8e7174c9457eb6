"""Batch scoring: the batch CLI against the model on the whole frame; `make monitor`, timed.

    uv run python -m benchmarks.batch_scoring [--rows 1000000] [--monitor-rows 100000]
        [--project DIR]

Generates the default project (or takes a trained one, --project) and makes, with its own
sample-data module, a file of --rows records of its input columns (id, timestamp and
features, no target: `python -m <package>.contract.sample_data FILE --rows N --no-target`, drifted
like data/current) and one of --monitor-rows. Each measurement runs in a fresh process of
the project's Python; time is wall-clock, memory the process's peak resident set (wait4's
ru_maxrss):

- baseline: the model on the whole frame in process, `predict_frame(bundle,
  compute_features(frame))`, on the file's rows already read and typed (the reading is not
  timed): the least any batch path must cost;
- batch CLI: `python -m <package>.serving.batch FILE predictions.csv` (what `make predict-batch`
  runs), start to exit: interpreter, model load, reading, validation, features, model,
  writing. Its rows/s must be at least 0.7 of the baseline's;
- where the CLI's time and memory go: its steps (`read_table`, `validate`,
  `compute_features`, `predict_frame`, writing the CSV as the CLI does) one by one in one
  process, each with its time and the peak resident set while it ran (sampled every 10 ms);
- `make monitor CURRENT=<--monitor-rows file>`: the drift report against the training data;
  drift found (the monitor exits 1) is a result, not a failure. Must take under 30 s.

Exits 1 when a target is missed. Absolute numbers drift with the machine's load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks._common import load_average, mb, train_default_project
from harness.project import tool_env

CLI_RATIO = 0.7  # batch CLI rows/s over the in-process baseline's, at least
MONITOR_SECONDS = 30.0

# The baseline, in the project's Python: the file read and typed untimed, then the model on
# the whole frame.
DIRECT = """\
import json, sys, time
from {package}.contract.tables import read_table, validate
from {package}.model import load_model, predict_frame
from {package}.pipeline.features import compute_features

bundle = load_model()
schema = bundle.contract
raw = read_table(sys.argv[1], schema)
raw = validate(raw, schema, schema.inputs, source=sys.argv[1])
t0 = time.perf_counter()
features = compute_features(raw, bundle.feature_definitions)
t1 = time.perf_counter()
predictions = predict_frame(bundle, features)
t2 = time.perf_counter()
print(json.dumps({{"rows": len(predictions), "features": t1 - t0, "model": t2 - t1}}))
"""

# The batch CLI's steps (predict_file, then main's writing), one by one, with the peak
# resident set of each, sampled by a thread.
STEPS = """\
import json, os, sys, threading, time
from pathlib import Path
start = time.perf_counter()
from {package}.contract.tables import read_table, validate
from {package}.model import load_model, predict_frame
from {package}.pipeline.features import compute_features
from {package}.serving.batch import _write

PAGE = os.sysconf("SC_PAGE_SIZE")
peak = 0
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * PAGE
def sample():
    global peak
    while True:
        peak = max(peak, rss())
        time.sleep(0.01)
threading.Thread(target=sample, daemon=True).start()
steps = []
def step(name, function):
    global peak
    peak = rss()
    t0 = time.perf_counter()
    value = function()
    steps.append((name, time.perf_counter() - t0, max(peak, rss())))
    return value

source, output = Path(sys.argv[1]), Path(sys.argv[2])
steps.append(("imports", time.perf_counter() - start, rss()))
bundle = step("load the model", load_model)
schema = bundle.contract
raw = step("read_table", lambda: read_table(source, schema))
id_column = schema.id.name if schema.id is not None and schema.id.name in raw else None
columns = (*([schema.id] if id_column else []), *schema.inputs)
raw = step("validate", lambda: validate(raw, schema, columns, source=str(source)))
features = step("compute_features", lambda: compute_features(raw, bundle.feature_definitions))
predictions = step("predict_frame", lambda: predict_frame(bundle, features))
if id_column:
    predictions.insert(0, id_column, raw[id_column])
step("write the CSV", lambda: _write(iter([predictions]), output, parquet=False))
print(json.dumps(steps))
"""


def run(command: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> dict:
    """Run to exit: wall seconds, exit code, output; exit here unless the code is in ``ok``."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    if process.returncode not in ok:
        sys.exit(
            f"benchmark: `{' '.join(command)}` exited {process.returncode}:\n"
            f"{stdout[-3000:]}\n{stderr[-3000:]}"
        )
    return {"seconds": seconds, "code": process.returncode, "stdout": stdout, "stderr": stderr}


def peak_run(command: list[str], cwd: Path) -> dict:
    """Like run, for one Python process: with its own peak resident set (wait4)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, cwd=cwd, env=tool_env(), stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        sys.exit(f"benchmark: `{' '.join(command)}` exited {process.returncode}:\n{stderr[-3000:]}")
    return {"seconds": seconds, "peak": usage.ru_maxrss * 1024, "stdout": stdout}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--monitor-rows", type=int, default=100_000)
    parser.add_argument("--project", type=Path, help="a trained project (default: generate)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        project = args.project.resolve() if args.project else train_default_project(tmp)
        answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
        package = answers["package_name"]
        if not (project / "models" / "model.joblib").exists():
            sys.exit(f"benchmark: no model in {project}: run `make pipeline` there first")
        print(f"project: {project} (package {package})")
        print(f"machine: {os.cpu_count()} cores, {load_average()}", flush=True)
        scored, current = tmp / "score.csv", tmp / "current.csv"
        make_tables(project, package, [(scored, args.rows, 11), (current, args.monitor_rows, 12)])
        figures = measure(project, package, scored, current, tmp)
    report(figures, args.rows, args.monitor_rows)
    checks = targets(figures, args.rows, args.monitor_rows)
    for text, passed in checks:
        print(f"{'met   ' if passed else 'MISSED'}  {text}")
    return 0 if all(passed for _, passed in checks) else 1


def make_tables(project: Path, package: str, tables: list[tuple[Path, int, int]]) -> None:
    """The sample's generator writes each (path, rows, seed), drifted, without the target."""
    python = str(project / ".venv" / "bin" / "python")
    for path, rows, seed in tables:
        made = run(
            [
                python,
                "-m",
                f"{package}.contract.sample_data",
                str(path),
                "--rows",
                str(rows),
                "--seed",
                str(seed),
                "--drift",
                "0.6",
                "--no-target",
            ],
            project,
        )
        print(
            f"made {path.name}: {rows:,} rows, {path.stat().st_size / 1e6:,.0f} MB"
            f" ({made['seconds']:.1f} s)",
            flush=True,
        )


def measure(project: Path, package: str, scored: Path, current: Path, tmp: Path) -> dict[str, Any]:
    """The baseline in process, the batch CLI, its steps, and make monitor."""
    python = str(project / ".venv" / "bin" / "python")
    direct = peak_run([python, "-c", DIRECT.format(package=package), str(scored)], project)
    parts = json.loads(direct["stdout"].strip().splitlines()[-1])
    cli = peak_run(
        [python, "-m", f"{package}.serving.batch", str(scored), str(tmp / "predictions.csv")],
        project,
    )
    steps = peak_run(
        [python, "-c", STEPS.format(package=package), str(scored), str(tmp / "steps.csv")],
        project,
    )
    # The monitor exits 1 when it finds drift, and make then exits 2 ("Error 1").
    monitor = run(["make", "monitor", f"CURRENT={current}"], project, ok=(0, 2))
    drift = monitor["code"] == 2
    if drift and not ("DRIFT DETECTED" in monitor["stderr"] and "Error 1" in monitor["stderr"]):
        sys.exit(f"benchmark: make monitor failed:\n{monitor['stderr'][-3000:]}")
    direct_seconds = parts["features"] + parts["model"]
    return {
        "direct": direct,
        "parts": parts,
        "direct_seconds": direct_seconds,
        "cli": cli,
        "steps": steps,
        "monitor": monitor,
        "drift": drift,
    }


def report(figures: dict[str, Any], rows: int, monitor_rows: int) -> None:
    direct, parts, cli = figures["direct"], figures["parts"], figures["cli"]
    direct_rate = rows / figures["direct_seconds"]
    cli_rate = rows / cli["seconds"]
    print(f"\nbatch scoring, {rows:,} rows ({load_average()}):")
    print(
        f"  baseline, in process: {figures['direct_seconds']:6.2f} s  {direct_rate:10,.0f} rows/s"
        f"  (features {parts['features']:.2f} s, model {parts['model']:.2f} s;"
        f" peak {mb(direct['peak'])}, the frame read before the clock starts)"
    )
    print(
        f"  batch CLI, end to end: {cli['seconds']:5.2f} s  {cli_rate:10,.0f} rows/s"
        f"  ({cli_rate / direct_rate:.2f} of the baseline; peak {mb(cli['peak'])})"
    )
    print("  the CLI's steps, one process:")
    for name, seconds, peak in json.loads(figures["steps"]["stdout"].strip().splitlines()[-1]):
        print(f"    {name:18s} {seconds:6.2f} s   peak {mb(peak)}")
    print(
        f"\nmake monitor, {monitor_rows:,} current rows: {figures['monitor']['seconds']:.1f} s"
        f" ({'drift found' if figures['drift'] else 'no drift'})\n"
    )


def targets(figures: dict[str, Any], rows: int, monitor_rows: int) -> list[tuple[str, bool]]:
    direct_rate = rows / figures["direct_seconds"]
    cli_rate = rows / figures["cli"]["seconds"]
    monitor_seconds = figures["monitor"]["seconds"]
    return [
        (
            f"batch CLI {cli_rate:,.0f} rows/s >= {CLI_RATIO:g} x baseline {direct_rate:,.0f}"
            f" ({cli_rate / direct_rate:.2f})",
            cli_rate >= CLI_RATIO * direct_rate,
        ),
        (
            f"make monitor on {monitor_rows:,} rows {monitor_seconds:.1f} s"
            f" < {MONITOR_SECONDS:g} s",
            monitor_seconds < MONITOR_SECONDS,
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
