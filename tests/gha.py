"""GitHub Actions workflows as the tests see them: loaded, their expressions evaluated, and their
jobs run here, step by step, the way a runner would run them.

There is no runner here (no GitHub, no Docker engine for `act`), so `LocalRunner` does what a
runner does with the parts that matter for a workflow's correctness: each job starts from a
fresh clone of the pushed repository, `run:` steps run in bash with the workflow's, the job's
and the step's `env`, step outputs, `GITHUB_ENV` and the job summary work as on GitHub, `if:`
conditions and `continue-on-error` are honoured, and the actions are mapped to what they do
locally (`ACTIONS`). An action with no mapping fails the run: a workflow is never "green" here
because a step was silently skipped.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

GITHUB_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def load_workflow(path: Path) -> dict[str, Any]:
    """The workflow as a dict; YAML 1.1 reads the key `on` as True, GitHub reads it as 'on'."""
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def action_name(uses: str) -> str:
    """'actions/checkout@<sha>' -> 'actions/checkout' (sub-paths kept: 'owner/repo/path')."""
    return uses.split("@", 1)[0]


# --- expressions -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s+|'(?:[^']|'')*'|&&|\|\||==|!=|<=|>=|[<>!(),]|-?\d+(?:\.\d+)?"""
    r"""|[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_*-]+)*"""
)
_CONTEXTS = {
    "github",
    "env",
    "vars",
    "secrets",
    "inputs",
    "steps",
    "needs",
    "runner",
    "job",
    "matrix",
    "strategy",
}
_FUNCTIONS = {
    "always",
    "success",
    "failure",
    "cancelled",
    "hashFiles",
    "contains",
    "startsWith",
    "endsWith",
    "format",
    "toJSON",
    "fromJSON",
}


class ExpressionError(ValueError):
    pass


