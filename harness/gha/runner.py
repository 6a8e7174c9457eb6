"""GitHub Actions workflows as the tests see them: loaded, their expressions evaluated, and their
jobs run here, step by step, the way a runner would run them.

There is no runner here (no GitHub, no Docker engine for `act`), so `LocalRunner` does what a
runner does with the parts that matter for a workflow's correctness: each job starts from a
fresh clone of the pushed repository, `run:` steps run in bash with the workflow's, the job's
and the step's `env`, step outputs, `GITHUB_ENV` and the job summary work as on GitHub, `if:`
conditions and `continue-on-error` are honoured, and the actions are mapped to what they do
locally (harness/gha/actions.py). An action with no mapping fails the run: a workflow is never
"green" here because a step was silently skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from harness.gha.actions import ACTIONS
from harness.gha.events import EVENT_KEYS, Event, check_event_payload, event_payload
from harness.gha.expressions import as_text, condition, flag, hash_files, interpolate
from harness.gha.github import GitHubRepo
from harness.gha.job import Job, JobResult, StepFailed, StepResult, parse_file_commands


def load_workflow(path: Path) -> dict[str, Any]:
    """The workflow as a dict; YAML 1.1 reads the key `on` as True, GitHub reads it as 'on'."""
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def action_name(uses: str) -> str:
    """'actions/checkout@<sha>' -> 'actions/checkout' (sub-paths kept: 'owner/repo/path')."""
    return uses.split("@", 1)[0]


class LocalRunner:
    """Runs a workflow's jobs here, in dependency order; see the module docstring."""

    def __init__(
        self,
        origin: Path,
        workdir: Path,
        *,
        base_env: dict[str, str],
        github: dict[str, Any],
        variables: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        inputs: dict[str, str] | None = None,
        actions: dict[str, Callable[[Job, dict[str, Any]], None]] | None = None,
        step_timeout: float = 900,
        repo: GitHubRepo | None = None,
        gh: bool = False,
    ) -> None:
        """`repo`: the GitHub side of `origin` (pull requests, events), to share between runs;
        `gh`: put the runner's model of the GitHub CLI first on PATH (GH_STAND_IN)."""
        self.origin = origin
        self.repo = repo or GitHubRepo()
        self.workdir = workdir
        self.base_env = base_env
        check_event_payload(github)
        if github.get("event_name") in EVENT_KEYS and "event" not in github:
            github = {
                **github,
                "event": event_payload(
                    github["event_name"],
                    repository=github.get("repository") or "octo/my-model",
                    ref=github.get("ref", ""),
                    sha=github.get("sha", ""),
                    inputs=inputs,
                ),
            }
        self.github = github
        self.variables = variables or {}
        self.secrets = secrets or {}
        self.inputs = inputs or {}
        self.actions = dict(ACTIONS if actions is None else actions)
        self.step_timeout = step_timeout
        self.artifacts = workdir / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.gh_dir: Path | None = None
        if gh:  # harness/gha/gh_stand_in.py as `gh`, first on PATH
            self.gh_dir = workdir / "gh"
            self.gh_dir.mkdir(parents=True, exist_ok=True)
            stand_in = Path(__file__).with_name("gh_stand_in.py")
            (self.gh_dir / "gh").write_text(
                f'#!/bin/sh\nexec "{sys.executable}" "{stand_in}" "$@"\n'
            )
            (self.gh_dir / "gh").chmod(0o755)
            self.base_env = {
                **base_env,
                "PATH": f"{self.gh_dir}{os.pathsep}{base_env.get('PATH', os.environ['PATH'])}",
                "LOCAL_GH_LOG": str(self.gh_dir / "calls.jsonl"),
                "LOCAL_GH_STATE": str(self.gh_dir / "state.json"),
                "LOCAL_GH_ORIGIN": str(origin),
            }

    @property
    def default_branch(self) -> str:
        repository = (self.github.get("event") or {}).get("repository") or {}
        return str(repository.get("default_branch") or "main")

    def by_github_token(self, token: str) -> bool:
        """Whether a token is the job's GITHUB_TOKEN (github.token); any other is a person's."""
        return token == str(self.github.get("token", ""))

    def _gh_state(self) -> None:
        """What the stand-in gh answers from: the repository as GitHub holds it now."""
        if self.gh_dir is None:
            return
        state = {
            "default_branch": self.default_branch,
            "drafts": self.repo.drafts,
            "pull_requests": [
                {"number": p.number, "head": p.head, "state": p.state, "draft": p.draft}
                for p in self.repo.pull_requests
            ],
        }
        (self.gh_dir / "state.json").write_text(json.dumps(state))

    def _gh_calls(self) -> None:
        """Apply what the stand-in gh did in a step: dispatches, pull requests turned draft."""
        calls = self.gh_dir / "calls.jsonl" if self.gh_dir else None
        if calls is None or not calls.exists():
            return
        for line in calls.read_text().splitlines():
            call = json.loads(line)
            if call["call"] == "workflow_dispatch":
                ref = (
                    call["ref"] if call["ref"].startswith("refs/") else f"refs/heads/{call['ref']}"
                )
                by_github_token = self.by_github_token(call["token"])
                event = Event("workflow_dispatch", ref, by_github_token, workflow=call["workflow"])
                self.repo.events.append(event)
            elif call["call"] == "status":
                self.repo.statuses.append(
                    {k: v for k, v in call.items() if k not in {"call", "token"}}
                )
            elif call["call"] == "draft":
                pull = next(p for p in self.repo.pull_requests if p.number == call["number"])
                pull.draft = call["draft"]
        calls.unlink()

    # -- the workflow ---------------------------------------------------------------------------

    def run(
        self,
        workflow_path: Path,
        jobs: list[str] | None = None,
        results: dict[str, JobResult] | None = None,
    ) -> dict[str, JobResult]:
        workflow = load_workflow(workflow_path)
        results = dict(results or {})
        order = self._order(workflow["jobs"])
        for job_id in order:
            if jobs is not None and job_id not in jobs:
                continue
            results[job_id] = self.run_job(workflow, job_id, results)
        return results

    @staticmethod
    def _order(jobs: dict[str, Any]) -> list[str]:
        done: list[str] = []
        pending = list(jobs)
        while pending:
            for job_id in pending:
                needs = jobs[job_id].get("needs", [])
                needs = [needs] if isinstance(needs, str) else needs
                if all(need in done for need in needs):
                    done.append(job_id)
                    pending.remove(job_id)
                    break
            else:
                raise ValueError(f"jobs with unmet or circular needs: {pending}")
        return done

    @staticmethod
    def _ancestors(jobs: dict[str, Any], job_id: str) -> list[str]:
        found: list[str] = []
        needs = jobs[job_id].get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            found += [need, *LocalRunner._ancestors(jobs, need)]
        return list(dict.fromkeys(found))

    def run_job(
        self, workflow: dict[str, Any], job_id: str, results: dict[str, JobResult]
    ) -> JobResult:
        run = _JobRun(self, workflow, job_id, results)
        if not condition(run.spec.get("if"), run.context, run.job_status()):
            return JobResult(job_id, "skipped")
        run.start()
        for index, step in enumerate(run.spec["steps"]):
            run.step(index, step)
        return run.finish()

    def _run_script(
        self, step: dict[str, Any], env: dict[str, str], workspace: Path, name: str
    ) -> str:
        script = step["run"]
        if "${{" in script:
            raise StepFailed(f"step {name!r}: an expression inside `run:`; pass it through env")
        shell = step.get("shell", "bash")
        if shell != "bash":
            raise StepFailed(f"step {name!r}: shell {shell!r} is not mapped here")
        cwd = workspace / step.get("working-directory", ".")
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=self.step_timeout,
            check=False,
        )
        output = completed.stdout + completed.stderr
        if completed.returncode != 0:
            raise StepFailed(f"`{script.strip()}` exited {completed.returncode}\n{output[-8000:]}")
        return output


