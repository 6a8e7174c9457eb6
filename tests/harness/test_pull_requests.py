"""harness/gha/pull_request.py, github.py and gh_stand_in.py: create-pull-request against a
test's origin, the GitHub CLI the runner puts on PATH, and which workflows the events they make
start (none for GITHUB_TOKEN's, except a dispatch); drafts, resets and refused workflow pushes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.gha.events import github_context
from harness.gha.github import GitHubRepo
from harness.gha.job import JobResult, StepFailed
from harness.gha.runner import LocalRunner

PROPOSE = """\
on: workflow_dispatch
jobs:
  propose:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@0123456789abcdef0123456789abcdef01234567
        with:
          persist-credentials: false
      - run: echo "$CHANGE" >> "${FILE:-notes.txt}"
        env:
          CHANGE: ${{ vars.CHANGE }}
          FILE: ${{ vars.FILE }}
      - name: Open the pull request
        id: pr
        uses: peter-evans/create-pull-request@0123456789abcdef0123456789abcdef01234567
        with:
          token: ${{ secrets.PR_TOKEN || github.token }}
          branch: proposal
          delete-branch: true
          title: A proposal
          draft: ${{ vars.DRAFT || 'false' }}
      - if: steps.pr.outputs.pull-request-operation == 'created'
        run: gh workflow run checks.yml --ref proposal
        env:
          GH_TOKEN: ${{ github.token }}
      - name: Make it a draft
        if: vars.MAKE_DRAFT == 'true'
        run: gh pr ready --undo "$NUMBER"
        env:
          GH_TOKEN: ${{ github.token }}
          NUMBER: ${{ steps.pr.outputs.pull-request-number }}
"""
CHECKS = """\
on:
  push:
    branches: [main]
  pull_request:
  workflow_dispatch:
jobs:
  test:
    runs-on: ubuntu-latest
    steps: [{run: exit 0}]
"""


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository with a workflow that proposes a change and one that checks pull requests."""
    work = tmp_path / "work"
    (work / ".github" / "workflows").mkdir(parents=True)
    (work / ".github" / "workflows" / "propose.yml").write_text(PROPOSE)
    (work / ".github" / "workflows" / "checks.yml").write_text(CHECKS)
    (work / "notes.txt").write_text("first\n")
    _git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    _git(work, "add", "--all")
    _git(work, "commit", "--quiet", "-m", "first")
    _git(tmp_path, "clone", "--quiet", "--bare", str(work), str(tmp_path / "origin.git"))
    return tmp_path / "origin.git"


def _git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Ana", "-c", "user.email=ana@example.com"]
    return subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def _propose(
    origin: Path,
    workdir: Path,
    repo: GitHubRepo,
    change: str,
    secrets: dict[str, str] | None = None,
    **variables: str,
) -> JobResult:
    runner = LocalRunner(
        origin,
        workdir,
        base_env={"PATH": os.environ["PATH"], "HOME": str(workdir)},
        github=github_context("workflow_dispatch", repository="octo/churn", token="the-job-token"),
        variables={"CHANGE": change, **variables},
        secrets=secrets,
        repo=repo,
        gh=True,
    )
    return runner.run(origin.parent / "work" / ".github" / "workflows" / "propose.yml")["propose"]


def test_a_pull_request_opened_with_github_token_starts_no_workflow_but_a_dispatch_does(
    origin: Path, tmp_path: Path
) -> None:
    repo = GitHubRepo()
    job = _propose(origin, tmp_path / "run1", repo, "second")
    assert job.step("Open the pull request").outputs["pull-request-operation"] == "created"
    assert [(e.name, e.by_github_token) for e in repo.events] == [
        ("push", True),
        ("pull_request", True),
        ("workflow_dispatch", True),
    ]
    # Neither the push nor the pull request starts a workflow; the dispatch is exempt.
    assert [(name, event.name) for name, event in repo.runs(origin)] == [
        ("checks.yml", "workflow_dispatch")
    ]
    assert _git(origin, "show", "proposal:notes.txt") == "first\nsecond"

    # With a person's token, the pull request's own events start the checks.
    repo = GitHubRepo()
    _git(origin, "branch", "-D", "proposal")
    _propose(origin, tmp_path / "run2", repo, "second", secrets={"PR_TOKEN": "a-person"})
    started = [(name, event.name, event.action) for name, event in repo.runs(origin)]
    assert ("checks.yml", "pull_request", "opened") in started, started


