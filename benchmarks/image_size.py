"""Image size and cold start: the generated serving image against the recipe it replaced.

    python -m benchmarks.image_size                      # generate a project, build both
    python -m benchmarks.image_size --project DIR --serving-image REF   # reuse a built image
    python -m benchmarks.image_size --feast --no-baseline   # the feature_store=feast image

The serving image is what the generated Dockerfile builds (`make docker`). The baseline is
the same Dockerfile with the build stage it had before the image was slimmed (BASELINE_BUILD
below: every module compiled by uv, sources, type stubs, C sources and debug symbols kept),
so the same base, dependencies, runtime stage and model: only the recipe differs.
For each image: its size (uncompressed, MB = 10^6 bytes, as `podman images` shows it) and
its cold start, from `buildah run` of the image's own command to the first 200 from /readyz
(the model loaded), the median of --runs starts, the two images taking turns. Exits 1 when the
serving image is over the limit (400 MB), or starts slower than the baseline by more than
--tolerance (a fraction: the noise of a shared machine).

Builds with Podman, runs with Buildah. Without a registry (as on CI) the base is the
debootstrap stand-in for python:3.11-slim from harness/containers.py; with one, pass e.g.
--base-image python:3.11-slim-trixie.
With --feast the project is generated with feature_store=feast and its image has a target of
its own (FEAST_LIMIT_MB): Feast and its dependencies (pyarrow among them) come on top of the
default image; the Dockerfile leaves out what online lookups never import (mypy, which
Feast's SQLAlchemy[mypy] pulls in, and Feast's web UI).
The tests run it with --no-baseline (tests/e2e/test_container.py: the limit, on the image they
built, without a second build of minutes); `make bench` builds both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from harness import containers
from harness.project import TEMPLATE_ROOT as ROOT
from harness.project import Project, bake_project, free_port, git

LIMIT_MB = 400
FEAST_LIMIT_MB = 620
READY_TIMEOUT_S = 180

# The build stage of the generated Dockerfile before the image was slimmed (0.2.0): uv
# compiles every module (UV_COMPILE_BYTECODE), only the libraries' test suites are removed.
BASELINE_BUILD = """\
FROM ${BASE_IMAGE} AS build
HEALTHCHECK NONE
ARG UV_VERSION=UV_VERSION_HERE
RUN python3 -m venv /opt/uv \\
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
ENV UV_PROJECT_ENVIRONMENT=/app/.venv \\
    UV_PYTHON_DOWNLOADS=never \\
    UV_PYTHON_PREFERENCE=only-system \\
    UV_COMPILE_BYTECODE=1 \\
    UV_LINK_MODE=copy \\
    UV_SYSTEM_CERTS=1 \\
    UV_NO_PROGRESS=1
WORKDIR /src
COPY pyproject.toml uv.lock .python-version README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \\
    /opt/uv/bin/uv sync --frozen --no-default-groups --no-dev --no-install-project
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \\
    /opt/uv/bin/uv sync --frozen --no-default-groups --no-dev --no-editable \\
    && find /app/.venv/lib -type d -name tests -path "*/site-packages/*" -prune -exec rm -rf {} +

