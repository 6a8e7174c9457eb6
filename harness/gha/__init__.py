"""A local GitHub Actions runner: the workflows the tests read and run, one module per job.

- expressions.py: GitHub's `${{ }}` language, `if:` conditions, hashFiles;
- events.py: filter patterns, the `github` context and event payloads, `on:` triggers,
  concurrency groups, the OIDC subject;
- github.py: the GitHub side of a test's origin (pull requests, the workflows events start),
  and gh_stand_in.py, the GitHub CLI that answers from it (gh_recorder.py: one that only
  records its calls, for the template's own workflows);
- runner.py: LocalRunner, which runs a workflow's jobs step by step; job.py: what a job gives
  back and what a step handler sees;
- actions.py: what each action used does here; pull_request.py: create-pull-request.

The names below are the ones tests use; import them from here.
"""

from harness.gha.actions import ACTIONS
from harness.gha.events import (
    EVENT_KEYS,
    Event,
    cancelled_runs,
    concurrency,
    event_payload,
    filter_matches,
    github_context,
    oidc_subject,
    triggered,
)
from harness.gha.expressions import (
    GITHUB_EXPRESSION,
    ExpressionError,
    as_text,
    condition,
    evaluate,
    flag,
    hash_files,
    interpolate,
)
from harness.gha.github import DRAFTS_UNAVAILABLE, GitHubRepo, PullRequest
from harness.gha.job import Job, JobResult, StepFailed, StepResult
from harness.gha.runner import LocalRunner, action_name, load_workflow

__all__ = [
    "ACTIONS",
    "DRAFTS_UNAVAILABLE",
    "EVENT_KEYS",
    "GITHUB_EXPRESSION",
    "Event",
    "ExpressionError",
    "GitHubRepo",
    "Job",
    "JobResult",
    "LocalRunner",
    "PullRequest",
    "StepFailed",
    "StepResult",
    "action_name",
    "as_text",
    "cancelled_runs",
    "concurrency",
    "condition",
    "evaluate",
    "event_payload",
    "filter_matches",
    "flag",
    "github_context",
    "hash_files",
    "interpolate",
    "load_workflow",
    "oidc_subject",
    "triggered",
]
