"""The GitHub side of a test's origin repository: its pull requests, and the workflows the
events made in a run start there (harness/gha/gh_stand_in.py is the GitHub CLI that reads it).

What GitHub does around a run that a workflow's correctness depends on, as documented:
- An event made with a job's GITHUB_TOKEN starts no workflow, except workflow_dispatch and
  repository_dispatch ("Triggering a workflow from a workflow"). Any other token (a personal
  access token, a GitHub App's) starts workflows as a person's action does.
- GITHUB_TOKEN never has the `workflows` permission: a push with it that creates or changes a
  file under .github/workflows/ is refused.
- Draft pull requests need a public repository or a paid plan: in a private repository on a
  free plan, opening a draft (or converting to one) fails.
- A workflow runs from the files at the event's ref; a dispatch needs the workflow to exist
  there with a `workflow_dispatch` trigger.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.gha.events import Event, triggered

TOKEN_EXEMPT_EVENTS = {"workflow_dispatch", "repository_dispatch"}
DRAFTS_UNAVAILABLE = "Draft pull requests are not supported in this repository."
WORKFLOWS_REFUSED = (
    "refusing to allow a GitHub App to create or update workflow `{path}` without `workflows` "
    "permission"
)


@dataclass
class PullRequest:
    number: int
    head: str
    base: str
    title: str
    body: str
    draft: bool
    state: str = "open"


@dataclass
class GitHubRepo:
    """The GitHub side of a test's origin repository, shared by the runs made against it."""

    drafts: bool = True  # False: a private repository on a free plan
    pull_requests: list[PullRequest] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # Commit statuses set through the API: sha, state, context, description, target_url.
    statuses: list[dict[str, str]] = field(default_factory=list)

    def open_pull_request(self, head: str) -> PullRequest | None:
        return next((p for p in self.pull_requests if p.head == head and p.state == "open"), None)

    def started(self, origin: Path, event: Event) -> list[str]:
        """The workflow files (names) the event starts, read at the event's ref in `origin`."""
        if event.by_github_token and event.name not in TOKEN_EXEMPT_EVENTS:
            return []
        found = subprocess.run(
            ["git", "ls-tree", "--name-only", event.ref, ".github/workflows/"],
            cwd=origin,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        started = []
        for path in found:
            if not path.endswith((".yml", ".yaml")):
                continue
            text = subprocess.run(
                ["git", "show", f"{event.ref}:{path}"],
                cwd=origin,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            data = yaml.safe_load(text)
            on = data.get("on", data.get(True))
            if triggered(on, event, Path(path).name):
                started.append(Path(path).name)
        return started

    def runs(self, origin: Path) -> list[tuple[str, Event]]:
        """Every (workflow, event) pair the recorded events started, in order."""
        return [(name, event) for event in self.events for name in self.started(origin, event)]