def test_draft_applies_on_create_and_always_true_on_update(origin: Path, tmp_path: Path) -> None:
    repo = GitHubRepo()
    _propose(origin, tmp_path / "run1", repo, "second", DRAFT="false")
    assert not repo.pull_requests[0].draft
    _propose(origin, tmp_path / "run2", repo, "third", DRAFT="true")
    assert not repo.pull_requests[0].draft, "`true` is applied on create only"
    job = _propose(origin, tmp_path / "run3", repo, "fourth", DRAFT="always-true")
    assert job.step("Open the pull request").outputs["pull-request-operation"] == "updated"
    assert repo.pull_requests[0].draft and len(repo.pull_requests) == 1


def test_drafts_are_refused_where_the_plan_has_none(origin: Path, tmp_path: Path) -> None:
    repo = GitHubRepo(drafts=False)
    with pytest.raises(StepFailed, match="Draft pull requests are not supported"):
        _propose(origin, tmp_path / "run1", repo, "second", DRAFT="true")
    assert not repo.pull_requests
    _propose(origin, tmp_path / "run2", repo, "second", DRAFT="false")
    assert len(repo.pull_requests) == 1
    # Converting one to a draft (gh pr ready --undo) fails there too.
    with pytest.raises(StepFailed, match=r"(?s)at step 'Make it a draft'.*not supported"):
        _propose(origin, tmp_path / "run3", repo, "third", MAKE_DRAFT="true")
    repo.drafts = True
    _propose(origin, tmp_path / "run4", repo, "fourth", MAKE_DRAFT="true")
    assert repo.pull_requests[0].draft


def test_an_update_resets_the_branch_over_a_persons_commit(origin: Path, tmp_path: Path) -> None:
    """What create-pull-request does to commits pushed to its branch (its source's reset rule)."""
    repo = GitHubRepo()
    _propose(origin, tmp_path / "run1", repo, "second")
    clone = tmp_path / "person"
    _git(tmp_path, "clone", "--quiet", "--branch", "proposal", str(origin), str(clone))
    (clone / "notes.txt").write_text("first\nsecond, reviewed\n")
    _git(clone, "commit", "--quiet", "-am", "Reviewed")
    _git(clone, "push", "--quiet", "origin", "proposal")
    job = _propose(origin, tmp_path / "run2", repo, "second")
    assert job.step("Open the pull request").outputs["pull-request-operation"] == "updated"
    assert _git(origin, "show", "proposal:notes.txt") == "first\nsecond", "the commit is gone"


def test_github_token_cannot_push_a_workflow_change(origin: Path, tmp_path: Path) -> None:
    repo = GitHubRepo()
    workflow = ".github/workflows/checks.yml"
    with pytest.raises(StepFailed, match=f"update workflow `{workflow}` without `workflows`"):
        _propose(origin, tmp_path / "run1", repo, "# changed", FILE=workflow)
    assert not _git(origin, "branch", "--list", "proposal")
    job = _propose(
        origin, tmp_path / "run2", repo, "# changed", {"PR_TOKEN": "a-person"}, FILE=workflow
    )
    assert job.step("Open the pull request").outputs["pull-request-operation"] == "created"


STATUS = """\
on: workflow_dispatch
jobs:
  report:
    runs-on: ubuntu-latest
    steps:
      - run: >-
          gh api --method POST "repos/octo/churn/statuses/$SHA" -f state="$STATE"
          -f context=gate -f description="the figures"
        env:
          GH_TOKEN: ${{ github.token }}
          SHA: ${{ vars.SHA }}
          STATE: ${{ vars.STATE }}
"""


def test_a_commit_status_is_set_on_a_commit_github_has(origin: Path, tmp_path: Path) -> None:
    """`gh api .../statuses/SHA`: the status recorded; a bad state or an unknown commit, 422."""
    workflow = tmp_path / "status.yml"
    workflow.write_text(STATUS)
    sha = _git(origin, "rev-parse", "main")
    repo = GitHubRepo()

    def report(number: int, **variables: str) -> None:
        LocalRunner(
            origin,
            tmp_path / f"run{number}",
            base_env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            github=github_context("workflow_dispatch", repository="octo/churn", token="t"),
            variables=variables,
            repo=repo,
            gh=True,
        ).run(workflow)

    report(1, SHA=sha, STATE="failure")
    assert repo.statuses == [
        {"sha": sha, "state": "failure", "context": "gate", "description": "the figures"}
    ]
    with pytest.raises(StepFailed, match="HTTP 422: state 'red'"):
        report(2, SHA=sha, STATE="red")
    with pytest.raises(StepFailed, match="HTTP 422: No commit found for SHA: " + "0" * 40):
        report(3, SHA="0" * 40, STATE="success")
    assert len(repo.statuses) == 1