class _Text(str):
    """A string as GitHub compares it: case-insensitively, and null equals ''."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Null):
            return self == ""
        if isinstance(other, str):
            return self.lower() == other.lower()
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__


class _Null:
    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, _Null) or other == ""

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = object.__hash__


def _wrap(value: Any) -> Any:
    if value is None:
        return _Null()
    if isinstance(value, str):
        return _Text(value)
    return value


def evaluate(
    expression: str, context: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None
) -> Any:
    """Evaluate one GitHub expression (without `${{ }}`) against `context`."""
    pieces: list[str] = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise ExpressionError(f"cannot read {text[position:]!r} in {expression!r}")
        token = match.group(0)
        position = match.end()
        if token.isspace():
            continue
        if token.startswith("'"):
            literal = token[1:-1].replace("''", "'")
            pieces.append(f"_Text({literal!r})")
        elif token == "&&":
            pieces.append(" and ")
        elif token == "||":
            pieces.append(" or ")
        elif token == "!":
            pieces.append(" not ")
        elif token in {"==", "!=", "<=", ">=", "<", ">"}:
            pieces.append(f" {token} ")
        elif token in {"true", "false", "null"}:
            pieces.append({"true": "True", "false": "False", "null": "_Null()"}[token])
        elif token.split(".")[0] in _CONTEXTS:
            pieces.append(f"_get({token!r})")
        elif token in _FUNCTIONS:
            pieces.append(f"_fn_{token}")
        elif token in {"(", ")", ","} or re.fullmatch(r"-?\d+(\.\d+)?", token):
            pieces.append(token)
        else:
            raise ExpressionError(f"unknown name {token!r} in {expression!r}")
    source = "".join(pieces)

    def get(path: str) -> Any:
        value: Any = context
        for part in path.split("."):
            if not isinstance(value, dict):
                return _Null()
            value = value.get(part)
        return _wrap(value)

    names: dict[str, Any] = {"_get": get, "_Text": _Text, "_Null": _Null, "__builtins__": {}}
    for name, function in (functions or {}).items():
        names[f"_fn_{name}"] = function
    try:
        return eval(source, names)  # the source is built from a tokenised expression
    except (NameError, SyntaxError) as error:
        raise ExpressionError(f"{error} in {expression!r} (as {source!r})") from error


def as_text(value: Any) -> str:
    if value is None or isinstance(value, _Null):
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def interpolate(
    text: Any, context: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None
) -> Any:
    """Replace every `${{ ... }}` in a string (other values pass through)."""
    if not isinstance(text, str):
        return text
    return GITHUB_EXPRESSION.sub(lambda m: as_text(evaluate(m.group(1), context, functions)), text)


def condition(text: Any, context: dict[str, Any], functions: dict[str, Callable[..., Any]]) -> bool:
    """An `if:`: an expression with or without `${{ }}`; status functions default to success()."""
    if text is None:
        text = "success()"
    if isinstance(text, bool):
        return text
    text = str(text).strip()
    whole = GITHUB_EXPRESSION.fullmatch(text)
    if whole:
        text = whole.group(1)
    if not re.search(r"\b(always|success|failure|cancelled)\(", text):
        text = f"success() && ({text})"
    return bool(evaluate(text, context, functions))


# --- running jobs ------------------------------------------------------------------------------


@dataclass
class StepResult:
    name: str
    outcome: str  # success | failure | skipped
    conclusion: str
    output: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class JobResult:
    job_id: str
    result: str  # success | failure | skipped
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    workspace: Path | None = None

    def step(self, name_part: str) -> StepResult:
        for step in self.steps:
            if name_part in step.name:
                return step
        raise KeyError(f"no step named like {name_part!r} in job {self.job_id}")


class StepFailed(AssertionError):
    pass


@dataclass
class Job:
    """What a step handler sees of the job it runs in."""

    runner: LocalRunner
    job_id: str
    workspace: Path
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)


def _parse_file_commands(path: Path) -> dict[str, str]:
    """name=value lines and name<<DELIMITER blocks, as GITHUB_OUTPUT and GITHUB_ENV hold them."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            index += 1
            while index < len(lines) and lines[index] != delimiter:
                block.append(lines[index])
                index += 1
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        index += 1
    return values


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
    ) -> None:
        self.origin = origin
        self.workdir = workdir
        self.base_env = base_env
        self.github = github
        self.variables = variables or {}
        self.secrets = secrets or {}
        self.inputs = inputs or {}
        self.actions = dict(ACTIONS if actions is None else actions)
        self.step_timeout = step_timeout
        self.artifacts = workdir / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)

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

    # -- one job --------------------------------------------------------------------------------

    def run_job(
        self, workflow: dict[str, Any], job_id: str, results: dict[str, JobResult]
    ) -> JobResult:
        spec = workflow["jobs"][job_id]
        needs_ids = spec.get("needs", [])
        needs_ids = [needs_ids] if isinstance(needs_ids, str) else needs_ids
        needs = {n: {"result": results[n].result, "outputs": results[n].outputs} for n in needs_ids}
        context: dict[str, Any] = {
            "github": self.github,
            "vars": self.variables,
            "secrets": self.secrets,
            "inputs": self.inputs,
            "needs": needs,
            "env": {},
            "steps": {},
            "runner": {"os": "Linux", "temp": str(self.workdir / "runner-temp")},
        }
        job_failed = False
        functions = {
            "always": lambda: True,
            "cancelled": lambda: False,
            "success": lambda: (
                not job_failed and all(r["result"] == "success" for r in needs.values())
            ),
            "failure": lambda: job_failed or any(r["result"] == "failure" for r in needs.values()),
            "hashFiles": lambda *patterns: "0" * 64,
            "contains": lambda haystack, needle: str(needle).lower() in str(haystack).lower(),
            "startsWith": lambda text, prefix: str(text).lower().startswith(str(prefix).lower()),
            "endsWith": lambda text, suffix: str(text).lower().endswith(str(suffix).lower()),
            "format": lambda template, *args: re.sub(
                r"\{(\d+)\}", lambda m: as_text(args[int(m.group(1))]), template
            ),
            "toJSON": json.dumps,
            "fromJSON": json.loads,
        }
        if not condition(spec.get("if"), context, functions):
            return JobResult(job_id, "skipped")

        workspace = self.workdir / job_id
        if workspace.exists():
            shutil.rmtree(workspace)
        workspace.mkdir(parents=True)
        temp = self.workdir / "runner-temp" / job_id
        temp.mkdir(parents=True, exist_ok=True)
        summary = temp / "step_summary.md"
        summary.touch()

        env: dict[str, str] = {}
        for scope in (workflow.get("env") or {}, spec.get("env") or {}):
            for key, value in scope.items():
                context["env"] = dict(env)
                env[key] = as_text(interpolate(value, context, functions))
        context["env"] = dict(env)
        job = Job(self, job_id, workspace, env)
        result = JobResult(job_id, "success", workspace=workspace)

        for index, step in enumerate(spec["steps"]):
            name = step.get("name") or step.get("uses") or step.get("run", "")[:40]
            step_id = step.get("id", f"__step{index}")
            context["env"] = dict(job.env)
            if not condition(step.get("if"), context, functions):
                result.steps.append(StepResult(name, "skipped", "skipped"))
                context["steps"][step_id] = {
                    "outcome": "skipped",
                    "conclusion": "skipped",
                    "outputs": {},
                }
                continue
            step_env = dict(job.env)
            for key, value in (step.get("env") or {}).items():
                step_env[key] = as_text(interpolate(value, {**context, "env": step_env}, functions))
            outputs_file = temp / f"output_{index}"
            env_file = temp / f"env_{index}"
            for path in (outputs_file, env_file):
                path.write_text("")
            runtime_env = {
                **self.base_env,
                **step_env,
                "CI": "true",
                "GITHUB_WORKSPACE": str(workspace),
                "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_OUTPUT": str(outputs_file),
                "GITHUB_ENV": str(env_file),
                "RUNNER_TEMP": str(temp),
                "GITHUB_REPOSITORY": self.github.get("repository", ""),
                "GITHUB_REF": self.github.get("ref", ""),
                "GITHUB_REF_NAME": self.github.get("ref_name", ""),
                "GITHUB_SHA": self.github.get("sha", ""),
                "GITHUB_EVENT_NAME": self.github.get("event_name", ""),
                "GITHUB_RUN_ID": str(self.github.get("run_id", "1")),
                "GITHUB_SERVER_URL": self.github.get("server_url", "https://github.com"),
            }
            output = ""
            note = ""
            try:
                if "run" in step:
                    output = self._run_script(step, runtime_env, workspace, name)
                elif "uses" in step:
                    with_ = {
                        key: interpolate(value, {**context, "env": step_env}, functions)
                        for key, value in (step.get("with") or {}).items()
                    }
                    handler = self.actions.get(action_name(step["uses"]))
                    if handler is None:
                        raise StepFailed(
                            f"step {name!r}: no local mapping for action "
                            f"{action_name(step['uses'])!r}: teach tests/gha.py "
                            "what it does, or do not use it"
                        )
                    before = len(job.notes)
                    handler(Job(self, job_id, workspace, runtime_env, job.notes), with_)
                    note = "; ".join(job.notes[before:])
                else:
                    raise StepFailed(f"step {name!r} has neither run nor uses")
                outcome = "success"
            except StepFailed as error:
                if not step.get("continue-on-error"):
                    result.result = "failure"
                    result.steps.append(StepResult(name, "failure", "failure", str(error)))
                    result.summary = summary.read_text()
                    raise StepFailed(f"job {job_id!r} failed at step {name!r}:\n{error}") from None
                output, outcome = str(error), "failure"
            step_outputs = _parse_file_commands(outputs_file)
            job.env.update(_parse_file_commands(env_file))
            conclusion = "success" if step.get("continue-on-error") else outcome
            result.steps.append(StepResult(name, outcome, conclusion, output, step_outputs, note))
            context["steps"][step_id] = {
                "outcome": outcome,
                "conclusion": conclusion,
                "outputs": step_outputs,
            }
            if outcome == "failure" and not step.get("continue-on-error"):
                job_failed = True

        context["env"] = dict(job.env)
        result.outputs = {
            key: as_text(interpolate(value, context, functions))
            for key, value in (spec.get("outputs") or {}).items()
        }
        result.summary = summary.read_text()
        return result

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