class _JobRun:
    """One job as the runner runs it: its contexts, its workspace, and its steps in order."""

    def __init__(
        self,
        runner: LocalRunner,
        workflow: dict[str, Any],
        job_id: str,
        results: dict[str, JobResult],
    ) -> None:
        self.runner, self.workflow, self.job_id = runner, workflow, job_id
        self.spec = workflow["jobs"][job_id]
        needs_ids = self.spec.get("needs", [])
        needs_ids = [needs_ids] if isinstance(needs_ids, str) else needs_ids
        self.needs = {
            n: {"result": results[n].result, "outputs": results[n].outputs} for n in needs_ids
        }
        self.context: dict[str, Any] = {
            "github": runner.github,
            "vars": runner.variables,
            "secrets": runner.secrets,
            "inputs": runner.inputs,
            "needs": self.needs,
            "env": {},
            "steps": {},
            "runner": {"os": "Linux", "temp": str(runner.workdir / "runner-temp")},
        }
        self.ancestors = [
            results[a].result
            for a in LocalRunner._ancestors(workflow["jobs"], job_id)
            if a in results
        ]
        self.failed = False
        self.workspace = runner.workdir / job_id
        self.temp = runner.workdir / "runner-temp" / job_id
        self.summary = self.temp / "step_summary.md"
        # In a step's `if:`, the status functions look at the job's earlier steps only.
        self.functions: dict[str, Callable[..., Any]] = {
            "always": lambda: True,
            "cancelled": lambda: False,
            "success": lambda: not self.failed,
            "failure": lambda: self.failed,
            "hashFiles": lambda *patterns: hash_files(self.workspace, *patterns),
        }

    def job_status(self) -> dict[str, Callable[..., Any]]:
        """In a job's `if:`, the status functions look at the jobs it needs (failure(): at any
        ancestor)."""
        return {
            "always": lambda: True,
            "cancelled": lambda: False,
            "success": lambda: all(r["result"] == "success" for r in self.needs.values()),
            "failure": lambda: "failure" in self.ancestors,
        }

    def start(self) -> None:
        """A fresh workspace and runner temp, and the workflow's and the job's env."""
        if self.workspace.exists():
            shutil.rmtree(self.workspace)
        self.workspace.mkdir(parents=True)
        self.temp.mkdir(parents=True, exist_ok=True)
        self.summary.touch()
        env: dict[str, str] = {}
        for scope in (self.workflow.get("env") or {}, self.spec.get("env") or {}):
            for key, value in scope.items():
                self.context["env"] = dict(env)
                env[key] = as_text(interpolate(value, self.context, self.functions))
        self.context["env"] = dict(env)
        self.job = Job(self.runner, self.job_id, self.workspace, env)
        self.result = JobResult(self.job_id, "success", workspace=self.workspace)

    def step(self, index: int, step: dict[str, Any]) -> None:
        name = step.get("name") or step.get("uses") or step.get("run", "")[:40]
        step_id = step.get("id", f"__step{index}")
        self.context["env"] = dict(self.job.env)
        if not condition(step.get("if"), self.context, self.functions):
            self.result.steps.append(StepResult(name, "skipped", "skipped"))
            self.context["steps"][step_id] = {
                "outcome": "skipped",
                "conclusion": "skipped",
                "outputs": {},
            }
            return
        step_env = dict(self.job.env)
        for key, value in (step.get("env") or {}).items():
            with_env = {**self.context, "env": step_env}
            step_env[key] = as_text(interpolate(value, with_env, self.functions))
        self.runner._gh_state()
        files = {
            "GITHUB_OUTPUT": self.temp / f"output_{index}",
            "GITHUB_ENV": self.temp / f"env_{index}",
        }
        for path in files.values():
            path.write_text("")
        tolerated = flag(step.get("continue-on-error", False), {**self.context, "env": step_env})
        output, note, outcome = self._execute(step, name, step_env, files, tolerated)
        self.runner._gh_calls()
        step_outputs = parse_file_commands(files["GITHUB_OUTPUT"])
        self.job.env.update(parse_file_commands(files["GITHUB_ENV"]))
        conclusion = "success" if tolerated else outcome
        self.result.steps.append(StepResult(name, outcome, conclusion, output, step_outputs, note))
        self.context["steps"][step_id] = {
            "outcome": outcome,
            "conclusion": conclusion,
            "outputs": step_outputs,
        }
        if outcome == "failure" and not tolerated:
            self.failed = True

    def _execute(
        self,
        step: dict[str, Any],
        name: str,
        step_env: dict[str, str],
        files: dict[str, Path],
        tolerated: bool,
    ) -> tuple[str, str, str]:
        """Run one step: (its output, the handler's note, its outcome). A failure not tolerated
        fails the job, raising StepFailed."""
        runtime_env = self._runtime_env(step_env, files)
        output = note = ""
        try:
            if "run" in step:
                output = self.runner._run_script(step, runtime_env, self.workspace, name)
            elif "uses" in step:
                note = self._use(step, name, step_env, runtime_env)
            else:
                raise StepFailed(f"step {name!r} has neither run nor uses")
            return output, note, "success"
        except StepFailed as error:
            self.runner._gh_calls()  # what gh did before the step failed happened on GitHub
            if not tolerated:
                self.result.result = "failure"
                self.result.steps.append(StepResult(name, "failure", "failure", str(error)))
                self.result.summary = self.summary.read_text()
                message = f"job {self.job_id!r} failed at step {name!r}:\n{error}"
                raise StepFailed(message) from None
            return str(error), note, "failure"

    def _use(
        self, step: dict[str, Any], name: str, step_env: dict[str, str], runtime: dict[str, str]
    ) -> str:
        """An action's step, by its handler; what the handler noted."""
        with_ = {
            key: interpolate(value, {**self.context, "env": step_env}, self.functions)
            for key, value in (step.get("with") or {}).items()
        }
        handler = self.runner.actions.get(action_name(step["uses"]))
        if handler is None:
            raise StepFailed(
                f"step {name!r}: no local mapping for action "
                f"{action_name(step['uses'])!r}: teach harness/gha/actions.py "
                "what it does, or do not use it"
            )
        before = len(self.job.notes)
        handler(Job(self.runner, self.job_id, self.workspace, runtime, self.job.notes), with_)
        return "; ".join(self.job.notes[before:])

    def _runtime_env(self, step_env: dict[str, str], files: dict[str, Path]) -> dict[str, str]:
        """What the step's process sees: the runner's environment, the step's env, GitHub's."""
        github = self.runner.github
        return {
            **self.runner.base_env,
            **step_env,
            "CI": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_OUTPUT": str(files["GITHUB_OUTPUT"]),
            "GITHUB_ENV": str(files["GITHUB_ENV"]),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_REPOSITORY": github.get("repository", ""),
            "GITHUB_REF": github.get("ref", ""),
            "GITHUB_REF_NAME": github.get("ref_name", ""),
            "GITHUB_SHA": github.get("sha", ""),
            "GITHUB_EVENT_NAME": github.get("event_name", ""),
            "GITHUB_RUN_ID": str(github.get("run_id", "1")),
            "GITHUB_SERVER_URL": github.get("server_url", "https://github.com"),
        }

    def finish(self) -> JobResult:
        """The job's outputs, evaluated after its last step, and its summary."""
        self.context["env"] = dict(self.job.env)
        self.result.outputs = {
            key: as_text(interpolate(value, self.context, self.functions))
            for key, value in (self.spec.get("outputs") or {}).items()
        }
        self.result.summary = self.summary.read_text()
        return self.result
