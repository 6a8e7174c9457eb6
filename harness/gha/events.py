"""What starts a workflow run and what the run sees of its event: GitHub's filter patterns, the
`github` context and its event payload, which events a workflow's `on:` takes, the OIDC subject a
job's token carries, and which runs a concurrency group cancels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.gha.expressions import as_text, flag, interpolate

# --- filter patterns ---------------------------------------------------------------------------
# GitHub's patterns for `branches`, `tags` and `paths` ("Filter pattern cheat sheet" in "Workflow
# syntax for GitHub Actions"): `*` zero or more characters but `/`, `**` zero or more of any
# character, `?` zero or one of the preceding character, `+` one or more of the preceding
# character, `[...]` one character of a set or range, `\\` escapes the next character, and `!`
# at the start of a pattern negates it: the patterns apply in order, the last that matches
# decides, so a negative pattern after a positive one excludes what it matches.


def filter_pattern_regex(pattern: str) -> re.Pattern[str]:
    """One filter pattern (without its leading `!`) as a regular expression."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char in "?+":
            if not out:
                raise ValueError(f"filter pattern {pattern!r}: {char!r} follows nothing")
            out.append(char)
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                raise ValueError(f"filter pattern {pattern!r}: unclosed '['")
            body = pattern[index + 1 : end]
            if not re.fullmatch(r"(?:[a-zA-Z0-9](?:-[a-zA-Z0-9])?|[^\]\-])+", body):
                raise ValueError(f"filter pattern {pattern!r}: [{body}] is not a set or range")
            out.append(f"[{body}]")
            index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out))


def filter_matches(patterns: list[str], name: str) -> bool:
    """Whether a list of filter patterns (as under `tags:` or `branches:`) selects `name`."""
    selected = False
    for pattern in patterns:
        negative = pattern.startswith("!")
        if filter_pattern_regex(pattern[1:] if negative else pattern).fullmatch(name):
            selected = not negative
    return selected


# --- the github context and its event payload --------------------------------------------------
# What `github.event` holds depends on the event ("Events that trigger workflows" and "Webhook
# events and payloads" on docs.github.com). A `schedule` run's payload is only the cron line (and
# the workflow's path): no `repository`, so `github.event.repository.default_branch` is empty
# there. The payloads here carry the keys each event documents that the workflows may read.

EVENT_KEYS: dict[str, set[str]] = {
    "push": {
        "ref",
        "before",
        "after",
        "base_ref",
        "created",
        "deleted",
        "forced",
        "compare",
        "commits",
        "head_commit",
        "pusher",
        "repository",
        "organization",
        "sender",
    },
    "pull_request": {"action", "number", "pull_request", "repository", "organization", "sender"},
    "workflow_dispatch": {"inputs", "ref", "repository", "organization", "sender", "workflow"},
    "repository_dispatch": {
        "action",
        "branch",
        "client_payload",
        "repository",
        "organization",
        "sender",
    },
    "schedule": {"schedule", "workflow"},
}


def event_payload(
    event_name: str,
    *,
    repository: str = "octo/my-model",
    default_branch: str = "main",
    ref: str = "",
    sha: str = "",
    inputs: dict[str, str] | None = None,
    cron: str = "0 6 * * *",
    workflow: str = ".github/workflows/workflow.yml",
) -> dict[str, Any]:
    """`github.event` for one event, shaped as GitHub's (the parts the workflows may read)."""
    if event_name == "schedule":
        return {"schedule": cron, "workflow": workflow}
    owner, name = repository.split("/", 1)
    repo = {
        "name": name,
        "full_name": repository,
        "owner": {"login": owner},
        "default_branch": default_branch,
    }
    about = {"repository": repo, "sender": {"login": owner}}
    if event_name == "push":
        return {**_push_payload(ref, sha, owner), **about}
    if event_name == "pull_request":
        return {"action": "synchronize", "number": 1, **_pull(default_branch, sha), **about}
    if event_name == "workflow_dispatch":
        return {"inputs": dict(inputs or {}), "ref": ref, **about, "workflow": workflow}
    if event_name == "repository_dispatch":
        return {"action": "dispatch", "branch": default_branch, "client_payload": {}, **about}
    raise ValueError(
        f"no payload known for the event {event_name!r}: add it to harness/gha/events.py"
    )


def _push_payload(ref: str, sha: str, owner: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": sha,
        "base_ref": None,
        "created": False,
        "deleted": False,
        "forced": False,
        "commits": [],
        "head_commit": {"id": sha},
        "pusher": {"name": owner},
    }


def _pull(default_branch: str, sha: str) -> dict[str, Any]:
    head, base = {"ref": "feature", "sha": sha}, {"ref": default_branch, "sha": sha}
    return {"pull_request": {"number": 1, "head": head, "base": base}}


