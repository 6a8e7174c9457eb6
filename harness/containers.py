"""Container images for the tests and the benchmarks: Podman builds, Buildah runs.

No image registry is reachable on CI, so the generated Dockerfile's default base
(python:X-slim-*) cannot be pulled. A Debian bookworm root filesystem made with debootstrap,
with Debian's python3 (3.11), stands in for it through the Dockerfile's BASE_IMAGE; it is
trimmed the way Debian's slim images are (no docs, man pages or locales), so that image
sizes compare with the real thing. It is built once per machine and reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.project import run  # containers.run: the harness's

BASE_IMAGE = "localhost/python-slim-standin:bookworm"
BASE_PYTHON = "3.11"  # bookworm's python3: projects built on this base use python_version=3.11
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What Debian's slim images leave out (their dpkg path-exclude list).
_SLIM_EXCLUDES = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/groff",
    "usr/share/lintian",
    "usr/share/linda",
]


def image_exists(ref: str) -> bool:
    return subprocess.run(["podman", "image", "exists", ref], check=False).returncode == 0


def missing_tools() -> list[str]:
    """What this machine lacks to build and run the images (empty: nothing)."""
    missing = [tool for tool in ("podman", "buildah") if shutil.which(tool) is None]
    if not missing and not image_exists(BASE_IMAGE):
        if shutil.which("debootstrap") is None:
            missing.append("debootstrap")
        if os.geteuid() != 0:
            missing.append(f"root (debootstrap makes {BASE_IMAGE})")
    return missing


def ensure_base_image(ref: str = BASE_IMAGE) -> str:
    """Make the stand-in base image unless it exists (about 40 s, once per machine)."""
    lock_path = Path(tempfile.gettempdir()) / "copier-mlops-python-base.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs: one builds, the others wait
        if image_exists(ref):
            return ref
        with tempfile.TemporaryDirectory(prefix="python-base-") as work:
            rootfs = Path(work) / "rootfs"
            run(
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                str(rootfs),
                timeout=900,
            )
            for name in _SLIM_EXCLUDES:
                shutil.rmtree(rootfs / name, ignore_errors=True)
            for cache in [rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"]:
                for item in cache.glob("*"):
                    if item.is_file():
                        item.unlink()
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            imported = subprocess.run(
                ["podman", "import", "-", ref],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
                check=False,
            )
            tar.wait()
            if imported.returncode != 0 or tar.returncode != 0:
                raise AssertionError(f"podman import of {ref} failed:\n{imported.stderr[-4000:]}")
    return ref


def build_flags() -> list[str]:
    """Options this machine's `podman build` needs: chroot isolation, the host's network, and
    the host's CA bundle (so downloads inside trust what the host trusts). No layer cache:
    a test run leaves no untagged intermediate images behind (uv's cache mount still works)."""
    flags = ["--isolation", "chroot", "--network", "host", "--layers=false"]
    if HOST_CA_BUNDLE.is_file():
        flags += ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
    return flags


def image_config(ref: str) -> dict[str, Any]:
    """The image's configuration: Cmd, Entrypoint, User, Env, Healthcheck, Labels, ..."""
    inspected = json.loads(run("podman", "image", "inspect", ref).stdout)[0]
    config = dict(inspected.get("Config") or {})
    # Podman reports the Docker-format healthcheck next to Config, not inside it.
    if not config.get("Healthcheck"):
        config["Healthcheck"] = inspected.get("Healthcheck") or inspected.get("HealthCheck")
    return config


def image_size(ref: str) -> int:
    """Uncompressed size in bytes, as `podman images` shows it."""
    return int(run("podman", "image", "inspect", "--format", "{{.Size}}", ref).stdout.strip())


def remove_image(ref: str) -> None:
    subprocess.run(["podman", "rmi", "--force", ref], capture_output=True, check=False)


def make_docker(project: Any, name: str, base_image: str = BASE_IMAGE) -> str:
    """Build the project's image with its own `make docker` (podman here); return the ref."""
    tag = uuid.uuid4().hex[:12]
    project.run(
        "make",
        "docker",
        "CONTAINER_ENGINE=podman",
        f"BASE_IMAGE={base_image}",
        f"IMAGE={name}",
        f"IMAGE_TAG={tag}",
        "DOCKER_BUILD_ARGS=" + " ".join(build_flags()),
        timeout=1800,
    )
    return f"{name}:{tag}"


def buildah_run(ctr: str, port: int, *command: str) -> list[str]:
    """`buildah run` of ``command`` in the container as its user, listening on ``port``."""
    return ["buildah", "run", "--isolation", "chroot", "--network", "host",
            "--env", f"BENTOML_PORT={port}", ctr, "--", *command]  # fmt: skip


@contextlib.contextmanager
def working_container(ref: str) -> Iterator[str]:
    """A Buildah working container from the image ``ref`` (its name), removed afterwards."""
    name = run("buildah", "from", "--pull=never", "--quiet", ref).stdout.strip()
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, check=False)