# --- what the known actions do here -------------------------------------------------------------


def _checkout(job: Job, with_: dict[str, Any]) -> None:
    if str(with_.get("persist-credentials", "true")).lower() != "false":
        raise StepFailed("actions/checkout without persist-credentials: false")
    depth = int(with_.get("fetch-depth", 1))
    github = job.runner.github
    command = ["git", "clone", "--quiet"]
    if depth:
        command += ["--depth", str(depth)]
    ref = github.get("ref", "")
    if ref.startswith(("refs/heads/", "refs/tags/")):
        command += ["--branch", ref.split("/", 2)[2]]
    command += [f"file://{job.runner.origin}", str(job.workspace)]
    shutil.rmtree(job.workspace)
    subprocess.run(command, check=True, capture_output=True, text=True)
    job.notes.append(f"cloned {ref or 'the default branch'} (depth {depth or 'all'})")


def _noop(reason: str) -> Callable[[Job, dict[str, Any]], None]:
    def handler(job: Job, with_: dict[str, Any]) -> None:
        job.notes.append(reason)

    return handler


def _upload_artifact(job: Job, with_: dict[str, Any]) -> None:
    name = with_.get("name", "artifact")
    files: list[Path] = []
    for pattern in str(with_["path"]).split("\n"):
        pattern = pattern.strip()
        if not pattern:
            continue
        target = job.workspace / pattern
        if target.is_dir():
            files += [p for p in target.rglob("*") if p.is_file()]
        else:
            files += [p for p in job.workspace.glob(pattern) if p.is_file()]
    if not files:
        if with_.get("if-no-files-found", "warn") == "error":
            raise StepFailed(f"artifact {name!r}: no file matches {with_['path']!r}")
        job.notes.append(f"artifact {name!r}: nothing to upload")
        return
    # Like upload-artifact: paths are kept relative to the files' least common ancestor.
    root = Path(os.path.commonpath([str(p.parent) for p in files]))
    store = job.runner.artifacts / name
    if store.exists():
        raise StepFailed(f"artifact {name!r} uploaded twice")
    for path in files:
        destination = store / path.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    job.notes.append(f"artifact {name!r}: {len(files)} file(s)")


