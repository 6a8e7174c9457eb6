"""peter-evans/create-pull-request (v8), as its source does it, against the test's origin
repository and the runner's GitHubRepo (harness/gha/github.py)."""

from __future__ import annotations

import subprocess
from typing import Any

from harness.gha.events import Event
from harness.gha.github import DRAFTS_UNAVAILABLE, WORKFLOWS_REFUSED, PullRequest
from harness.gha.job import Job, StepFailed

BOT_COMMITTER = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")


def create_pull_request(job: Job, with_: dict[str, Any]) -> None:
    """peter-evans/create-pull-request (v8) as its source does it, against the origin and the
    runner's GitHubRepo: the changes among add-paths committed by the bot on top of the base;
    an existing branch reset to that commit (a force push) whenever its tree or its number of
    commits ahead differ, so commits pushed to it are lost; the push refused for GITHUB_TOKEN
    when it touches .github/workflows/; `draft: true` on create only, `always-true` also
    converting an updated pull request; a branch with no difference left deleted with
    `delete-branch`. Outputs pull-request-number, -operation, -branch and -head-sha."""
    pr = _PullRequestRun(job, with_)
    pr.commit()
    head, action = pr.branch_head()
    pr.restore()  # as the action leaves the workspace before it pushes and opens anything
    if action in {"created", "updated"}:
        pr.push(head)
    operation = "none"
    if head is not None and pr.ahead(head):
        operation = pr.open_or_update(action)
    elif action in {"updated", "not-updated"} and pr.flag("delete-branch"):
        operation = pr.delete_branch()
    pr.outputs(operation, head)
    job.notes.append(pr.note(operation, head))


