"""End to end: the Promote workflow of a project that deploys to Kubernetes, run here step by
step (harness/gha/), on GTO stage tags made by the project's own `make promote-model`.

The shared trained project (tests/e2e/conftest.py) is re-rendered with `deployment:
kubernetes` (copier recopy): its model is the good one. A second version trains a model that
learns next to nothing (one stump on 20 rows); a third is the good one again. Promoting them
in turn: the first has no champion and passes, the good one passes against the weak one, the
weak one fails against the good one (its pull request still opened, the gate's status
failed, the run red), and with `promotion.mode: dry_run` on the default branch the same
failure only reports.

What cannot run here is stood in for, and said: the registry is a `docker` that answers
`docker buildx imagetools inspect` for the images CD would have pushed (IMAGE:sha-COMMIT);
GitHub is the runner's GitHubRepo with its `gh` (pull requests, statuses, dispatches).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import copier
import pytest
import yaml

from harness.gha import GitHubRepo, LocalRunner, StepFailed, filter_matches, load_workflow
from harness.gha.events import github_context
from harness.project import Project, git, tool_env

pytestmark = pytest.mark.e2e

REPOSITORY = "octo/my-model"
MODEL = "my-model"
IMAGE = f"ghcr.io/{REPOSITORY}"

# The registry as CD leaves it: IMAGE:sha-COMMIT for each commit it built.
FAKE_DOCKER = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
if args[:3] != ["buildx", "imagetools", "inspect"]:
    sys.exit(f"docker {' '.join(args)}: not modelled here")
pushed = json.load(open(os.environ["FAKE_REGISTRY"]))
if args[3] not in pushed:
    sys.exit(f"ERROR: {args[3]}: not found")
print(f"Name:      {args[3]}")
print("MediaType: application/vnd.oci.image.index.v1+json")
print(f"Digest:    {pushed[args[3]]}")
"""

# The overlays as the deployment contract fixes them (D1's deploy/ replaces these where it
# exists): the image model-service pinned by digest, the service's settings beside it.
OVERLAY = """\
resources:
  - ../../base
images:
  - name: model-service
    newName: ghcr.io/octo/my-model
    digest: sha256:{digest}
configMapGenerator:
  - name: model-service
    behavior: merge
    envs:
      - service.env
"""


def _overlays(project: Path) -> None:
    for env in ("staging", "production"):
        folder = project / "deploy" / "overlays" / env
        if (folder / "kustomization.yaml").exists():
            continue
        folder.mkdir(parents=True)
        (folder / "kustomization.yaml").write_text(OVERLAY.format(digest="0" * 64))
        (folder / "service.env").write_text(f"PREDICTION_LOG=s3://my-model-{env}/predictions\n")


def _edit(project: Project, *changes: tuple[str, str]) -> None:
    """Lines of params.yaml replaced, each found once (its comments kept)."""
    text = project.read("params.yaml")
    for old, new in changes:
        assert text.count(old) == 1, f"{old!r} not once in params.yaml"
        text = text.replace(old, new)
    (project.path / "params.yaml").write_text(text)


