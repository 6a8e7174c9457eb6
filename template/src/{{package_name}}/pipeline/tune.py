"""``make tune``: a hyperparameter search, each point a DVC experiment run by DVC's queue.

Reads the ``tune`` section of ``params.yaml`` (the search space over ``train.<model>``'s
hyperparameters, the method, the budget of runs and of parallel jobs, the metric) and
``train.model``. Queues one experiment a point (``dvc exp run --queue -S ...``), runs them
``tune.jobs`` at a time (``dvc exp run --run-all``), and logs them ranked by ``tune.metric``
with how to keep the best (``dvc exp apply``). It changes nothing in the workspace: each
experiment runs in DVC's own temporary copy of the last commit, and DVC keeps its results
(``dvc exp show``).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from scipy import stats
from sklearn.model_selection import ParameterGrid, ParameterSampler

from ..contract.schema import load_schema
from ..settings import Section, UserError, load_params, param, run_cli
from .train import MODELS

log = logging.getLogger(__name__)

# The metrics of metrics/metrics.json a search can rank by, and whether higher is better,
# by task (schema.yaml's).
METRICS = {
    "classification": {"accuracy": True, "f1": True, "roc_auc": True},
    "regression": {"rmse": False, "mae": False, "r2": True},
}
METHODS = ("grid", "random")
SCALARS = (str, int, float, bool, type(None))
RANGE = "a range {low, high, log}"


@dataclass(frozen=True)
class Plan:
    """What a search runs: its points (one experiment each), jobs at a time, ranked by metric."""

    points: list[dict[str, Any]]
    jobs: int
    metric: str
    higher_is_better: bool


def _distribution(key: str, spec: dict[str, Any]) -> Any:
    """``{low, high[, log]}``: integers drawn uniformly, floats uniformly or log-uniformly."""
    if set(spec) - {"low", "high", "log"} or not {"low", "high"} <= set(spec):
        raise UserError(f"params.yaml: tune.space.{key} must be a list of values or " + RANGE)
    low, high, log_scale = spec["low"], spec["high"], spec.get("log", False)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not low < high or not isinstance(log_scale, bool):
        raise UserError(f"params.yaml: tune.space.{key}: low < high, two numbers (log: true|false)")
    if log_scale and low <= 0:
        raise UserError(f"params.yaml: tune.space.{key}: a log range needs low > 0")
    if isinstance(low, int) and isinstance(high, int) and not log_scale:
        return stats.randint(low, high + 1)
    return stats.loguniform(low, high) if log_scale else stats.uniform(low, high - low)


def parse_space(space: Any, model: str, method: str, task: str) -> dict[str, Any]:
    """The search space: each key ``train.<model>.<hyperparameter>``, a list or (random) a range."""
    if not isinstance(space, dict) or not space:
        raise UserError(
            f"params.yaml: tune.space is empty: give train.{model}.<hyperparameter>: [values]"
        )
    estimator = MODELS[task][model]
    known = set(estimator().get_params())
    parsed: dict[str, Any] = {}
    for key, values in space.items():
        prefix, _, name = str(key).rpartition(".")
        if prefix != f"train.{model}":
            raise UserError(
                f"params.yaml: tune.space.{key} is not read by the train stage (train.model is "
                f"{model}): name train.{model}.<hyperparameter>"
            )
        if name not in known:
            raise UserError(
                f"params.yaml: tune.space.{key}: {estimator.__name__} has no parameter "
                f"'{name}' (it has: {', '.join(sorted(known))})"
            )
        if isinstance(values, dict) and method == "random":
            parsed[key] = _distribution(key, values)
        elif isinstance(values, list) and values and all(isinstance(v, SCALARS) for v in values):
            parsed[key] = list(dict.fromkeys(values))  # a value listed twice is one point
        else:
            ranges = f" or {RANGE} (method: random)" if method == "random" else ""
            raise UserError(f"params.yaml: tune.space.{key} must be a list of values{ranges}")
    return parsed


def _positive(tune: dict[str, Any], name: str) -> int:
    value = param(tune, name, int)
    if isinstance(tune[name], bool) or value != tune[name] or value < 1:
        raise UserError(f"params.yaml: tune.{name} must be a whole number of at least 1")
    return value


def points(space: dict[str, Any], method: str, max_runs: int, seed: int) -> list[dict[str, Any]]:
    """Every point of a grid (refused when more than max_runs), or max_runs points drawn."""
    if method == "grid":
        grid = list(ParameterGrid(space))
        if len(grid) > max_runs:
            raise UserError(
                f"params.yaml: the grid of tune.space has {len(grid)} points, more than "
                f"tune.max_runs ({max_runs}): raise max_runs, trim the space, or use method: random"
            )
        return grid
    lists = all(isinstance(values, list) for values in space.values())
    size = math.prod(len(values) for values in space.values()) if lists else max_runs
    drawn = ParameterSampler(space, n_iter=min(max_runs, size), random_state=seed)
    unique: dict[str, dict[str, Any]] = {}
    for point in drawn:
        point = {key: _plain(value) for key, value in point.items()}
        unique.setdefault(repr(sorted(point.items())), point)  # a range can draw a point twice
    return list(unique.values())


def _plain(value: Any) -> Any:
    # numpy scalars as Python values; drawn floats to four significant digits, readable in
    # params.yaml and in `dvc exp show`.
    value = value.item() if hasattr(value, "item") else value
    return float(f"{value:.4g}") if isinstance(value, float) else value


def plan(params: dict[str, Any], task: str) -> Plan:
    """The search the ``tune`` section of params.yaml asks for, checked, for the ``task``."""
    tune, train = params.get("tune"), params.get("train")
    if not isinstance(tune, dict) or not isinstance(train, dict):
        raise UserError("params.yaml has no 'tune' section: see the README, Experiments")
    tune, train = Section("tune", tune), Section("train", train)  # named in error messages
    model = param(train, "model", str)
    models, metrics = MODELS[task], METRICS[task]
    if model not in models:
        raise UserError(f"params.yaml: train.model '{model}' is not one of: {', '.join(models)}")
    method = tune.get("method", "grid")
    if not isinstance(method, str) or method not in METHODS:
        raise UserError(f"params.yaml: tune.method is {method!r}, not one of: grid, random")
    metric = tune.get("metric", next(iter(metrics)))
    if not isinstance(metric, str) or metric not in metrics:
        raise UserError(f"params.yaml: tune.metric is {metric!r}, not one of: {', '.join(metrics)}")
    space = parse_space(tune.get("space"), model, method, task)
    seed = param(tune, "seed", int) if "seed" in tune else 42
    chosen = points(space, method, _positive(tune, "max_runs"), seed)
    jobs = min(_positive(tune, "jobs"), len(chosen))
    return Plan(chosen, jobs, metric, metrics[metric])


def override(key: str, value: Any, existing: dict[str, Any]) -> str:
    """``dvc exp run -S``'s form of one value; ``++`` adds a key params.yaml does not have yet."""
    if value is None or isinstance(value, bool):
        text = {None: "null", True: "true", False: "false"}[value]
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        text = repr(value)
    return f"{'' if key.rpartition('.')[2] in existing else '++'}{key}={text}"


