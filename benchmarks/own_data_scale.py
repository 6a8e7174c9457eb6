"""Own data at scale: `make setup` + `make pipeline` on a 1,000,000-row, 40-column CSV.

    uv run python -m benchmarks.own_data_scale [--rows 1000000] [--model random_forest]
        [--data FILE.csv] [--keep DIR]

Generates a project from the working tree with dataset=file (task=classification, an id
column, no timestamp column), makes the table in code (seeded), and measures, each in a
fresh process tree:

- baseline: `pd.read_csv(FILE)` in the project's Python (the least any stage that reads the
  file must cost);
- `make setup`: git init, uv sync, adoption of the file (read, schema inference, validation,
  copy, dvc add, test fixture), pre-commit hooks;
- `make pipeline`: dvc repro (prepare -> features -> train -> evaluate), dvc metrics show.

uv's install is not measured: the project's environment is synced once before the clock
starts, so setup's own `uv sync` only checks it (its time is in setup's breakdown).

The table: 1 string id column, 20 float and 10 integer columns (13 of them with 1-10 %
missing), 8 string categorical columns of 3 to 50 categories (2 with missing values) and a
binary 0/1 target (~25 % positive; a noisy logistic function of some columns, so there is
something to learn). Classification because it is the template's default answer, the
commonest tabular task, and the heavier path here: a stratified split, the leak check (a
one-column model per feature column, on a 30,000-row sample), and probabilities plus a ROC
curve in evaluate.

Memory is the peak resident set of the whole process tree (make, bash, uv, dvc and the
stage's Python), sampled from /proc every 0.1 s: the sum of VmRSS over every process in the
tree's session or below its root. A page shared by two processes (libraries, copy-on-write
after fork) is counted twice, so the sum overstates what the tree needs: the limit is checked
against this conservative figure. Also shown: the largest single process (wait4's ru_maxrss,
exact, not sampled; the tree's peak is at least that). Time is wall-clock, with the tree's CPU
time (user + system, from wait4) beside it: on a shared, busy machine wall time inflates and
CPU time much less (the load average is printed before and after). Each phase (setup's
steps, the DVC stages) is timed from the lines the commands print, with the tree's peak in it.

Targets on the 2-core development machine: setup + pipeline under 180 s and under 3 GB
(10^9 bytes) resident; exits 1 when either is missed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.project import TEMPLATE_ROOT as ROOT
from harness.project import Project, bake_project, git, tool_env

LIMIT_SECONDS = 180.0
LIMIT_BYTES = 3e9
PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.1

# Runs in the generated project's Python (numpy, pandas and pyarrow are there, not here).
MAKE_TABLE = r"""
import sys
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

path, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
cols = {"customer_id": np.char.add("C", np.char.zfill(np.arange(1, rows + 1).astype(str), 8))}
logit = np.full(rows, -1.2)

def with_missing(values, share):
    mask = rng.random(rows) < share
    return pa.array(values, mask=mask) if share else pa.array(values)

# 20 float columns: amounts, rates, scores; a few with 1 decimal (fewer distinct values).
for i in range(20):
    kind = i % 4
    if kind == 0:
        x = np.round(rng.lognormal(3.5, 0.8, rows), 2)            # an amount
    elif kind == 1:
        x = np.round(rng.normal(50, 15, rows), 1)                 # a score
    elif kind == 2:
        x = np.round(rng.beta(2, 5, rows), 4)                     # a rate in 0..1
    else:
        x = np.round(rng.normal(0, 1, rows) * 100 + 1000, 3)      # a measurement
    if i < 6:
        logit += (x - x.mean()) / x.std() * (0.5 if i % 2 else -0.4)
    cols[f"num_{i:02d}"] = with_missing(x, (0.01, 0.03, 0.05, 0.10)[i % 4] if i % 2 else 0)

# 10 integer columns: counts, ages, months; three with missing values.
for i in range(10):
    kind = i % 3
    if kind == 0:
        x = rng.poisson(3, rows)                                  # a count
    elif kind == 1:
        x = rng.integers(18, 90, rows)                            # an age
    else:
        x = rng.integers(0, 121, rows)                            # months of tenure
    if i < 3:
        logit += (x - x.mean()) / x.std() * 0.3
    cols[f"int_{i:02d}"] = with_missing(x, 0.02 if i in (2, 5, 8) else 0)

