"""End to end: a project generated for S3 pushes and pulls its data through a real S3 API
(moto's server on loopback), with credentials from the environment, as on a user's machine."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from harness.project import MOTO_CREDENTIALS, Project, moto_s3

pytestmark = pytest.mark.e2e

BUCKET = "models-team"


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    with moto_s3(tmp_path / "moto.log") as endpoint:
        yield endpoint


def _use_endpoint(project: Project, endpoint: str) -> None:
    # Only the endpoint is local to this test, so it goes in .dvc/config.local (git-ignored).
    project.run(
        "uv", "run", "dvc", "remote", "modify", "--local", "storage", "endpointurl", endpoint
    )


def test_dvc_push_and_pull_through_s3(bake, s3_endpoint: str, tmp_path: Path) -> None:
    project = bake(dvc_remote="s3", dvc_remote_url=f"s3://{BUCKET}/my-model")
    assert f"url = s3://{BUCKET}/my-model" in project.read(".dvc/config")
    project.run("make", "setup")
    project.commit("Initial commit")
    _use_endpoint(project, s3_endpoint)
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)

    project.run("uv", "run", "dvc", "push", env=MOTO_CREDENTIALS)

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(project.path), str(clone)], check=True)
    cloned = Project(clone, project.answers)
    cloned.run("uv", "sync")
    _use_endpoint(cloned, s3_endpoint)
    # The data only: this project's pipeline has not run, so it has no outputs to pull.
    targets = ["data/raw/customers.csv.dvc", "data/current/customers.csv.dvc"]
    cloned.run("uv", "run", "dvc", "pull", *targets, env=MOTO_CREDENTIALS)
    for name in ["data/raw/customers.csv", "data/current/customers.csv"]:
        assert (clone / name).read_bytes() == (project.path / name).read_bytes(), name
    stored = s3.list_objects_v2(Bucket=BUCKET, Prefix="my-model/")["KeyCount"]
    assert stored >= 2, "the data is in the bucket, under the project's prefix"
