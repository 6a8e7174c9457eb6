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

import hashlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
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
    owner, name = repository.split("/", 1)
    repo = {
        "name": name,
        "full_name": repository,
        "owner": {"login": owner},
        "default_branch": default_branch,
    }
    sender = {"login": owner}
    if event_name == "schedule":
        return {"schedule": cron, "workflow": workflow}
    if event_name == "push":
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
            "repository": repo,
            "sender": sender,
        }
    if event_name == "pull_request":
        return {
            "action": "synchronize",
            "number": 1,
            "pull_request": {
                "number": 1,
                "head": {"ref": "feature", "sha": sha},
                "base": {"ref": default_branch, "sha": sha},
            },
            "repository": repo,
            "sender": sender,
        }
    if event_name == "workflow_dispatch":
        return {
            "inputs": dict(inputs or {}),
            "ref": ref,
            "repository": repo,
            "sender": sender,
            "workflow": workflow,
        }
    if event_name == "repository_dispatch":
        return {
            "action": "dispatch",
            "branch": default_branch,
            "client_payload": {},
            "repository": repo,
            "sender": sender,
        }
    raise ValueError(f"no payload known for the event {event_name!r}: add it to harness/gha.py")


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


# --- expressions -------------------------------------------------------------------------------
# GitHub's expression language as documented ("Evaluate expressions in workflows and actions"):
# literals, property access (case-insensitive; `*` filters), index, `!`, comparisons, `==`/`!=`
# with loose typing, `&&`/`||` returning an operand, and the documented functions. Values are
# Python's None, bool, int or float, str, list and dict.

_TOKEN = re.compile(
    r"""(?P<space>\s+)"""
    r"""|(?P<string>'(?:[^']|'')*')"""
    r"""|(?P<number>-?(?:0x[0-9a-fA-F]+|0o[0-7]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))"""
    r"""|(?P<operator>&&|\|\||==|!=|<=|>=|[<>!()\[\],.*])"""
    r"""|(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"""
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
    "jobs",
    "matrix",
    "strategy",
}


class ExpressionError(ValueError):
    pass


class _Filtered(list):
    """The result of an object filter (`x.*`): a further `.name` applies to each element."""


def _number(value: Any) -> float:
    """A value as GitHub casts it to a number: null 0, booleans 1 and 0, strings parsed as a JSON
    number (also hex, octal; '' is 0), anything else NaN."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        try:
            return _parse_number(text)
        except ValueError:
            return math.nan
    return math.nan


def _parse_number(text: str) -> float:
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    lowered = digits.lower()
    if lowered.startswith("0x"):
        return sign * int(digits[2:], 16)
    if lowered.startswith("0o"):
        return sign * int(digits[2:], 8)
    if lowered in {"infinity", "nan"}:
        return sign * float(lowered)
    if not re.fullmatch(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", digits):
        raise ValueError(text)
    number = float(digits)
    return sign * (int(number) if number.is_integer() and abs(number) < 2**53 else number)


def _string(value: Any) -> str:
    """A value as GitHub casts it to a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"
    if isinstance(value, str):
        return value
    return "Array" if isinstance(value, list) else "Object"


