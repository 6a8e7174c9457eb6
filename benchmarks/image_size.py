"""Image size: the generated serving image against a single-stage image with every dependency.

    python -m benchmarks.image_size                      # generate a project, build both
    python -m benchmarks.image_size --project DIR --serving-image REF   # reuse a built image

The serving image is what the generated Dockerfile builds (`make docker`: only the serving
dependencies, multi-stage). The single-stage image is the naive alternative, from the same
base: the whole project and `uv sync` of every dependency group (DVC, Evidently, pytest, ...).
Prints both sizes (uncompressed, MB = 10^6 bytes, as `podman images` shows them) and their
ratio; exits 1 when the serving image is over the limit (default 500 MB).

Builds with Podman. Without a registry (as on CI) the base is the debootstrap stand-in for
python:3.11-slim from harness/containers.py; with one, pass e.g.
--base-image python:3.11-slim-trixie.
The tests run it with --no-baseline (tests/e2e/test_container.py: the limit, on the image they
built, without a second build of several minutes); `make bench` builds both.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import yaml

from harness import containers
from harness.project import TEMPLATE_ROOT as ROOT
from harness.project import Project, bake_project, git

LIMIT_MB = 500

SINGLE_STAGE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG UV_VERSION
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PROJECT_ENVIRONMENT=/app/.venv UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system \\
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_SYSTEM_CERTS=1 UV_NO_PROGRESS=1
WORKDIR /app
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv /opt/uv/bin/uv sync --frozen --no-editable
ENV PATH=/app/.venv/bin:${PATH} MODEL_PATH=/app/models/model.joblib
CMD ["bentoml", "serve", "PACKAGE.serving.service:ModelService"]
"""


def mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def generate_project(where: Path) -> Project:
    """A default project with python_version matching the base, its pipeline run."""
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
    )
    project.run("make", "setup")
    project.run("make", "pipeline")
    return project


def build_serving(project: Project, base_image: str) -> str:
    return containers.make_docker(project, "localhost/image-size-serving", base_image)


def build_single_stage(project: Project, base_image: str, work: Path) -> str:
    dockerfile = project.read("Dockerfile")
    uv_version = re.search(r"^ARG UV_VERSION=(\S+)", dockerfile, re.MULTILINE)
    if uv_version is None:
        raise SystemExit("the project's Dockerfile has no `ARG UV_VERSION=...`")
    single = work / "Dockerfile.single-stage"
    single.write_text(SINGLE_STAGE.replace("PACKAGE", project.answers["package_name"]))
    ref = f"localhost/image-size-single-stage:{uuid.uuid4().hex[:12]}"
    containers.run(
        "podman",
        "build",
        "--format",
        "docker",
        *containers.build_flags(),
        "--file",
        str(single),
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--build-arg",
        f"UV_VERSION={uv_version.group(1)}",
        "--tag",
        ref,
        str(project.path),
        timeout=1800,
    )
    return ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="a generated project whose pipeline has run")
    parser.add_argument("--serving-image", help="its serving image, if already built")
    parser.add_argument("--base-image", default=containers.BASE_IMAGE)
    parser.add_argument("--limit-mb", type=float, default=LIMIT_MB)
    parser.add_argument("--keep", action="store_true", help="keep the images this run builds")
    parser.add_argument(
        "--no-baseline", action="store_true", help="the serving image's size and limit only"
    )
    args = parser.parse_args(argv)

    missing = [tool for tool in ("podman", "buildah") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"needs {', '.join(missing)} (.ci/deps.d/podman.sh installs them)")
    if args.base_image == containers.BASE_IMAGE:
        containers.ensure_base_image()

    built: list[str] = []
    with tempfile.TemporaryDirectory(prefix="image-size-") as tmp:
        work = Path(tmp)
        try:
            if args.project:
                answers = yaml.safe_load((args.project / ".copier-answers.yml").read_text())
                project = Project(args.project.resolve(), answers)
            else:
                print("generating a project and running its pipeline ...", flush=True)
                project = generate_project(work)
            serving = args.serving_image
            if not serving or not containers.image_exists(serving):
                print("building the serving image (make docker) ...", flush=True)
                serving = build_serving(project, args.base_image)
                built.append(serving)
            single = None
            if not args.no_baseline:
                print("building the single-stage image with every dependency group ...", flush=True)
                single = build_single_stage(project, args.base_image, work)
                built.append(single)

            base_size = containers.image_size(args.base_image)
            serving_size = containers.image_size(serving)
            single_size = containers.image_size(single) if single else None
        finally:
            if not args.keep:
                for ref in built:
                    containers.remove_image(ref)

    print()
    print(f"base image          {mb(base_size):>10}   {args.base_image}")
    for name, size in (("serving image", serving_size), ("single-stage image", single_size)):
        if size is not None:
            print(f"{name:<20}{mb(size):>10}   (+{mb(size - base_size)} over the base)")
    if single_size is not None:
        print(
            f"serving / single-stage: {serving_size / single_size:.2f} "
            f"({single_size / serving_size:.1f}x smaller)"
        )
    if serving_size > args.limit_mb * 1e6:
        print(f"FAIL: the serving image is over {args.limit_mb:.0f} MB", file=sys.stderr)
        return 1
    print(f"OK: the serving image is within {args.limit_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