def github_context(
    event_name: str,
    *,
    repository: str = "octo/my-model",
    default_branch: str = "main",
    ref: str | None = None,
    sha: str = "0" * 40,
    inputs: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The `github` context of a run: `ref` defaults to the default branch (where a schedule
    runs), `ref_name` follows from it, `event` is the event's own payload."""
    ref = ref or f"refs/heads/{default_branch}"
    context: dict[str, Any] = {
        "event_name": event_name,
        "ref": ref,
        "ref_name": ref.split("/", 2)[2] if ref.startswith("refs/") else ref,
        "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
        "sha": sha,
        "repository": repository,
        "repository_owner": repository.split("/", 1)[0],
        "actor": repository.split("/", 1)[0],
        "server_url": "https://github.com",
        "run_id": "4242",
        "event": event_payload(
            event_name,
            repository=repository,
            default_branch=default_branch,
            ref=ref,
            sha=sha,
            inputs=inputs,
        ),
    }
    context.update(extra)
    return context


def check_event_payload(github: dict[str, Any]) -> None:
    """A test's `github` context must not give an event keys GitHub never sends with it."""
    event_name, event = github.get("event_name"), github.get("event")
    if event is None or event_name not in EVENT_KEYS:
        return
    unknown = set(event) - EVENT_KEYS[event_name]
    if unknown:
        raise ValueError(
            f"github.event of a {event_name!r} run has no {sorted(unknown)} on GitHub: "
            "build the context with harness.gha.github_context"
        )


# --- the events that start workflows -------------------------------------------------------------


@dataclass
class Event:
    name: str  # push, pull_request, workflow_dispatch, ...
    ref: str  # the ref the workflows run from (a pull request's: its head branch)
    by_github_token: bool  # made with a job's GITHUB_TOKEN
    action: str = ""  # pull_request: opened, synchronize, ...
    workflow: str = ""  # workflow_dispatch: the workflow file's name
    base: str = ""  # pull_request: the base branch (what its branch filters match)


def triggered(on: Any, event: Event, workflow: str) -> bool:
    """Whether a workflow's `on:` starts for the event (the filters of `push` and
    `pull_request`, a pull request's activity types, a dispatch of this very file)."""
    if isinstance(on, (str, list)):
        on = dict.fromkeys([on] if isinstance(on, str) else on)
    triggers: dict[str, Any] = on
    if event.name not in triggers:
        return False
    config = triggers[event.name] or {}
    if event.name == "workflow_dispatch":
        return event.workflow == workflow
    if event.name == "pull_request":
        types = config.get("types", ["opened", "synchronize", "reopened"])
        return event.action in types and _ref_selected(config, f"refs/heads/{event.base}")
    if event.name == "push":
        return _ref_selected(config, event.ref)
    return True


def _ref_selected(config: dict[str, Any], ref: str) -> bool:
    """`branches`/`tags` (or their `-ignore`) of a trigger against a ref."""
    is_tag = ref.startswith("refs/tags/")
    kind, other = ("tags", "branches") if is_tag else ("branches", "tags")
    name = ref.split("/", 2)[2] if ref.startswith("refs/") else ref
    if kind in config:
        return filter_matches(config[kind], name)
    if f"{kind}-ignore" in config:
        return not filter_matches(config[f"{kind}-ignore"], name)
    # Only the other kind filtered: a push of this kind starts nothing.
    return not (other in config or f"{other}-ignore" in config)


def oidc_subject(github: dict[str, Any], environment: str | None = None) -> str:
    """The `sub` claim of the OIDC token a job gets ("OpenID Connect reference"): the job's
    environment if it has one, else `pull_request` for a pull request's run, else the ref
    (refs/heads/NAME or refs/tags/NAME). Clouds trust a role or identity for subjects."""
    repository = github["repository"]
    if environment:
        return f"repo:{repository}:environment:{environment}"
    if github.get("event_name") in {"pull_request", "pull_request_target"}:
        return f"repo:{repository}:pull_request"
    return f"repo:{repository}:ref:{github['ref']}"


def concurrency(workflow: dict[str, Any], github: dict[str, Any]) -> tuple[str, bool] | None:
    """A run's concurrency group (GitHub compares them ignoring case) and cancel-in-progress."""
    spec = workflow.get("concurrency")
    if spec is None:
        return None
    spec = {"group": spec} if isinstance(spec, str) else spec
    context = {"github": github, "inputs": {}, "vars": {}}
    group = as_text(interpolate(spec["group"], context)).strip().lower()
    return group, flag(spec.get("cancel-in-progress", False), context)


def cancelled_runs(workflow: dict[str, Any], runs: list[dict[str, Any]]) -> list[int]:
    """Which of `runs` (github contexts, each arriving while every earlier one is still in
    progress) GitHub cancels: a group holds one running and one pending run; a new run
    cancels the pending one, and with cancel-in-progress the running one too ("Control the
    concurrency of workflows and jobs")."""
    running: dict[str, int] = {}
    pending: dict[str, int] = {}
    cancelled: set[int] = set()
    for index, github in enumerate(runs):
        found = concurrency(workflow, github)
        if found is None:
            continue
        group, cancel = found
        if group in pending:
            cancelled.add(pending.pop(group))
        if group not in running:
            running[group] = index
        elif cancel:
            cancelled.add(running[group])
            running[group] = index
        else:
            pending[group] = index
    return sorted(cancelled)
