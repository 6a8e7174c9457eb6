"""What the actions the workflows use do here, each as a handler of (job, `with:`): the runner
fails a step whose action has no handler, so a workflow is never green here for a step that was
silently skipped. peter-evans/create-pull-request has a module of its own (pull_request.py).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.gha.job import Job, StepFailed
from harness.gha.pull_request import create_pull_request


def _checkout(job: Job, with_: dict[str, Any]) -> None:
    if str(with_.get("persist-credentials", "true")).lower() != "false":
        raise StepFailed("actions/checkout without persist-credentials: false")
    depth = int(with_.get("fetch-depth", 1))
    github = job.runner.github
    command = ["git", "clone", "--quiet"]
    if depth:
        command += ["--depth", str(depth)]
    ref = str(with_.get("ref") or github.get("ref", ""))  # `ref:` a branch, a tag or refs/...
    if ref.startswith(("refs/heads/", "refs/tags/")):
        command += ["--branch", ref.split("/", 2)[2]]
    elif ref:
        command += ["--branch", ref]
    command += [f"file://{job.runner.origin}", str(job.workspace)]
    shutil.rmtree(job.workspace)
    subprocess.run(command, check=True, capture_output=True, text=True)
    job.notes.append(f"cloned {ref or 'the default branch'} (depth {depth or 'all'})")


def _noop(reason: str) -> Callable[[Job, dict[str, Any]], None]:
    def handler(job: Job, with_: dict[str, Any]) -> None:
        job.notes.append(reason)

    return handler


def _upload_artifact(job: Job, with_: dict[str, Any]) -> None:
    name = with_.get("name", "artifact")
    files: list[Path] = []
    for pattern in str(with_["path"]).split("\n"):
        pattern = pattern.strip()
        if not pattern:
            continue
        target = job.workspace / pattern
        if target.is_dir():
            files += [p for p in target.rglob("*") if p.is_file()]
        else:
            files += [p for p in job.workspace.glob(pattern) if p.is_file()]
    if not files:
        if with_.get("if-no-files-found", "warn") == "error":
            raise StepFailed(f"artifact {name!r}: no file matches {with_['path']!r}")
        job.notes.append(f"artifact {name!r}: nothing to upload")
        return
    # Like upload-artifact: paths are kept relative to the files' least common ancestor.
    root = Path(os.path.commonpath([str(p.parent) for p in files]))
    store = job.runner.artifacts / name
    if store.exists():
        raise StepFailed(f"artifact {name!r} uploaded twice")
    for path in files:
        destination = store / path.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    job.notes.append(f"artifact {name!r}: {len(files)} file(s)")


def _download_artifact(job: Job, with_: dict[str, Any]) -> None:
    name = with_["name"]
    store = job.runner.artifacts / name
    if not store.exists():
        raise StepFailed(f"artifact {name!r} was not uploaded by an earlier job")
    destination = job.workspace / with_.get("path", ".")
    shutil.copytree(store, destination, dirs_exist_ok=True)
    job.notes.append(f"artifact {name!r} -> {with_.get('path', '.')}")


def _docker_build(job: Job, with_: dict[str, Any]) -> None:
    """No Docker engine here: check what the build reads, then record that it did not run.

    The image itself is built and run by the container tests (podman); this checks that the
    workflow points the build at a Dockerfile that exists and that every file its COPY lines
    take from the context is in the job's workspace at this point.
    """
    context = job.workspace / with_.get("context", ".")
    dockerfile = job.workspace / with_.get("file", "Dockerfile")
    if not dockerfile.is_file():
        raise StepFailed(f"no Dockerfile at {dockerfile.relative_to(job.workspace)}")
    for line in dockerfile.read_text().splitlines():
        words = shlex.split(line.split("#", 1)[0]) if line.strip().startswith("COPY") else []
        if not words or any(word.startswith("--from") for word in words):
            continue
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        for source in sources:
            if not list(context.glob(source.rstrip("/"))):
                raise StepFailed(f"the Dockerfile copies {source!r}, missing from the context")
    pushed = (
        " and pushed as " + ", ".join(str(with_.get("tags", "")).split())
        if str(with_.get("push", "false")).lower() == "true"
        else ""
    )
    job.notes.append(
        f"image build{pushed} not run: no Docker engine here (the Dockerfile and every "
        "file it copies are present)"
    )


def _docker_metadata(job: Job, with_: dict[str, Any]) -> None:
    """The image tags docker/metadata-action computes, for the `tags:` kinds the workflows use,
    and its `latest` flavor: `latest=auto` (the default) adds `latest` on every tag push that
    a `type=ref,event=tag` or `type=match` entry tags; `true` always adds it, `false` never."""
    github = job.runner.github
    ref, ref_name = github.get("ref", ""), github.get("ref_name", "")
    is_tag = ref.startswith("refs/tags/")
    flavor = dict(
        line.strip().split("=", 1)
        for line in str(with_.get("flavor", "")).splitlines()
        if line.strip()
    )
    latest = flavor.pop("latest", "auto")
    if flavor or latest not in {"auto", "true", "false"}:
        raise StepFailed(f"docker/metadata-action: flavor {with_.get('flavor')!r} not mapped here")
    auto_latest = False
    tags: list[str] = []
    for line in str(with_.get("tags", "")).splitlines():
        if not line.strip():
            continue
        spec = dict(part.split("=", 1) for part in line.strip().split(","))
        kind = spec.pop("type")
        if kind == "ref" and spec == {"event": "tag"}:
            tag = ref_name if is_tag else None
        elif kind == "match":
            found = re.search(spec["pattern"], ref_name) if is_tag else None
            tag = found.group(int(spec.get("group", 0))) if found else None
        elif kind == "sha" and spec.get("format") == "long":
            tag = f"sha-{github['sha']}"
        else:
            raise StepFailed(f"docker/metadata-action: {line.strip()!r} is not mapped here")
        if tag:
            tags.append(re.sub(r"[^a-zA-Z0-9._-]+", "-", tag))
            auto_latest = auto_latest or kind in {"ref", "match"}
    if latest == "true" or (latest == "auto" and auto_latest):
        tags.append("latest")
    images = [image.strip().lower() for image in str(with_["images"]).split("\n") if image.strip()]
    lines = [f"{image}:{tag}" for image in images for tag in dict.fromkeys(tags)]
    with open(job.env["GITHUB_OUTPUT"], "a") as outputs:
        outputs.write("tags<<EOF\n" + "\n".join(lines) + "\nEOF\n")
        outputs.write("labels<<EOF\norg.opencontainers.image.revision=" + github["sha"] + "\nEOF\n")
    job.notes.append("tags: " + ", ".join(lines))


ACTIONS: dict[str, Callable[[Job, dict[str, Any]], None]] = {
    "actions/checkout": _checkout,
    "astral-sh/setup-uv": _noop("uv from the test environment"),
    "actions/setup-python": _noop("Python from the test environment"),
    "actions/cache": _noop("no cache restored (a cold cache)"),
    "actions/upload-artifact": _upload_artifact,
    "actions/download-artifact": _download_artifact,
    "docker/setup-buildx-action": _noop("no Docker engine here"),
    "docker/build-push-action": _docker_build,
    "docker/metadata-action": _docker_metadata,
    "docker/login-action": _noop("not logged in: no registry here"),
    "peter-evans/create-pull-request": create_pull_request,
}