# 8 categorical columns of 3 to 50 string categories, skewed; two with missing values.
for i, n in enumerate((3, 5, 8, 12, 20, 30, 40, 50)):
    weights = rng.dirichlet(np.full(n, 0.8))
    codes = rng.choice(n, size=rows, p=weights)
    if i < 4:
        logit += rng.normal(0, 0.4, n)[codes]
    labels = np.array([f"cat{i}_{c:02d}" for c in range(n)], dtype=object)
    cols[f"cat_{i}"] = with_missing(labels[codes], 0.04 if i in (1, 6) else 0)

logit += rng.logistic(0, 1, rows) * 0.8
cols["target"] = pa.array((logit > 0).astype(np.int64))
table = pa.table(cols)
pacsv.write_csv(table, path)
print(f"{rows} rows x {table.num_columns} columns, {int((logit > 0).sum())} positive")
"""

BASELINE = "import sys, pandas as pd; frame = pd.read_csv(sys.argv[1]); print(frame.shape)"

# Lines that start a phase, with the phase's name.
PHASES = (
    (re.compile(r"^==> git repository"), "setup: git init"),
    (re.compile(r"^==> Python environment"), "setup: uv sync (no-op)"),
    (re.compile(r"^==> data"), "setup: adopt the file (ingest)"),
    (re.compile(r"^==> pre-commit hooks"), "setup: pre-commit hooks"),
    (re.compile(r"Running stage '(\w+)'"), "pipeline: {0}"),
    (re.compile(r"run dvc metrics show"), "pipeline: dvc metrics show"),
)


@dataclass
class Run:
    label: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # user + system of the tree (wait4)
    peak_tree: int = 0  # bytes, sampled
    peak_process: int = 0  # bytes, wait4's ru_maxrss
    phases: list[list] = field(default_factory=list)  # [name, start, end, peak_tree]
    output: list[str] = field(default_factory=list)


def _stat(pid: str) -> tuple[int, int, int] | None:
    """(ppid, session, rss bytes) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[3]), int(fields[21]) * PAGE


def tree_rss(root: int) -> int:
    """Summed RSS of ``root``'s session and every process below ``root``."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(name)
            if stat:
                stats[int(name)] = stat
    inside = {pid for pid, (_, session, _) in stats.items() if session == root or pid == root}
    grew = True
    while grew:  # children that started a session of their own
        below = {pid for pid, (ppid, _, _) in stats.items() if ppid in inside} - inside
        inside |= below
        grew = bool(below)
    return sum(stats[pid][2] for pid in inside)


def measure(label: str, command: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run ``command`` as a new session; wall time, peak memory, and phases from its output."""
    run = Run(label)
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    done = threading.Event()
    current: list = ["start (make, uv run, dvc checks)", 0.0, None, 0]
    run.phases.append(current)

    def sample() -> None:
        while not done.is_set():
            rss = tree_rss(process.pid)
            run.peak_tree = max(run.peak_tree, rss)
            phase = run.phases[-1]
            phase[3] = max(phase[3], rss)
            done.wait(SAMPLE_SECONDS)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            now = time.monotonic() - start
            run.output.append(line)
            for pattern, name in PHASES:
                match = pattern.search(line)
                if match:
                    run.phases[-1][2] = now
                    run.phases.append([name.format(*match.groups()), now, None, 0])
                    break

    threads = [threading.Thread(target=sample), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    _, status, usage = os.wait4(process.pid, 0)
    run.seconds = time.monotonic() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    for thread in threads:
        thread.join()
    run.phases[-1][2] = run.seconds
    run.peak_process = usage.ru_maxrss * 1024
    run.peak_tree = max(run.peak_tree, run.peak_process)  # a peak between two samples
    run.cpu_seconds = usage.ru_utime + usage.ru_stime
    run.phases = [p for p in run.phases if p[2] - p[1] >= 0.05 or p is not run.phases[0]]
    if process.returncode != 0:
        raise SystemExit(
            f"`{' '.join(command)}` exited {process.returncode}:\n{''.join(run.output)[-6000:]}"
        )
    return run


def copy_template(where: Path) -> Path:
    """The working tree (tracked and untracked, not ignored) as a template without git."""
    template = where / "template-src"
    listed = git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    for name in listed.split("\0"):
        if name and (ROOT / name).is_file():
            (template / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, template / name)
    return template


def gb(size: float) -> str:
    return f"{size / 1e9:.2f} GB"


def report(runs: list[Run], baseline: Run) -> None:
    print()
    print(f"{'':<40}{'wall':>9}{'tree peak':>12}{'largest proc':>14}{'cpu':>9}")
    for run in (baseline, *runs):
        print(
            f"{run.label:<40}{run.seconds:>8.1f}s{gb(run.peak_tree):>12}"
            f"{gb(run.peak_process):>14}{run.cpu_seconds:>8.1f}s"
        )
        for name, begin, end, peak in run.phases if run is not baseline else ():
            print(f"  {name:<38}{end - begin:>8.1f}s{gb(peak):>12}")


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--model", default="random_forest", help="the model answer")
    parser.add_argument("--data", type=Path, help="this CSV (same columns), not a new one")
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument("--limit-seconds", type=float, default=LIMIT_SECONDS)
    parser.add_argument("--limit-gb", type=float, default=LIMIT_BYTES / 1e9)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    with tempfile.TemporaryDirectory(prefix="own-data-scale-") as tmp:
        work = args.keep.resolve() if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        csv = args.data.resolve() if args.data else work / "customers.csv"
        project = project_on_the_table(work, csv, args)
        env = tool_env({"PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1"})
        python = str(project.path / ".venv" / "bin" / "python")
        load = os.getloadavg()[0]
        print(f"load average {load:.1f} on {os.cpu_count()} cores", flush=True)
        if load > (os.cpu_count() or 1):
            print("warning: the machine is busy; wall times will be inflated", flush=True)
        print("baseline: pd.read_csv ...", flush=True)
        baseline = measure("baseline: pd.read_csv", [python, "-c", BASELINE, str(csv)], work, env)
        print("make setup ...", flush=True)
        setup = measure("make setup", ["make", "setup"], project.path, env)
        print("make pipeline ...", flush=True)
        pipeline = measure("make pipeline", ["make", "pipeline"], project.path, env)
        metrics = (project.path / "metrics" / "metrics.json").read_text()

    report([setup, pipeline], baseline)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"\nmetrics: {' '.join(metrics.split())}")
    return verdict(setup, pipeline, baseline, args)