def _truthy(value: Any) -> bool:
    """Falsy: false, 0, -0, '', null (and NaN); arrays and objects are truthy, even empty."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return not (value == 0 or math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _fold(text: str) -> str:
    """Strings compare ignoring case, as in upper case ('a' < '[' as 'A' < '[' does)."""
    return text.upper()


def _equal(left: Any, right: Any) -> bool:
    kind = _kind(left)
    if kind != _kind(right):
        return _number(left) == _number(right)  # NaN equals nothing
    if kind == "string":
        return _fold(left) == _fold(right)
    if kind in {"array", "object"}:
        return left is right  # only the same instance
    return left == right


def _less(left: Any, right: Any) -> bool | None:
    """left < right as GitHub compares; None when the values do not compare (NaN, objects)."""
    kind = _kind(left)
    if kind == _kind(right) == "string":
        return _fold(left) < _fold(right)
    if kind in {"array", "object"} or _kind(right) in {"array", "object"}:
        return None
    a, b = _number(left), _number(right)
    return None if math.isnan(a) or math.isnan(b) else a < b


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator == "==":
        return _equal(left, right)
    if operator == "!=":
        return not _equal(left, right)
    if _kind(left) not in {"array", "object"} and _equal(left, right):
        return operator in {"<=", ">="}
    if operator in {"<", "<="}:
        return bool(_less(left, right))
    return bool(_less(right, left))


def _lookup(value: Any, key: Any) -> Any:
    """value.key or value[key]: case-insensitive for objects, null when missing."""
    if isinstance(value, _Filtered):
        found = [_lookup(item, key) for item in value]
        return _Filtered(item for item in found if item is not None)
    if isinstance(value, dict):
        if isinstance(key, str):
            for name, item in value.items():
                if name.lower() == key.lower():
                    return item
        return None
    if isinstance(value, list) and not isinstance(key, (str, bool)):
        index = _number(key)
        if not math.isnan(index) and float(index).is_integer() and 0 <= index < len(value):
            return value[int(index)]
    return None


def _filter(value: Any) -> Any:
    if isinstance(value, _Filtered):
        return _Filtered(x for item in value for x in (_filter(item) or []))
    if isinstance(value, dict):
        return _Filtered(value.values())
    if isinstance(value, list):
        return _Filtered(value)
    return _Filtered()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, _Filtered) else value


def _contains(search: Any, item: Any) -> bool:
    if isinstance(search, list):
        return any(_equal(element, item) for element in search)
    return _fold(_string(item)) in _fold(_string(search))


def _format(template: Any, *args: Any) -> str:
    text, out, index = _string(template), [], 0
    while index < len(text):
        char = text[index]
        if text.startswith(("{{", "}}"), index):
            out.append(char)
            index += 2
        elif char == "{":
            match = re.match(r"\{(\d+)\}", text[index:])
            if not match:
                raise ExpressionError(f"format: invalid format string {text!r}")
            position = int(match.group(1))
            if position >= len(args):
                raise ExpressionError(f"format: {{{position}}} but {len(args)} argument(s)")
            out.append(_string(args[position]))
            index += match.end()
        elif char == "}":
            raise ExpressionError(f"format: invalid format string {text!r}")
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _join(values: Any, separator: Any = ",") -> str:
    if isinstance(separator, (list, dict)):
        separator = ","
    if isinstance(values, list):
        return _string(separator).join(_string(value) for value in values)
    return "" if isinstance(values, dict) else _string(values)


def _to_json(value: Any) -> str:
    def plain(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {key: plain(v) for key, v in item.items()}
        if isinstance(item, list):
            return [plain(v) for v in item]
        return item

    return json.dumps(plain(value), indent=2, ensure_ascii=False)


def _from_json(text: Any) -> Any:
    try:
        return json.loads(_string(text))
    except json.JSONDecodeError as error:
        raise ExpressionError(f"fromJSON: {error}") from None


def hash_files(workspace: Path, *patterns: str) -> str:
    """hashFiles: a SHA-256 over the SHA-256 of each file the patterns match (relative to the
    workspace, `!` excluding), in path order; '' when none matches."""
    matched: set[Path] = set()
    for pattern in patterns:
        negate = pattern.startswith("!")
        found = {p for p in workspace.glob(pattern.lstrip("!").lstrip("/")) if p.is_file()}
        matched = matched - found if negate else matched | found
    if not matched:
        return ""
    total = hashlib.sha256()
    for path in sorted(matched):
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "contains": _contains,
    "startsWith": lambda text, prefix: _fold(_string(text)).startswith(_fold(_string(prefix))),
    "endsWith": lambda text, suffix: _fold(_string(text)).endswith(_fold(_string(suffix))),
    "format": _format,
    "join": _join,
    "toJSON": _to_json,
    "fromJSON": _from_json,
}
_STATUS = ("always", "success", "failure", "cancelled")


def _logical(operator: str, left: Callable[[], Any], right: Callable[[], Any]) -> Callable[[], Any]:
    """a || b is a when a is truthy, else b; a && b is b when a is truthy, else a."""

    def node() -> Any:
        value = left()
        return value if _truthy(value) == (operator == "||") else right()

    return node


def _comparison(
    operator: str, left: Callable[[], Any], right: Callable[[], Any]
) -> Callable[[], Any]:
    return lambda: _compare(operator, _plain(left()), _plain(right()))


class _Parser:
    """Recursive descent, lowest precedence first: || && (== !=) (< <= > >=) ! then property
    access, index and calls. Parsing builds closures, so && and || evaluate lazily."""

    def __init__(
        self, expression: str, context: dict[str, Any], functions: dict[str, Callable[..., Any]]
    ) -> None:
        self.expression = expression
        self.context = {name.lower(): value for name, value in context.items()}
        self.functions = {name.lower(): f for name, f in {**FUNCTIONS, **functions}.items()}
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(expression):
            match = _TOKEN.match(expression, position)
            if not match:
                raise self.error(f"cannot read {expression[position:]!r}")
            position = match.end()
            if match.lastgroup != "space":
                self.tokens.append((match.lastgroup or "", match.group(0)))
        self.position = 0

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(f"{message} in {self.expression!r}")

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise self.error("unexpected end")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise self.error(f"expected {expected!r}, found {token[1]!r}")
        self.position += 1
        return token

    def parse(self) -> Callable[[], Any]:
        node = self.or_()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()!r}")
        return node

    def or_(self) -> Callable[[], Any]:
        return self.logical("||", self.and_)

    def and_(self) -> Callable[[], Any]:
        return self.logical("&&", self.equality)

    def logical(self, operator: str, operand: Callable[[], Callable[[], Any]]) -> Callable[[], Any]:
        node = operand()
        while self.peek() == operator:
            self.take()
            node = _logical(operator, node, operand())
        return node

    def binary(
        self, operators: set[str], operand: Callable[[], Callable[[], Any]]
    ) -> Callable[[], Any]:
        node = operand()
        while self.peek() in operators:
            operator = self.take()[1]
            node = _comparison(operator, node, operand())
        return node

    def equality(self) -> Callable[[], Any]:
        return self.binary({"==", "!="}, self.comparison)

    def comparison(self) -> Callable[[], Any]:
        return self.binary({"<", "<=", ">", ">="}, self.unary)

    def unary(self) -> Callable[[], Any]:
        if self.peek() == "!":
            self.take()
            operand = self.unary()
            return lambda: not _truthy(operand())
        return self.postfix()

    def postfix(self) -> Callable[[], Any]:
        node = self.primary()
        while self.peek() in {".", "["}:
            if self.take()[1] == ".":
                kind, name = self.take()
                if name == "*":
                    node = lambda node=node: _filter(node())  # noqa: E731
                elif kind == "name":
                    node = lambda node=node, name=name: _lookup(node(), name)  # noqa: E731
                else:
                    raise self.error(f"unexpected {name!r} after '.'")
            elif self.peek() == "*":
                self.take()
                self.take("]")
                node = lambda node=node: _filter(node())  # noqa: E731
            else:
                index = self.or_()
                self.take("]")
                node = lambda node=node, index=index: _lookup(node(), _plain(index()))  # noqa: E731
        return node

    def primary(self) -> Callable[[], Any]:
        kind, text = self.take()
        if kind == "string":
            value = text[1:-1].replace("''", "'")
            return lambda: value
        if kind == "number":
            number = _parse_number(text)
            return lambda: number
        if text == "(":
            node = self.or_()
            self.take(")")
            return node
        if kind != "name":
            raise self.error(f"unexpected {text!r}")
        if text in {"true", "false", "null"}:
            constant = {"true": True, "false": False, "null": None}[text]
            return lambda: constant
        if self.peek() == "(":
            return self.call(text)
        if text.lower() not in _CONTEXTS:
            raise self.error(f"unknown context {text!r}")
        return lambda: self.context.get(text.lower())

    def call(self, name: str) -> Callable[[], Any]:
        function = self.functions.get(name.lower())
        if function is None:
            raise self.error(f"unknown function {name!r}")
        self.take("(")
        args: list[Callable[[], Any]] = []
        while self.peek() != ")":
            if args:
                self.take(",")
            args.append(self.or_())
        self.take(")")
        return lambda: function(*(_plain(arg()) for arg in args))


def evaluate(
    expression: str, context: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None
) -> Any:
    """Evaluate one GitHub expression (without `${{ }}`) against `context`; `functions` adds or
    replaces functions (the status functions and hashFiles, which need a job)."""
    return _plain(_Parser(expression.strip(), context, functions or {}).parse()())


def as_text(value: Any) -> str:
    """An expression's value where a string is needed (an `${{ }}` inside text, an env value)."""
    if isinstance(value, (dict, list)):
        return _to_json(value)
    return _string(value)