def dvc(*args: str, capture: bool = True) -> str:
    """Run a DVC command of this environment; its failure is this command's, with its message."""
    command = [sys.executable, "-m", "dvc", *args]
    result = subprocess.run(command, capture_output=capture, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip() if capture else ""
        raise RuntimeError(f"`dvc {' '.join(args)}` failed (exit {result.returncode}) {detail}")
    return result.stdout or ""


def check_ready() -> None:
    """Experiments start from the last commit, and the queue must hold no one else's runs."""
    head = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], capture_output=True)
    if head.returncode != 0:
        raise UserError("make tune runs experiments from the last commit: commit first")
    # `dvc exp run --run-all` runs the whole queue: other runs would spend this search's budget.
    waiting = [
        line.split()[0]
        for line in dvc("queue", "status").splitlines()
        if line.split()[-1:] in (["Queued"], ["Running"])
    ]
    if waiting:
        raise UserError(
            f"DVC's queue already holds {len(waiting)} experiment(s) (dvc queue status): run "
            "them (dvc exp run --run-all) or remove them (dvc queue remove --queued) first"
        )


def run(search: Plan, existing: dict[str, Any]) -> list[str]:
    """Queue one experiment a point, then run them ``jobs`` at a time; their names."""
    stamp = time.strftime("%m%d-%H%M%S")
    names = [f"tune-{stamp}-{number}" for number in range(1, len(search.points) + 1)]
    for name, point in zip(names, search.points, strict=True):
        sets = [override(key, value, existing) for key, value in point.items()]
        dvc("exp", "run", "--queue", "--name", name, *itertools.chain(*(("-S", s) for s in sets)))
        log.info("queued %s: %s", name, " ".join(sets))
    log.info("running %d experiment(s), %d at a time", len(names), search.jobs)
    dvc("exp", "run", "--run-all", "--jobs", str(search.jobs), capture=False)
    return names


