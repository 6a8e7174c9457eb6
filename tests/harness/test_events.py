"""harness/gha/events.py: GitHub's filter patterns, the event payloads per event, which
events start a workflow (its `on:`), and which runs a concurrency group cancels."""

from __future__ import annotations

from typing import Any

import pytest

from harness.gha.events import (
    EVENT_KEYS,
    Event,
    cancelled_runs,
    filter_matches,
    github_context,
    triggered,
)
from harness.gha.expressions import evaluate


@pytest.mark.parametrize(
    ("patterns", "name", "selected"),
    [
        # The examples of GitHub's "Filter pattern cheat sheet".
        (["feature/*"], "feature/my-branch", True),
        (["feature/*"], "feature/your-branch/x", False),
        (["feature/**"], "feature/beta-a/my-branch", True),
        (["main", "releases/mona-the-octocat"], "releases/mona-the-octocat", True),
        (["*"], "releases", True),
        (["*"], "releases/v1", False),
        (["**"], "releases/10", True),
        (["*feature"], "mona-feature", True),
        (["v2*"], "v2.0.0", True),
        (["v[12].[0-9]+.[0-9]+"], "v1.10.1", True),
        (["v[12].[0-9]+.[0-9]+"], "v3.0.0", False),
        (["[CB]at"], "Bat", True),
        (["[1-2]00"], "200", True),
        (["Octoc?t"], "Octot", True),  # ? : zero or one of the preceding character
        (["Octoc?t"], "Octoct", True),
        (["Octoc?t"], "Octocct", False),
        (["releases/**", "!releases/**-alpha"], "releases/beta/3-alpha", False),
        (["releases/**", "!releases/**-alpha"], "releases/beta/3", True),
        # The last matching pattern decides: a positive one after a negative one includes again.
        (["*", "!v*", "v1*"], "v1.0", True),
        (["*", "!v*", "v1*"], "v2.0", False),
        # `!` is special only at the start; `#` is an ordinary character.
        (["a!b"], "a!b", True),
        (["*#*", "!*!#*"], "model#prod!#2", False),
        (["*#*", "!*!#*"], "model#prod#2", True),
        ([r"v1\.0\+"], "v1.0+", True),
        ([r"v1\.0\+"], "v1.00", False),
    ],
)
def test_filter_patterns(patterns: list[str], name: str, selected: bool) -> None:
    assert filter_matches(patterns, name) is selected


def test_event_payloads_are_shaped_per_event() -> None:
    schedule = github_context("schedule", repository="octo/churn", default_branch="trunk")
    assert schedule["ref"] == "refs/heads/trunk" and schedule["ref_name"] == "trunk"
    assert evaluate("github.event.repository.default_branch", {"github": schedule}) is None
    assert evaluate("github.event.schedule", {"github": schedule})
    for event in ("push", "pull_request", "workflow_dispatch", "repository_dispatch"):
        github = github_context(event, repository="octo/churn", default_branch="trunk")
        assert set(github["event"]) <= EVENT_KEYS[event], event
        assert evaluate("github.event.repository.default_branch", {"github": github}) == "trunk"
    dispatch = github_context("workflow_dispatch", inputs={"current": "x.csv"})
    assert evaluate("github.event.inputs.current", {"github": dispatch}) == "x.csv"
    with pytest.raises(ValueError, match="no payload known"):
        github_context("check_run")


@pytest.mark.parametrize(
    ("on", "event", "started"),
    [
        ({"push": {"branches": ["main"]}}, Event("push", "refs/heads/main", False), True),
        ({"push": {"branches": ["main"]}}, Event("push", "refs/heads/x", False), False),
        ({"push": {"branches": ["main"]}}, Event("push", "refs/tags/v1", False), False),
        ({"push": {"tags": ["v*"]}}, Event("push", "refs/tags/v1", False), True),
        ({"push": {"tags": ["v*"]}}, Event("push", "refs/heads/main", False), False),
        ("push", Event("push", "refs/heads/x", False), True),
        (
            ["pull_request"],
            Event("pull_request", "refs/heads/x", False, "opened", "", "main"),
            True,
        ),
        (
            {"pull_request": {"branches": ["dev"]}},
            Event("pull_request", "x", False, "opened", "", "main"),
            False,
        ),
        ({"pull_request": None}, Event("pull_request", "x", False, "closed", "", "main"), False),
        (
            {"workflow_dispatch": None},
            Event("workflow_dispatch", "x", True, workflow="w.yml"),
            True,
        ),
        (
            {"workflow_dispatch": None},
            Event("workflow_dispatch", "x", True, workflow="o.yml"),
            False,
        ),
    ],
)
def test_triggers(on: Any, event: Event, started: bool) -> None:
    assert triggered(on, event, "w.yml") is started


def test_concurrency_cancels_the_pending_run_even_without_cancel_in_progress() -> None:
    workflow = {"concurrency": {"group": "g-${{ github.ref }}", "cancel-in-progress": False}}
    runs = [github_context("push", ref="refs/heads/main") for _ in range(3)]
    assert cancelled_runs(workflow, runs) == [1], "one runs, one waits: the next replaces it"
    workflow["concurrency"]["cancel-in-progress"] = "${{ github.event_name == 'push' }}"
    assert cancelled_runs(workflow, runs) == [0, 1]
    other = github_context("push", ref="refs/heads/other")
    assert cancelled_runs(workflow, [runs[0], other]) == [], "another group"
    assert cancelled_runs({}, runs) == [], "no concurrency: every run runs"