def _download_artifact(job: Job, with_: dict[str, Any]) -> None:
    name = with_["name"]
    store = job.runner.artifacts / name
    if not store.exists():
        raise StepFailed(f"artifact {name!r} was not uploaded by an earlier job")
    destination = job.workspace / with_.get("path", ".")
    shutil.copytree(store, destination, dirs_exist_ok=True)
    job.notes.append(f"artifact {name!r} -> {with_.get('path', '.')}")


def _docker_build(job: Job, with_: dict[str, Any]) -> None:
    """No Docker engine here: check what the build reads, then record that it did not run.

    The image itself is built and run by the container tests (podman); this checks that the
    workflow points the build at a Dockerfile that exists and that every file its COPY lines
    take from the context is in the job's workspace at this point.
    """
    context = job.workspace / with_.get("context", ".")
    dockerfile = job.workspace / with_.get("file", "Dockerfile")
    if not dockerfile.is_file():
        raise StepFailed(f"no Dockerfile at {dockerfile.relative_to(job.workspace)}")
    for line in dockerfile.read_text().splitlines():
        words = shlex.split(line.split("#", 1)[0]) if line.strip().startswith("COPY") else []
        if not words or any(word.startswith("--from") for word in words):
            continue
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        for source in sources:
            if not list(context.glob(source.rstrip("/"))):
                raise StepFailed(f"the Dockerfile copies {source!r}, missing from the context")
    pushed = (
        " and pushed as " + ", ".join(str(with_.get("tags", "")).split())
        if str(with_.get("push", "false")).lower() == "true"
        else ""
    )
    job.notes.append(
        f"image build{pushed} not run: no Docker engine here (the Dockerfile and every "
        "file it copies are present)"
    )


def _docker_metadata(job: Job, with_: dict[str, Any]) -> None:
    """The image tags docker/metadata-action computes, for the `tags:` kinds the workflows use."""
    github = job.runner.github
    ref, ref_name = github.get("ref", ""), github.get("ref_name", "")
    is_tag = ref.startswith("refs/tags/")
    tags: list[str] = []
    for line in str(with_.get("tags", "")).splitlines():
        if not line.strip():
            continue
        spec = dict(part.split("=", 1) for part in line.strip().split(","))
        kind = spec.pop("type")
        if kind == "ref" and spec == {"event": "tag"}:
            tag = ref_name if is_tag else None
        elif kind == "match":
            found = re.search(spec["pattern"], ref_name) if is_tag else None
            tag = found.group(int(spec.get("group", 0))) if found else None
        elif kind == "sha" and spec.get("format") == "long":
            tag = f"sha-{github['sha']}"
        else:
            raise StepFailed(f"docker/metadata-action: {line.strip()!r} is not mapped here")
        if tag:
            tags.append(re.sub(r"[^a-zA-Z0-9._-]+", "-", tag))
    images = [image.strip().lower() for image in str(with_["images"]).split("\n") if image.strip()]
    lines = [f"{image}:{tag}" for image in images for tag in dict.fromkeys(tags)]
    with open(job.env["GITHUB_OUTPUT"], "a") as outputs:
        outputs.write("tags<<EOF\n" + "\n".join(lines) + "\nEOF\n")
        outputs.write("labels<<EOF\norg.opencontainers.image.revision=" + github["sha"] + "\nEOF\n")
    job.notes.append("tags: " + ", ".join(lines))


def _create_pull_request(job: Job, with_: dict[str, Any]) -> None:
    """What peter-evans/create-pull-request would propose: the changed files among add-paths."""
    body = with_.get("body-path")
    if body and not (job.workspace / body).is_file():
        raise StepFailed(f"create-pull-request: no body file {body}")
    paths = [p.strip() for p in str(with_.get("add-paths", ".")).splitlines() if p.strip()]
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", *paths],
        cwd=job.workspace,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    changed = [line[3:] for line in status.splitlines()]
    job.notes.append(
        f"pull request {with_.get('title')!r} with {', '.join(changed)}"
        if changed
        else "no change in add-paths: no pull request"
    )


ACTIONS: dict[str, Callable[[Job, dict[str, Any]], None]] = {
    "actions/checkout": _checkout,
    "astral-sh/setup-uv": _noop("uv from the test environment"),
    "actions/setup-python": _noop("Python from the test environment"),
    "actions/cache": _noop("no cache restored (a cold cache)"),
    "actions/upload-artifact": _upload_artifact,
    "actions/download-artifact": _download_artifact,
    "docker/setup-buildx-action": _noop("no Docker engine here"),
    "docker/build-push-action": _docker_build,
    "docker/metadata-action": _docker_metadata,
    "docker/login-action": _noop("not logged in: no registry here"),
    "peter-evans/create-pull-request": _create_pull_request,
}
