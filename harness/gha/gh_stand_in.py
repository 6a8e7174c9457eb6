"""The GitHub CLI as the local runner models it (LocalRunner(gh=True) puts it on PATH as `gh`).
It answers from the runner's GitHubRepo, which the runner writes to LOCAL_GH_STATE before each
step, and logs what it changed to LOCAL_GH_LOG for the runner to apply after it:

- `gh workflow run NAME [--ref REF]`: a workflow_dispatch event, when NAME exists at REF with a
  `workflow_dispatch` trigger (GitHub answers 422 otherwise);
- `gh pr ready [--undo] NUMBER`: mark an open pull request ready, or turn it into a draft,
  which fails where the plan has no drafts (a private repository on a free plan);
- `gh api --method POST repos/OWNER/REPO/statuses/SHA -f state=... -f context=... [-f
  description=...] [-f target_url=...]`: a commit status (GitHub answers 422 for a state
  other than error, failure, pending or success, and for a commit it does not have).

Anything else fails, saying it is not modelled: a workflow never passes here on a call that
did nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import yaml

DRAFTS_UNAVAILABLE = "Draft pull requests are not supported in this repository."


def fail(message: str, code: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


def log(entry: dict[str, Any]) -> None:
    with open(os.environ["LOCAL_GH_LOG"], "a") as out:
        out.write(json.dumps({**entry, "token": os.environ["GH_TOKEN"]}) + "\n")


def workflow_run(args: list[str], state: dict[str, Any]) -> None:
    name = args[0]
    ref = args[args.index("--ref") + 1] if "--ref" in args else state["default_branch"]
    shown = subprocess.run(
        ["git", "show", f"{ref}:.github/workflows/{name}"],
        cwd=os.environ["LOCAL_GH_ORIGIN"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        fail(f"could not find any workflows named {name} at {ref}")
    data = yaml.safe_load(shown.stdout)
    on = data.get("on", data.get(True))
    if "workflow_dispatch" not in (on if isinstance(on, (dict, list)) else [on]):
        fail("HTTP 422: Workflow does not have 'workflow_dispatch' trigger")
    log({"call": "workflow_dispatch", "workflow": name, "ref": ref})
    print(f"Created workflow_dispatch event for {name} at {ref}")


def pr_ready(args: list[str], state: dict[str, Any]) -> None:
    undo = "--undo" in args
    number = int(next(arg for arg in args if not arg.startswith("-")))
    pull = next((p for p in state["pull_requests"] if p["number"] == number), None)
    if pull is None or pull["state"] != "open":
        fail(f"no open pull requests found for {number}")
    if undo and not state["drafts"]:
        fail(f"GraphQL: {DRAFTS_UNAVAILABLE} (convertPullRequestToDraft)")
    log({"call": "draft", "number": number, "draft": undo})
    print(f"Pull request #{number} is {'converted to draft' if undo else 'marked as ready'}")


def commit_status(args: list[str]) -> None:
    method = args[args.index("--method") + 1] if "--method" in args else "GET"
    path = next(arg for arg in args if arg.startswith("repos/"))
    parts = path.split("/")
    if method != "POST" or len(parts) != 5 or parts[3] != "statuses":
        fail(f"gh api {' '.join(args)}: not modelled by harness/gha/gh_stand_in.py")
    fields = dict(args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "-f")
    if fields.get("state") not in {"error", "failure", "pending", "success"}:
        fail(f"HTTP 422: state {fields.get('state')!r} is not a commit status's state")
    known = subprocess.run(
        ["git", "cat-file", "-e", f"{parts[4]}^{{commit}}"],
        cwd=os.environ["LOCAL_GH_ORIGIN"],
        capture_output=True,
        check=False,
    )
    if known.returncode != 0:
        fail(f"HTTP 422: No commit found for SHA: {parts[4]}")
    log({"call": "status", "sha": parts[4], **fields})
    print(json.dumps({"state": fields["state"], "context": fields.get("context", "default")}))


def main(args: list[str]) -> None:
    if not os.environ.get("GH_TOKEN"):
        fail("gh: set the GH_TOKEN environment variable in a GitHub Actions workflow", 4)
    with open(os.environ["LOCAL_GH_STATE"]) as file:
        state = json.load(file)
    if args[:2] == ["workflow", "run"] and len(args) > 2:
        workflow_run(args[2:], state)
    elif args[:2] == ["pr", "ready"] and len(args) > 2:
        pr_ready(args[2:], state)
    elif args[:1] == ["api"]:
        commit_status(args[1:])
    else:
        fail(f"gh {' '.join(args)}: not modelled by harness/gha/gh_stand_in.py")


if __name__ == "__main__":
    main(sys.argv[1:])