"""
# From the build stage's FROM line to the next stage's.
BUILD_STAGE = re.compile(
    r"^FROM \$\{BASE_IMAGE\} AS build\n.*?(?=^FROM )", re.MULTILINE | re.DOTALL
)


@dataclass
class Measured:
    name: str
    ref: str
    size: int = 0
    starts: list[float] = field(default_factory=list)

    @property
    def cold_start(self) -> float:
        return statistics.median(self.starts)


def mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def generate_project(where: Path, feature_store: str = "module") -> Project:
    """A default project (or one with ``feature_store``) with python_version matching the
    base, its pipeline run."""
    template = where / "template"
    for name in git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split(
        "\0"
    ):
        if name and (ROOT / name).is_file():
            (template / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, template / name)
    project = bake_project(
        template,
        where / "bench-model",
        project_name="bench-model",
        python_version=containers.BASE_PYTHON,
        feature_store=feature_store,
    )
    project.run("make", "setup")
    project.run("make", "pipeline")
    return project


def baseline_dockerfile(dockerfile: str) -> str:
    """The project's Dockerfile with the baseline's build stage in place of its own."""
    uv_version = re.search(r"^ARG UV_VERSION=(\S+)", dockerfile, re.MULTILINE)
    if uv_version is None or not BUILD_STAGE.search(dockerfile):
        raise SystemExit("the project's Dockerfile has no `FROM ${BASE_IMAGE} AS build` stage")
    build = BASELINE_BUILD.replace("UV_VERSION_HERE", uv_version.group(1))
    return BUILD_STAGE.sub(lambda _: build, dockerfile, count=1)


def build_baseline(project: Project, base_image: str, work: Path) -> str:
    dockerfile = work / "Dockerfile.baseline"
    dockerfile.write_text(baseline_dockerfile(project.read("Dockerfile")))
    ref = f"localhost/image-size-baseline:{uuid.uuid4().hex[:12]}"
    containers.run(
        "podman",
        "build",
        "--format",
        "docker",
        *containers.build_flags(),
        "--file",
        str(dockerfile),
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--tag",
        ref,
        str(project.path),
        timeout=1800,
    )
    return ref


def cold_start(ref: str) -> float:
    """Seconds from `buildah run` of the image's command to the first 200 from /readyz."""
    config = containers.image_config(ref)
    command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    port = free_port()
    ctr = containers.run("buildah", "from", "--pull=never", "--quiet", ref).stdout.strip()
    try:
        with tempfile.TemporaryFile() as log:
            started = time.monotonic()
            server = subprocess.Popen(
                containers.buildah_run(ctr, port, *command),
                stdout=log,
                stderr=log,
                start_new_session=True,  # Buildah, its runtime and the server: one group
            )
            try:
                _wait_ready(f"http://127.0.0.1:{port}/readyz", server, log)
                return time.monotonic() - started
            finally:
                _stop(server)
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True, check=False)


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: object) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while server.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    log.seek(0)  # type: ignore[attr-defined]
    output = log.read().decode(errors="replace")[-4000:]  # type: ignore[attr-defined]
    raise SystemExit(f"{url}: no 200 within {READY_TIMEOUT_S} s (exit {server.poll()}):\n{output}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group (the server drains within its grace), SIGKILL if it outlives it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def measure_starts(images: list[Measured], runs: int) -> None:
    """Each image started ``runs`` times, taking turns, so that load drifts hit both."""
    for run in range(runs):
        for image in images if run % 2 == 0 else images[::-1]:
            image.starts.append(cold_start(image.ref))
            print(f"  {image.name}: ready in {image.starts[-1]:.2f} s", flush=True)


def report(base: Measured, serving: Measured, baseline: Measured | None) -> None:
    print()
    print(f"{'':<16}{'size':>10}{'over base':>12}{'cold start':>12}")
    print(f"{'base image':<16}{mb(base.size):>10}{'':>24}   {base.ref}")
    for image in (serving, baseline):
        if image is None:
            continue
        start = f"{image.cold_start:.2f} s" if image.starts else "-"
        print(f"{image.name:<16}{mb(image.size):>10}{mb(image.size - base.size):>12}{start:>12}")
    if baseline is not None:
        print(
            f"serving / baseline: size {serving.size / baseline.size:.2f} "
            f"({mb(baseline.size - serving.size)} less), cold start "
            f"{serving.cold_start / baseline.cold_start:.2f} (medians of {len(serving.starts)}: "
            f"{', '.join(f'{s:.2f}' for s in serving.starts)} against "
            f"{', '.join(f'{s:.2f}' for s in baseline.starts)})"
        )


def verdict(serving: Measured, baseline: Measured | None, args: argparse.Namespace) -> int:
    failures = []
    if serving.size > args.limit_mb * 1e6:
        failures.append(f"the serving image is over {args.limit_mb:.0f} MB")
    if baseline is not None and serving.cold_start > baseline.cold_start * (1 + args.tolerance):
        failures.append(
            f"the serving image starts slower than the baseline by more than {args.tolerance:.0%}"
        )
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    if failures:
        return 1
    print(f"OK: the serving image is within {args.limit_mb:.0f} MB", end="")
    print("" if baseline is None else ", and starts no slower than the baseline")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="a generated project whose pipeline has run")
    parser.add_argument("--serving-image", help="its serving image, if already built")
    parser.add_argument("--base-image", default=containers.BASE_IMAGE)
    parser.add_argument(
        "--feast", action="store_true", help="a feature_store=feast project's image instead"
    )
    parser.add_argument("--limit-mb", type=float, help=f"{LIMIT_MB}, {FEAST_LIMIT_MB} with --feast")
    parser.add_argument("--runs", type=int, default=5, help="cold starts of each image")
    parser.add_argument("--tolerance", type=float, default=0.1, help="of the cold start")
    parser.add_argument("--keep", action="store_true", help="keep the images this run builds")
    parser.add_argument(
        "--no-baseline", action="store_true", help="the serving image's size and limit only"
    )
    args = parser.parse_args(argv)
    if args.limit_mb is None:
        args.limit_mb = FEAST_LIMIT_MB if args.feast else LIMIT_MB
    return args


def _project(args: argparse.Namespace, work: Path) -> Project:
    if args.project:
        answers = yaml.safe_load((args.project / ".copier-answers.yml").read_text())
        return Project(args.project.resolve(), answers)
    print("generating a project and running its pipeline ...", flush=True)
    return generate_project(work, "feast" if args.feast else "module")


def _images(args: argparse.Namespace, work: Path, built: list[str]) -> list[Measured]:
    """The serving image (built unless given) and, unless --no-baseline, the baseline."""
    project = _project(args, work)
    serving = Measured("serving image", args.serving_image or "")
    if not serving.ref or not containers.image_exists(serving.ref):
        print("building the serving image (make docker) ...", flush=True)
        serving.ref = containers.make_docker(
            project, "localhost/image-size-serving", args.base_image
        )
        built.append(serving.ref)
    if args.no_baseline:
        return [serving]
    print("building the baseline image (the recipe before) ...", flush=True)
    baseline = Measured("baseline image", build_baseline(project, args.base_image, work))
    built.append(baseline.ref)
    return [serving, baseline]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    missing = [tool for tool in ("podman", "buildah") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"needs {', '.join(missing)} (.ci/deps.d/podman.sh installs them)")
    if args.base_image == containers.BASE_IMAGE:
        containers.ensure_base_image()

    built: list[str] = []
    base = Measured("base image", args.base_image)
    with tempfile.TemporaryDirectory(prefix="image-size-") as tmp:
        try:
            images = _images(args, Path(tmp), built)
            if len(images) > 1:
                print(f"cold starts, {args.runs} of each image ...", flush=True)
                measure_starts(images[::-1], args.runs)
            for image in (base, *images):
                image.size = containers.image_size(image.ref)
        finally:
            if not args.keep:
                for ref in built:
                    containers.remove_image(ref)
    serving, baseline = images[0], (images[1] if len(images) > 1 else None)
    report(base, serving, baseline)
    return verdict(serving, baseline, args)


if __name__ == "__main__":
    sys.exit(main())