def project_on_the_table(work: Path, csv: Path, args: argparse.Namespace) -> Project:
    """A project generated for the table (made first unless --data), its environment synced
    before the clock starts."""
    project_dir = work / "bench-own-data"
    if project_dir.exists():
        shutil.rmtree(project_dir)
    project: Project = bake_project(
        copy_template(work),
        project_dir,
        project_name="bench-own-data",
        dataset="file",
        dataset_path=str(csv),
        target_column="target",
        id_column="customer_id",
        task="classification",
        model=args.model,
    )
    started = time.monotonic()
    project.run("uv", "sync", "--quiet", timeout=900)
    print(f"uv sync before the clock (not measured): {time.monotonic() - started:.1f} s")
    python = str(project.path / ".venv" / "bin" / "python")
    if not args.data:
        started = time.monotonic()
        made = project.run(python, "-c", MAKE_TABLE, str(csv), str(args.rows))
        print(f"made {csv.name}: {made.stdout.strip()} in {time.monotonic() - started:.1f} s")
    print(f"{csv}: {csv.stat().st_size / 1e6:,.0f} MB; model: {args.model}", flush=True)
    return project


def verdict(setup: Run, pipeline: Run, baseline: Run, args: argparse.Namespace) -> int:
    """setup + pipeline against pd.read_csv, and the limits: 1 when one is exceeded."""
    total = setup.seconds + pipeline.seconds
    peak = max(setup.peak_tree, pipeline.peak_tree)
    print(
        f"setup + pipeline: {total:.1f} s, {total / baseline.seconds:.1f}x pd.read_csv's "
        f"{baseline.seconds:.1f} s; peak {gb(peak)}, {peak / baseline.peak_tree:.1f}x "
        f"pd.read_csv's {gb(baseline.peak_tree)}"
    )
    failed = []
    if total > args.limit_seconds:
        failed.append(f"setup + pipeline took {total:.0f} s (limit {args.limit_seconds:.0f} s)")
    if peak > args.limit_gb * 1e9:
        failed.append(f"peak resident memory {gb(peak)} (limit {args.limit_gb:.1f} GB)")
    for problem in failed:
        print(f"FAIL: {problem}", file=sys.stderr)
    if not failed:
        print(f"OK: within {args.limit_seconds:.0f} s and {args.limit_gb:.1f} GB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
