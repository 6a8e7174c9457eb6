"""harness/gha/actions.py: what each action the workflows use does here, called as the runner
calls it (a Job and the step's `with:`): checkout clones the event's ref, artifacts travel
between jobs, the image build checks what it would copy, docker/metadata-action's tags."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.gha.actions import ACTIONS
from harness.gha.events import github_context
from harness.gha.job import Job, StepFailed, parse_file_commands
from harness.gha.runner import LocalRunner

SHA = "0123456789abcdef0123456789abcdef01234567"


def _job(tmp_path: Path, job_id: str = "build", ref: str = "refs/heads/main") -> Job:
    runner = LocalRunner(
        tmp_path / "origin",
        tmp_path / "run",
        base_env={},
        github=github_context("push", repository="octo/churn", ref=ref, sha=SHA),
    )
    workspace = tmp_path / "run" / job_id
    workspace.mkdir(parents=True)
    output = tmp_path / f"{job_id}-output"
    output.write_text("")
    return Job(runner, job_id, workspace, {"GITHUB_OUTPUT": str(output)})


def _origin(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    (origin / "README.md").write_text("hello\n")
    for args in (
        ["init", "--quiet", "--initial-branch=main"],
        ["add", "--all"],
        ["-c", "user.name=Ana", "-c", "user.email=ana@example.com", "commit", "-qm", "first"],
    ):
        subprocess.run(["git", *args], cwd=origin, check=True, capture_output=True)


def test_checkout_clones_the_ref_and_refuses_persisted_credentials(tmp_path: Path) -> None:
    _origin(tmp_path)
    job = _job(tmp_path)
    with pytest.raises(StepFailed, match="without persist-credentials: false"):
        ACTIONS["actions/checkout"](job, {})
    ACTIONS["actions/checkout"](job, {"persist-credentials": "false"})
    assert (job.workspace / "README.md").read_text() == "hello\n"
    assert job.notes == ["cloned refs/heads/main (depth 1)"]


def test_artifacts_travel_between_jobs(tmp_path: Path) -> None:
    upload = _job(tmp_path, "upload")
    (upload.workspace / "reports" / "plots").mkdir(parents=True)
    (upload.workspace / "reports" / "metrics.json").write_text("{}")
    (upload.workspace / "reports" / "plots" / "roc.csv").write_text("x")
    ACTIONS["actions/upload-artifact"](upload, {"name": "reports", "path": "reports/\n"})
    assert upload.notes == ["artifact 'reports': 2 file(s)"]
    with pytest.raises(StepFailed, match="uploaded twice"):
        ACTIONS["actions/upload-artifact"](upload, {"name": "reports", "path": "reports/"})
    with pytest.raises(StepFailed, match="no file matches"):
        missing = {"name": "none", "path": "nothing/*", "if-no-files-found": "error"}
        ACTIONS["actions/upload-artifact"](upload, missing)
    ACTIONS["actions/upload-artifact"](upload, {"name": "none", "path": "nothing/*"})
    assert upload.notes[-1] == "artifact 'none': nothing to upload"

    download = Job(upload.runner, "download", tmp_path / "run" / "download", {})
    download.workspace.mkdir()
    ACTIONS["actions/download-artifact"](download, {"name": "reports", "path": "got"})
    # Paths relative to the files' least common ancestor, as upload-artifact keeps them.
    assert (download.workspace / "got" / "metrics.json").read_text() == "{}"
    assert (download.workspace / "got" / "plots" / "roc.csv").read_text() == "x"
    with pytest.raises(StepFailed, match="was not uploaded by an earlier job"):
        ACTIONS["actions/download-artifact"](download, {"name": "model"})


def test_the_image_build_checks_what_it_would_copy(tmp_path: Path) -> None:
    job = _job(tmp_path)
    build = ACTIONS["docker/build-push-action"]
    with pytest.raises(StepFailed, match="no Dockerfile at Dockerfile"):
        build(job, {})
    (job.workspace / "Dockerfile").write_text(
        "FROM python:3.12-slim AS build\nCOPY --from=build /app /app\nCOPY models/ /app/models/\n"
    )
    with pytest.raises(StepFailed, match="copies 'models/', missing from the context"):
        build(job, {})
    (job.workspace / "models").mkdir()
    build(job, {"push": "true", "tags": "ghcr.io/octo/churn:v1 ghcr.io/octo/churn:latest"})
    assert job.notes[-1].startswith(
        "image build and pushed as ghcr.io/octo/churn:v1, ghcr.io/octo/churn:latest not run"
    )


@pytest.mark.parametrize(
    ("ref", "flavor", "expected"),
    [
        ("refs/tags/v1.2.0", "", ["v1.2.0", "1.2", f"sha-{SHA}", "latest"]),
        ("refs/heads/main", "", [f"sha-{SHA}"]),  # latest=auto: a tag push only
        ("refs/heads/main", "latest=true", [f"sha-{SHA}", "latest"]),
        ("refs/tags/v1.2.0", "latest=false", ["v1.2.0", "1.2", f"sha-{SHA}"]),
        ("refs/tags/model#prod#1", "", ["model-prod-1", f"sha-{SHA}", "latest"]),
    ],
)
def test_docker_metadata_tags(tmp_path: Path, ref: str, flavor: str, expected: list[str]) -> None:
    job = _job(tmp_path, ref=ref)
    tags = "type=ref,event=tag\ntype=match,pattern=v(\\d+\\.\\d+),group=1\ntype=sha,format=long"
    ACTIONS["docker/metadata-action"](
        job, {"images": "ghcr.io/Octo/Churn", "tags": tags, "flavor": flavor}
    )
    outputs = parse_file_commands(Path(job.env["GITHUB_OUTPUT"]))
    assert outputs["tags"].splitlines() == [f"ghcr.io/octo/churn:{tag}" for tag in expected]
    assert outputs["labels"] == f"org.opencontainers.image.revision={SHA}"


def test_docker_metadata_refuses_what_it_does_not_model(tmp_path: Path) -> None:
    job = _job(tmp_path)
    with pytest.raises(StepFailed, match="is not mapped here"):
        ACTIONS["docker/metadata-action"](job, {"images": "x", "tags": "type=semver"})
    with pytest.raises(StepFailed, match="flavor"):
        ACTIONS["docker/metadata-action"](job, {"images": "x", "flavor": "prefix=v"})


def test_checkout_of_another_ref_than_the_events(tmp_path: Path) -> None:
    """`ref:` (a branch or a tag name): a tag's run that works on the default branch."""
    _origin(tmp_path)
    subprocess.run(["git", "tag", "v1"], cwd=tmp_path / "origin", check=True)
    job = _job(tmp_path, ref="refs/tags/v1")
    ACTIONS["actions/checkout"](job, {"persist-credentials": "false", "ref": "main"})
    branch = subprocess.run(
        ["git", "branch", "--show-current"], cwd=job.workspace, capture_output=True, text=True
    )
    assert branch.stdout.strip() == "main"
    assert job.notes == ["cloned main (depth 1)"]