def interpolate(
    text: Any, context: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None
) -> Any:
    """Replace every `${{ ... }}` in a string (other values pass through)."""
    if not isinstance(text, str):
        return text
    return GITHUB_EXPRESSION.sub(lambda m: as_text(evaluate(m.group(1), context, functions)), text)


def flag(value: Any, context: dict[str, Any]) -> bool:
    """A boolean setting that may be an expression (`continue-on-error: ${{ ... }}`)."""
    if isinstance(value, str):
        whole = GITHUB_EXPRESSION.fullmatch(value.strip())
        value = evaluate(whole.group(1), context) if whole else value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return _truthy(value)


def condition(text: Any, context: dict[str, Any], functions: dict[str, Callable[..., Any]]) -> bool:
    """An `if:`: an expression with or without `${{ }}`; without a status function in it,
    `success() && (...)` is implied."""
    if text is None:
        text = "success()"
    if isinstance(text, bool):
        return text
    text = str(text).strip()
    whole = GITHUB_EXPRESSION.fullmatch(text)
    if whole:
        text = whole.group(1)
    if not re.search(rf"\b({'|'.join(_STATUS)})\s*\(", text, re.IGNORECASE):
        text = f"success() && ({text})"
    return _truthy(evaluate(text, context, functions))


# --- the GitHub side: pull requests, and the workflows an event starts ---------------------------
# What GitHub does around a run that a workflow's correctness depends on, as documented:
# - An event made with a job's GITHUB_TOKEN starts no workflow, except workflow_dispatch and
#   repository_dispatch ("Triggering a workflow from a workflow"). Any other token (a personal
#   access token, a GitHub App's) starts workflows as a person's action does.
# - GITHUB_TOKEN never has the `workflows` permission: a push with it that creates or changes a
#   file under .github/workflows/ is refused.
# - Draft pull requests need a public repository or a paid plan: in a private repository on a
#   free plan, opening a draft (or converting to one) fails.
# - A workflow runs from the files at the event's ref; a dispatch needs the workflow to exist
#   there with a `workflow_dispatch` trigger.

