"""Fast checks of the generated Dockerfile, .dockerignore and `make docker` (no build here:
tests/e2e/test_container.py builds and runs the image)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import image_size
from harness import checkers
from harness.answers import choices, matrix, questions
from harness.dockerfile import (
    docker_string,
    dockerfile_instructions,
    dockerfile_stages,
    image_labels,
)
from harness.project import Project

VERSIONS = choices(questions()["python_version"])


@pytest.mark.parametrize("version", VERSIONS)
def test_dockerfile_renders_for_each_python(baked: Callable[..., Project], version: str) -> None:
    # A combination of the rendering tests with this version: their render is reused.
    default = str(questions()["python_version"]["default"])
    project = baked(**next(a for a in matrix() if a.get("python_version", default) == version))
    dockerfile = project.read("Dockerfile")
    package = project.answers["package_name"]
    instructions = dockerfile_instructions(dockerfile)

    # BASE_IMAGE defaults to a stage that is the official slim image: a FROM line that
    # Dependabot's Docker updates can read (they do not read ARG values).
    assert instructions[0] == ("ARG", "BASE_IMAGE=python-slim")
    stages = dockerfile_stages(dockerfile)
    assert len(stages) == 3, "the base, a build stage and a runtime stage"
    base, build, runtime = stages
    assert base == [
        ("FROM", f"python:{version}-slim-trixie AS python-slim"),
        ("HEALTHCHECK", "NONE"),
    ]
    assert build[0] == ("FROM", "${BASE_IMAGE} AS build")
    assert runtime[0] == ("FROM", "${BASE_IMAGE} AS runtime")
    build_runs = " ".join(args for name, args in build if name == "RUN")
    assert "uv sync --frozen --no-default-groups --no-dev" in build_runs
    assert "--no-editable" in build_runs

    final = dict(runtime)  # the last of each instruction wins, as in Docker
    user = final["USER"]
    assert re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", user), (
        f"USER must be numeric, not root: {user}"
    )
    assert final["HEALTHCHECK"].split("CMD", 1)[0].strip().startswith("--interval")
    healthcheck = json.loads(final["HEALTHCHECK"].split("CMD", 1)[1])
    assert healthcheck[0] == "python" and "/readyz" in healthcheck[-1], "no curl in slim images"
    command = json.loads(final["CMD"])  # exec form: a JSON array, no shell in between
    assert command[:3] == ["bentoml", "serve", f"{package}.serving.service:ModelService"]
    assert int(command[command.index("--timeout-graceful-shutdown") + 1]) < 10
    copied = [args for name, args in runtime if name == "COPY"]
    assert any(args.startswith("--from=build /app/.venv") for args in copied)
    assert "models/model.joblib /app/models/model.joblib" in copied
    labels = image_labels(dockerfile)
    for key in ["title", "description", "version", "revision", "created", "licenses", "authors"]:
        assert f"org.opencontainers.image.{key}" in labels, key
    assert docker_string(labels["org.opencontainers.image.authors"]) == (
        f"{project.answers['author_name']} <{project.answers['author_email']}>"
    )


def test_dockerignore_keeps_the_context_to_what_the_image_needs(
    baked: Callable[..., Project],
) -> None:
    project = baked()
    patterns = [
        line.strip()
        for line in project.read(".dockerignore").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: everything else (data, .dvc, .git, tests) stays out"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "uv.lock",
        ".python-version",
        "README.md",
        "src",
        "models/model.joblib",
        "schema.yaml",
    }
    sources = [
        args.split()[:-1]
        for name, args in dockerfile_instructions(project.read("Dockerfile"))
        if name == "COPY" and not args.startswith("--from")
    ]
    for source in (s for group in sources for s in group):
        assert source.rstrip("/") in allowed, f"COPY {source} is not in the build context"


@pytest.mark.parametrize(
    "answers",
    [
        {},
        {
            "python_version": "3.13",
            "license": "Proprietary",
            "description": ' Say "hi" for $5 # to Zoë 😀: C:\\new\\',
            "author_name": "O'Brien <\\>",
        },
    ],
)
def test_dockerfile_passes_hadolint_with_healthcheck_required(
    baked: Callable[..., Project], answers: dict[str, str], tmp_path: Path
) -> None:
    project = baked(**answers)
    description = image_labels(project.read("Dockerfile"))["org.opencontainers.image.description"]
    assert docker_string(description) == project.answers["description"]
    # The project's .hadolint.yaml makes every finding fail (but DL3008: apt versions vary
    # with the base) and DL3057 (no HEALTHCHECK, off in hadolint by default) an error; the
    # flags say it again, whatever the file says.
    strict = [
        "--error",
        "DL3057",
        "--failure-threshold",
        "style",
        "--disable-ignore-pragma",
        "--format",
        "json",
    ]
    result = checkers.hadolint(*strict, "Dockerfile", cwd=project.path)
    assert result.returncode == 0 and json.loads(result.stdout or "[]") == [], (
        result.stdout + result.stderr
    )
    with_config = checkers.hadolint("Dockerfile", cwd=project.path)
    assert with_config.returncode == 0, with_config.stdout + with_config.stderr

    # The check is live: the same Dockerfile without its HEALTHCHECK fails, with the flags
    # and with the project's configuration alone.
    lines = project.read("Dockerfile").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK --"))
    without = lines[:start] + lines[start + 2 :]
    broken_file = tmp_path / "Dockerfile.nohealthcheck"  # beside, not in, the shared render
    broken_file.write_text("".join(without))
    for flags in (strict, []):
        broken = checkers.hadolint(*flags, str(broken_file), cwd=project.path)
        assert broken.returncode != 0 and "DL3057" in broken.stdout, broken.stdout + broken.stderr


def _make_docker_dry_run(project: Project, engine: str, *args: str) -> str:
    dry = project.run("make", "--dry-run", "docker", f"CONTAINER_ENGINE={engine}", *args).stdout
    command = " ".join(dry.replace("\\\n", " ").split())
    return command[command.index(f"{engine} build") :]


def test_make_docker_builds_the_image_with_labels(bake) -> None:
    project: Project = bake(project_name="Fraud Detector", python_version="3.12")
    (project.path / "models").mkdir(exist_ok=True)
    (project.path / "models" / "model.joblib").write_bytes(b"")
    (project.path / "uv.lock").write_text("")
    for engine, extra in [("docker", ""), ("podman", "--format docker")]:
        command = _make_docker_dry_run(project, engine, "BASE_IMAGE=localhost/base:1")
        assert command.startswith(f"{engine} build {extra}".strip()), command
        assert "--build-arg BASE_IMAGE=localhost/base:1" in command
        default = _make_docker_dry_run(project, engine)
        assert "--build-arg BASE_IMAGE=python:3.12-slim-trixie " in default, default
        for arg in ["VERSION", "REVISION", "CREATED"]:
            assert f"--build-arg {arg}=" in command, arg
        assert command.endswith("--tag fraud-detector:latest ."), command
    help_text = project.run("make", "help").stdout
    assert "make docker" in help_text


def test_make_docker_needs_the_model(bake) -> None:
    project = bake()
    result = project.run("make", "docker", "CONTAINER_ENGINE=true", check=False)
    assert result.returncode == 2
    assert "make pipeline" in result.stderr and "dvc pull" in result.stderr


def test_build_stage_slims_the_libraries_and_the_benchmark_baseline_does_not(
    baked: Callable[..., Project],
) -> None:
    dockerfile = baked().read("Dockerfile")
    base, build, runtime = dockerfile_stages(dockerfile)

    def runs(stage: list[tuple[str, str]]) -> str:
        return " ".join(args for name, args in stage if name == "RUN")

    # strip comes from apt in the build stage; the runtime stage installs nothing.
    assert "apt-get install -y --no-install-recommends binutils" in runs(build)
    assert "apt-get" not in runs(runtime) and "strip" not in runs(runtime)
    assert "strip --strip-unneeded" in runs(build) and '-not -path "*.libs/*"' in runs(build)
    # Library bytecode in place of sources, compiled once (not again by uv: no
    # UV_COMPILE_BYTECODE), then the package with its sources.
    assert "compileall -q -b /app/.venv/lib" in runs(build)
    assert "UV_COMPILE_BYTECODE" not in dockerfile
    assert runs(build).index("compileall -q -b") < runs(build).index("--no-editable")

    # benchmarks/image_size.py's baseline: the same Dockerfile with the build stage before.
    before = dockerfile_stages(image_size.baseline_dockerfile(dockerfile))
    assert before[0] == base and before[2] == runtime
    assert "UV_COMPILE_BYTECODE=1" in " ".join(args for name, args in before[1] if name == "ENV")
    assert "strip" not in runs(before[1]) and "compileall" not in runs(before[1])