@pytest.fixture(scope="module")
def versions(trained_project: Project, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The project deploying to Kubernetes, with three committed versions (good, weak, good),
    pushed to a bare origin; their commits."""
    project = trained_project
    copier.run_recopy(
        str(project.path),
        data={"deployment": "kubernetes"},
        defaults=True,
        overwrite=True,
        quiet=True,
        unsafe=False,
    )
    assert project.has_file(".github/workflows/promote.yml")
    _overlays(project.path)
    project.run("make", "pipeline")  # the re-render changed no stage: nothing reruns
    project.commit("Initial commit")
    commits = {"good": git(project.path, "rev-parse", "HEAD").strip()}
    # A model that learns next to nothing: one stump, on 20 rows (no better than the baseline
    # here, which the gate's floor, at its default +0%, lets through).
    _edit(
        project,
        ("n_estimators: 100", "n_estimators: 1"),
        ("max_depth: 12", "max_depth: 1"),
        ("max_samples: 200000", "max_samples: 20"),
    )
    project.run("make", "pipeline")
    project.commit("A weak model")
    commits["weak"] = git(project.path, "rev-parse", "HEAD").strip()
    git(project.path, "revert", "--no-edit", "HEAD")
    project.run("make", "pipeline")  # the good model again, from DVC's run cache
    assert not git(project.path, "status", "--porcelain"), "the revert is the good model"
    commits["good again"] = git(project.path, "rev-parse", "HEAD").strip()
    origin = project.path.parent / "origin.git"
    git(project.path.parent, "clone", "--quiet", "--bare", str(project.path), str(origin))
    return {"project": project, "origin": origin, "commits": commits}


def _promote(versions: dict, ref: str, stage: str = "prod") -> str:
    """`make release-model` (unless the commit has a version) and `make promote-model` of the
    commit `ref` (FORCE=1: a version the stage held before), the tags pushed; the stage tag."""
    project: Project = versions["project"]
    before = set(git(project.path, "tag").split())
    git(project.path, "checkout", "--quiet", ref)
    project.run("uv", "run", "dvc", "checkout", "--quiet")  # the version's model, from the cache
    version = [t for t in git(project.path, "tag", "--points-at", "HEAD").split() if "@" in t]
    if not version:
        project.run("make", "release-model", f"VERSION={_next_version(before)}")
        version = [t for t in git(project.path, "tag", "--points-at", "HEAD").split() if "@" in t]
    number = version[0].split("@")[1]
    project.run("make", "promote-model", f"STAGE={stage}", f"VERSION={number}", "FORCE=1")
    git(project.path, "checkout", "--quiet", "main")
    project.run("uv", "run", "dvc", "checkout", "--quiet")
    [tag] = set(git(project.path, "tag").split()) - before - set(version)
    git(project.path, "push", "--quiet", str(versions["origin"]), "--tags")
    return tag


def _next_version(tags: set[str]) -> str:
    released = [t for t in tags if t.startswith(f"{MODEL}@v")]
    return f"v0.{len(released) + 1}.0"


def _run_promote(versions: dict, tag: str, repo: GitHubRepo, workdir: Path) -> LocalRunner:
    origin: Path = versions["origin"]
    bin_dir = workdir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    registry = workdir / "registry.json"
    registry.write_text(
        json.dumps({f"{IMAGE}:sha-{sha}": _digest(sha) for sha in versions["commits"].values()})
    )
    env = tool_env()
    for key in list(env):
        if key.startswith(("GITHUB_", "RUNNER_")) or key in {"DRY_RUN", "CI"}:
            del env[key]
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["FAKE_REGISTRY"] = str(registry)
    ref = f"refs/tags/{tag}"
    sha = git(origin, "rev-parse", f"{ref}^{{commit}}").strip()
    github = github_context("push", repository=REPOSITORY, ref=ref, sha=sha, token="fake-token")
    return LocalRunner(
        origin,
        workdir / "run",
        base_env=env,
        github=github,
        secrets={"GITHUB_TOKEN": "fake-token"},
        repo=repo,
        gh=True,
    )


def _digest(sha: str) -> str:
    return "sha256:" + hashlib.sha256(sha.encode()).hexdigest()


def _overlay_at(origin: Path, ref: str) -> dict:
    text = git(origin, "show", f"{ref}:deploy/overlays/production/kustomization.yaml")
    return next(i for i in yaml.safe_load(text)["images"] if i["name"] == "model-service")


def test_stage_tags_open_promotion_pull_requests_behind_the_gate(
    versions: dict, tmp_path: Path
) -> None:
    workflow = versions["project"].path / ".github" / "workflows" / "promote.yml"
    triggers = load_workflow(workflow)["on"]["push"]["tags"]
    assert filter_matches(triggers, f"{MODEL}#prod#3")
    assert not filter_matches(triggers, f"{MODEL}#prod!#4")  # an unassignment promotes nothing
    repo = GitHubRepo()
    _no_champion_passes(versions, workflow, repo, tmp_path / "first")
    _a_better_model_passes(versions, workflow, repo, tmp_path / "second")
    tag = _a_worse_model_fails(versions, workflow, repo, tmp_path / "third")
    _dry_run_only_reports(versions, workflow, repo, tmp_path / "fourth", tag)


def _no_champion_passes(versions: dict, workflow: Path, repo: GitHubRepo, workdir: Path) -> None:
    """The weak model to production first: no champion, so it passes, and says so; the pull
    request changes the overlay's digest alone, and CI is started on its branch."""
    origin, commits = versions["origin"], versions["commits"]
    tag = _promote(versions, commits["weak"])
    job = _run_promote(versions, tag, repo, workdir).run(workflow)["promote"]
    assert job.result == "success"
    [pull] = repo.pull_requests
    assert (pull.head, pull.base) == ("promote/prod", "main")
    assert pull.title == f"Promote {tag} to deploy/overlays/production"
    assert "no champion: the stage holds no model yet" in pull.body, pull.body
    image = _overlay_at(origin, "promote/prod")
    assert image == {"name": "model-service", "newName": IMAGE, "digest": _digest(commits["weak"])}
    assert _overlay_at(origin, "main") != image  # main changes when the pull request merges
    changed = git(origin, "diff", "--name-only", "main", "promote/prod").split()
    assert changed == ["deploy/overlays/production/kustomization.yaml"], changed
    head = git(origin, "rev-parse", "promote/prod").strip()
    assert repo.statuses[-1]["sha"] == head and repo.statuses[-1]["state"] == "success"
    assert repo.statuses[-1]["context"] == "promotion gate"
    runs = [(name, event.name, event.ref) for name, event in repo.runs(origin)]
    assert ("ci.yml", "workflow_dispatch", "refs/heads/promote/prod") in runs, runs
    assert "### Validation gate: passed" in job.summary, job.summary


def _a_better_model_passes(versions: dict, workflow: Path, repo: GitHubRepo, workdir: Path) -> None:
    """The good model against the weak one: better, passes; the body shows both."""
    origin, commits = versions["origin"], versions["commits"]
    tag = _promote(versions, commits["good again"])
    job = _run_promote(versions, tag, repo, workdir).run(workflow)["promote"]
    assert job.result == "success"
    [pull] = repo.pull_requests  # the same pull request, updated
    assert f"Candidate `{tag}` against `{MODEL}#prod#" in pull.body, pull.body
    good = json.loads(git(origin, "show", f"{commits['good again']}:metrics/metrics.json"))
    weak = json.loads(git(origin, "show", f"{commits['weak']}:metrics/metrics.json"))
    assert good["accuracy"] > weak["accuracy"], (good, weak)
    row = next(line for line in pull.body.splitlines() if line.startswith("| **accuracy**"))
    assert f"{good['accuracy']:.4g}" in row and f"{weak['accuracy']:.4g}" in row, row
    assert _overlay_at(origin, "promote/prod")["digest"] == _digest(commits["good again"])
    assert repo.statuses[-1]["state"] == "success"


def _a_worse_model_fails(versions: dict, workflow: Path, repo: GitHubRepo, workdir: Path) -> str:
    """The weak model again, against the good one: fails with the figures. Its pull request
    is there to see, its status failed, and the run is red. The tag."""
    origin, commits = versions["origin"], versions["commits"]
    weak = json.loads(git(origin, "show", f"{commits['weak']}:metrics/metrics.json"))
    tag = _promote(versions, commits["weak"])
    with pytest.raises(StepFailed, match="The validation gate failed"):
        _run_promote(versions, tag, repo, workdir).run(workflow)
    [pull] = repo.pull_requests
    assert "### Validation gate: failed" in pull.body, pull.body
    assert f"❌ accuracy against the champion: {weak['accuracy']:.4g} against" in pull.body
    status = repo.statuses[-1]
    assert status["state"] == "failure" and status["description"].startswith("failed: ")
    assert status["sha"] == git(origin, "rev-parse", "promote/prod").strip()
    return tag


def _dry_run_only_reports(
    versions: dict, workflow: Path, repo: GitHubRepo, workdir: Path, tag: str
) -> None:
    """dry_run on the default branch: the same candidate is reported, never blocked."""
    project: Project = versions["project"]
    _edit(project, ("  mode: enabled ", "  mode: dry_run "))
    project.commit("The promotion gate in dry run")
    git(project.path, "push", "--quiet", str(versions["origin"]), "main")
    job = _run_promote(versions, tag, repo, workdir).run(workflow)["promote"]
    assert job.result == "success"
    assert "would fail (promotion.mode: dry_run)" in job.summary, job.summary
    assert job.step("The validation gate failed").conclusion == "skipped"
    assert repo.statuses[-1]["state"] == "success"