TOKEN_EXEMPT_EVENTS = {"workflow_dispatch", "repository_dispatch"}
DRAFTS_UNAVAILABLE = "Draft pull requests are not supported in this repository."
WORKFLOWS_REFUSED = (
    "refusing to allow a GitHub App to create or update workflow `{path}` without `workflows` "
    "permission"
)


@dataclass
class Event:
    name: str  # push, pull_request, workflow_dispatch, ...
    ref: str  # the ref the workflows run from (a pull request's: its head branch)
    by_github_token: bool  # made with a job's GITHUB_TOKEN
    action: str = ""  # pull_request: opened, synchronize, ...
    workflow: str = ""  # workflow_dispatch: the workflow file's name
    base: str = ""  # pull_request: the base branch (what its branch filters match)


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
        if gh:  # harness/gh_stand_in.py as `gh`, first on PATH
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
        workspace = self.workdir / job_id
        # In a job's `if:`, the status functions look at the jobs it needs (failure(): at any
        # ancestor); in a step's, at the job's earlier steps only.
        ancestors = [
            results[a].result for a in self._ancestors(workflow["jobs"], job_id) if a in results
        ]
        job_status = {
            "always": lambda: True,
            "cancelled": lambda: False,
            "success": lambda: all(r["result"] == "success" for r in needs.values()),
            "failure": lambda: "failure" in ancestors,
        }
        functions = {
            "always": lambda: True,
            "cancelled": lambda: False,
            "success": lambda: not job_failed,
            "failure": lambda: job_failed,
            "hashFiles": lambda *patterns: hash_files(workspace, *patterns),
        }
        if not condition(spec.get("if"), context, job_status):
            return JobResult(job_id, "skipped")

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
            self._gh_state()
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
            tolerated = flag(step.get("continue-on-error", False), {**context, "env": step_env})
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
                            f"{action_name(step['uses'])!r}: teach harness/gha.py "
                            "what it does, or do not use it"
                        )
                    before = len(job.notes)
                    handler(Job(self, job_id, workspace, runtime_env, job.notes), with_)
                    note = "; ".join(job.notes[before:])
                else:
                    raise StepFailed(f"step {name!r} has neither run nor uses")
                outcome = "success"
            except StepFailed as error:
                self._gh_calls()  # what gh did before the step failed happened on GitHub
                if not tolerated:
                    result.result = "failure"
                    result.steps.append(StepResult(name, "failure", "failure", str(error)))
                    result.summary = summary.read_text()
                    raise StepFailed(f"job {job_id!r} failed at step {name!r}:\n{error}") from None
                output, outcome = str(error), "failure"
            self._gh_calls()
            step_outputs = _parse_file_commands(outputs_file)
            job.env.update(_parse_file_commands(env_file))
            conclusion = "success" if tolerated else outcome
            result.steps.append(StepResult(name, outcome, conclusion, output, step_outputs, note))
            context["steps"][step_id] = {
                "outcome": outcome,
                "conclusion": conclusion,
                "outputs": step_outputs,
            }
            if outcome == "failure" and not tolerated:
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
    """The image tags docker/metadata-action computes, for the `tags:` kinds the workflows use,
    and its `latest` flavor: `latest=auto` (the default) adds `latest` on every tag push that
    a `type=ref,event=tag` or `type=match` entry tags; `true` always adds it, `false` never."""
    github = job.runner.github
    ref, ref_name = github.get("ref", ""), github.get("ref_name", "")
    is_tag = ref.startswith("refs/tags/")
    flavor = dict(
        line.strip().split("=", 1)
        for line in str(with_.get("flavor", "")).splitlines()
        if line.strip()
    )
    latest = flavor.pop("latest", "auto")
    if flavor or latest not in {"auto", "true", "false"}:
        raise StepFailed(f"docker/metadata-action: flavor {with_.get('flavor')!r} not mapped here")
    auto_latest = False
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
            auto_latest = auto_latest or kind in {"ref", "match"}
    if latest == "true" or (latest == "auto" and auto_latest):
        tags.append("latest")
    images = [image.strip().lower() for image in str(with_["images"]).split("\n") if image.strip()]
    lines = [f"{image}:{tag}" for image in images for tag in dict.fromkeys(tags)]
    with open(job.env["GITHUB_OUTPUT"], "a") as outputs:
        outputs.write("tags<<EOF\n" + "\n".join(lines) + "\nEOF\n")
        outputs.write("labels<<EOF\norg.opencontainers.image.revision=" + github["sha"] + "\nEOF\n")
    job.notes.append("tags: " + ", ".join(lines))


BOT_COMMITTER = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")


def _create_pull_request(job: Job, with_: dict[str, Any]) -> None:
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