def _value(row: dict[str, Any], name: str) -> Any:
    # dvc.api.exp_show names a column file:name when two files share the name.
    return next((v for k, v in row.items() if k == name or k.endswith(f":{name}")), None)


def rank(search: Plan, names: list[str]) -> int:
    """Log this search's experiments ranked by its metric, and how to keep the best."""
    import dvc.api  # the pipeline's environment has DVC; the serving image does not

    rows = dvc.api.exp_show()
    head = next((r for r in rows if r["typ"] == "baseline" and r["rev"] != "workspace"), {})
    ours = {r["Experiment"]: r for r in rows if r.get("Experiment") in names}
    failed = [name for name in names if ours.get(name, {}).get("State") != "Success"]
    unscored = [n for n in names if n not in failed and _value(ours[n], search.metric) is None]
    done = [ours[name] for name in names if name not in failed + unscored]
    done.sort(key=lambda r: _value(r, search.metric), reverse=search.higher_is_better)
    order = "higher" if search.higher_is_better else "lower"
    baseline = _value(head, search.metric)
    log.info("ranked by %s (%s is better); the last commit's: %s", search.metric, order, baseline)
    for place, row in enumerate(done, start=1):
        point = search.points[names.index(row["Experiment"])]
        settings = " ".join(f"{key.rpartition('.')[2]}={value}" for key, value in point.items())
        log.info(
            "%3d. %s  %s=%.4g  %s",
            place,
            row["Experiment"],
            search.metric,
            _value(row, search.metric),
            settings,
        )
    for name in failed:
        log.error("failed: %s (why: dvc queue logs %s)", name, name)
    for name in unscored:
        log.error("no %s in the metrics of %s (dvc exp show)", search.metric, name)
    if done:
        _advise(search, done[0], baseline)
    return 1 if failed or unscored else 0


def _advise(search: Plan, best: dict[str, Any], baseline: Any) -> None:
    name, score = best["Experiment"], _value(best, search.metric)
    better = baseline is None or (score > baseline if search.higher_is_better else score < baseline)
    if better:
        log.info("keep the best: dvc exp apply %s, then git commit -am 'Tune: %s'", name, name)
    else:
        log.info(
            "none beats the last commit's %s: keep it (or dvc exp apply %s)", search.metric, name
        )
    order = "desc" if search.higher_is_better else "asc"
    log.info(
        "every experiment: dvc exp show --only-changed --sort-by %s --sort-order %s",
        search.metric,
        order,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Search hyperparameters as DVC experiments.")
    parser.add_argument("--dry-run", action="store_true", help="only list the points")
    args = parser.parse_args(argv)
    params = load_params()
    search = plan(params, load_schema().task)
    if args.dry_run:
        for number, point in enumerate(search.points, start=1):
            log.info("%d: %s", number, " ".join(f"{k}={v}" for k, v in point.items()))
        return 0
    if search.jobs > (os.cpu_count() or 1):
        log.warning("tune.jobs %d is more than the %d CPUs here", search.jobs, os.cpu_count())
    if search.jobs > 1:  # two queue workers race on DVC's file broker (treeverse/dvc#10398)
        log.warning("tune.jobs %d: DVC's queue can hang with more than one worker", search.jobs)
    existing = params["train"].get(params["train"]["model"]) or {}
    try:
        check_ready()
        names = run(search, existing)
    except RuntimeError as error:  # a DVC command failed: its own message says why
        log.error("%s", error)
        return 1
    return rank(search, names)


if __name__ == "__main__":
    run_cli(main)