class _PullRequestRun:
    """One create-pull-request step: the git side in the job's workspace, the pull request in
    the runner's GitHubRepo."""

    def __init__(self, job: Job, with_: dict[str, Any]) -> None:
        self.job, self.with_, self.runner = job, with_, job.runner
        body = with_.get("body-path")
        if body and not (job.workspace / body).is_file():
            raise StepFailed(f"create-pull-request: no body file {body}")
        self.body = (job.workspace / body).read_text() if body else str(with_.get("body", ""))
        self.draft = str(with_.get("draft", "false")).strip().lower()
        if self.draft not in {"true", "false", "always-true"}:
            raise StepFailed(f"create-pull-request: draft {self.draft!r} is not a boolean")
        self.token = str(with_.get("token") or self.runner.github.get("token", ""))
        self.branch = str(with_.get("branch", "create-pull-request/patch"))
        self.paths = [p.strip() for p in str(with_.get("add-paths", "")).splitlines() if p.strip()]
        self.working = self.git("rev-parse", "--abbrev-ref", "HEAD")
        self.base = str(with_.get("base") or self.working)
        if self.base == self.branch:
            raise StepFailed("The 'base' and 'branch' for a pull request must be different")
        self.temp = "create-pull-request-temp"

    def git(self, *args: str, check: bool = True) -> str:
        name, email = BOT_COMMITTER  # the committer of what the action commits (and stashes)
        identity = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
        done = subprocess.run(
            ["git", *identity, *args],
            cwd=self.job.workspace,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            raise StepFailed(f"create-pull-request: git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    def flag(self, name: str) -> bool:
        return str(self.with_.get(name, "false")).strip().lower() == "true"

    def ahead(self, ref: str) -> int:
        return int(self.git("rev-list", "--count", f"origin/{self.base}..{ref}"))

    def commit(self) -> None:
        """The changes among add-paths (every change without it), committed on a temp branch."""
        self.git("checkout", "--quiet", "-B", self.temp, "HEAD")
        if self.git("status", "--porcelain", "--", *self.paths):
            self.git("add", *(["--", *self.paths] if self.paths else ["-A"]), check=False)
            actor = str(self.runner.github.get("actor", "octo"))
            self.git(
                *("commit", "--quiet", "--no-verify", "-m"),
                str(self.with_.get("commit-message", "[create-pull-request] automated change")),
                f"--author={actor} <{actor}@users.noreply.github.com>",
            )
        self.git("stash", "push", "--quiet", "--include-untracked")

    def branch_head(self) -> tuple[str | None, str]:
        """The branch's new head and the action: created, updated, not-updated or none."""
        temp = self.git("rev-parse", self.temp)
        if not self.git("ls-remote", "origin", f"refs/heads/{self.branch}"):
            if not self.ahead(temp):
                return None, "none"
            self.git("branch", "--force", self.branch, temp)
            return temp, "created"
        self.git("fetch", "--quiet", "origin", f"+{self.branch}:refs/remotes/origin/{self.branch}")
        old = self.git("rev-parse", f"origin/{self.branch}")
        reset = (
            self.git("rev-parse", f"{old}^{{tree}}") != self.git("rev-parse", f"{temp}^{{tree}}")
            or self.ahead(old) != self.ahead(temp)
            or not self.ahead(temp)
        )
        head = temp if reset else old
        self.git("branch", "--force", self.branch, head)
        return head, ("updated" if head != old else "not-updated")

    def push(self, head: str) -> None:
        by_github_token = self.runner.by_github_token(self.token)
        remote = self.git("ls-remote", "origin", f"refs/heads/{self.branch}").split()
        since = remote[0] if remote else f"origin/{self.base}"
        workflows = self.git("diff", "--name-only", since, head, "--", ".github/workflows/")
        if by_github_token and workflows:
            raise StepFailed(
                f"! [remote rejected] {self.branch} -> {self.branch} ("
                + WORKFLOWS_REFUSED.format(path=workflows.splitlines()[0])
                + ")"
            )
        self.git("push", "--quiet", "--force", "origin", f"{head}:refs/heads/{self.branch}")
        self.runner.repo.events.append(Event("push", f"refs/heads/{self.branch}", by_github_token))

    def open_or_update(self, action: str) -> str:
        repo = self.runner.repo
        by_github_token = self.runner.by_github_token(self.token)
        title = str(self.with_.get("title", "Changes by create-pull-request action"))
        pull = repo.open_pull_request(self.branch)
        ref = f"refs/heads/{self.branch}"
        if pull is None:
            draft = self.draft in {"true", "always-true"}
            if draft and not repo.drafts:
                raise StepFailed(f"create-pull-request: {DRAFTS_UNAVAILABLE}")
            number = len(repo.pull_requests) + 1
            repo.pull_requests.append(
                PullRequest(number, self.branch, self.base, title, self.body, draft)
            )
            repo.events.append(Event("pull_request", ref, by_github_token, "opened", "", self.base))
            self.number = number
            return "created"
        pull.title, pull.body, self.number = title, self.body, pull.number
        if action != "updated":
            return "none"
        event = Event("pull_request", ref, by_github_token, "synchronize", "", self.base)
        repo.events.append(event)
        if self.draft == "always-true" and not pull.draft:
            if not repo.drafts:
                raise StepFailed(f"create-pull-request: {DRAFTS_UNAVAILABLE}")
            pull.draft = True
        return "updated"

    def delete_branch(self) -> str:
        self.git("push", "--quiet", "--delete", "--force", "origin", f"refs/heads/{self.branch}")
        pull = self.runner.repo.open_pull_request(self.branch)
        if pull is not None:  # GitHub closes a pull request whose branch is deleted
            pull.state = "closed"
        return "closed"

    def restore(self) -> None:
        self.git("checkout", "--quiet", self.working)
        self.git("branch", "--quiet", "-D", self.temp)
        if self.git("stash", "list"):
            self.git("stash", "pop", "--quiet")

    def outputs(self, operation: str, head: str | None) -> None:
        with open(self.job.env["GITHUB_OUTPUT"], "a") as out:
            out.write(f"pull-request-branch={self.branch}\n")
            out.write(f"pull-request-operation={operation}\n")
            if head:
                out.write(f"pull-request-head-sha={self.git('rev-parse', head)}\n")
            if operation in {"created", "updated", "none"} and hasattr(self, "number"):
                out.write(f"pull-request-number={self.number}\n")

    def note(self, operation: str, head: str | None) -> str:
        if head is None or not self.ahead(head):
            if operation == "closed":
                return f"no change left: branch {self.branch} deleted (an open pull request closed)"
            return "no change in add-paths: no pull request"
        changed = self.git("diff", "--name-only", f"origin/{self.base}", head).splitlines()
        pull = self.runner.repo.open_pull_request(self.branch)
        kind = "draft " if pull and pull.draft else ""
        return (
            f"pull request {pull.title if pull else ''!r} with {', '.join(changed)} "
            f"({kind}pull request #{getattr(self, 'number', '?')}: {operation})"
        )
