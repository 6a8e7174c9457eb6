"""`make bump`: move every pin of the generated project that Dependabot cannot see (they sit in
the template's sources, not in a project) to the newest release, read from where CI reaches:

- the GitHub Actions in the generated workflows (template/.github/workflows/ and the snippet in
  includes/): `uses: owner/repo@<sha> # vX.Y.Z`, the SHA and its version comment together,
  from GitHub's API (the latest release's tag, resolved to a commit);
- the pre-commit hooks in template/.pre-commit-config.yaml installed from PyPI
  (`additional_dependencies: ["name==X.Y.Z"]`), from PyPI's JSON API;
- uv in template/Dockerfile.jinja (`ARG UV_VERSION=X.Y.Z`), from PyPI's JSON API;
- the tools the generated Makefile runs with `uv tool run --from name==X.Y.Z` (kubectl and
  kubernetes-validate for the deployment's checks), from PyPI's JSON API.

A source that cannot be reached is said so, and its pins are left as they are; with --strict
(the weekly upstream workflow) that makes the command fail, so a silent skip cannot pass there.
GitHub's rate limit (a 403 or 429 saying so: 60 requests an hour without a token, so set
GH_TOKEN) is not a source out of reach: its pins are left and it is said, but --strict passes.
--dry-run says what would change and writes nothing.

Usage: python scripts/bump.py [--dry-run] [--strict]
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYPI = "https://pypi.org/pypi/{name}/json"
GITHUB = "https://api.github.com/repos/{repo}/{path}"
ACTION_PIN = re.compile(r"(uses:\s+)([\w.-]+/[\w.-]+)((?:/[\w./-]+)?)@([0-9a-f]{40})(\s+#\s*)(\S+)")
# Each pattern names the package (`name`, or uv for UV_PIN) and the `version` it pins.
HOOK_PIN = re.compile(r"""(["'])(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^"']+)\1""")
UV_PIN = re.compile(r"^ARG UV_VERSION=(?P<version>\S+)$", re.MULTILINE)
TOOL_PIN = re.compile(r"--from (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s\"']+)")
VERSION_TAG = re.compile(r"v\d+(\.\d+){1,2}")

Fetch = Callable[[str], Any]


class Unreachable(Exception):
    """The source did not answer (no network to it, or an error status)."""


class RateLimited(Exception):
    """GitHub's API answered, refusing more requests for now (its rate limit)."""


def is_rate_limit(error: urllib.error.HTTPError) -> bool:
    """GitHub's rate limits: 429, or 403 with no requests left or a Retry-After."""
    headers = error.headers or {}
    return error.code == 429 or (
        error.code == 403
        and (headers.get("X-RateLimit-Remaining") == "0" or "Retry-After" in headers)
    )


def fetch_json(url: str) -> Any:
    headers = {"Accept": "application/json", "User-Agent": "copier-mlops-bump"}
    token = os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if token and url.startswith("https://api.github.com/"):
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=20) as r:
            return json.load(r)
    except urllib.error.HTTPError as error:
        if url.startswith("https://api.github.com/") and is_rate_limit(error):
            reset = (error.headers or {}).get("X-RateLimit-Reset", "")
            raise RateLimited(f"{url}: HTTP {error.code}, rate limit (reset {reset})") from None
        raise Unreachable(f"{url}: {error}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
        raise Unreachable(f"{url}: {error}") from None


@dataclass
class Report:
    changes: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    rate_limited: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def newest_on_pypi(name: str, fetch: Fetch) -> str:
    return str(fetch(PYPI.format(name=name))["info"]["version"])


def newest_action(repo: str, fetch: Fetch) -> tuple[str, str]:
    """The latest release's tag of `repo`, and the commit it points to."""
    tag = str(fetch(GITHUB.format(repo=repo, path="releases/latest"))["tag_name"])
    target = fetch(GITHUB.format(repo=repo, path=f"git/ref/tags/{tag}"))["object"]
    while target["type"] == "tag":  # an annotated tag: follow it to its commit
        target = fetch(GITHUB.format(repo=repo, path=f"git/tags/{target['sha']}"))["object"]
    return tag, str(target["sha"])


def bump_actions(paths: list[Path], fetch: Fetch, report: Report) -> dict[Path, str]:
    texts = {path: path.read_text() for path in paths}
    repos = sorted({m.group(2) for text in texts.values() for m in ACTION_PIN.finditer(text)})
    newest: dict[str, tuple[str, str]] = {}
    for repo in repos:
        try:
            tag, sha = newest_action(repo, fetch)
        except Unreachable as error:
            report.unreachable.append(
                f"GitHub (api.github.com) cannot be reached from here ({error}): the action pins "
                "in the generated workflows are left as they are; CI on GitHub's runners reaches it"
            )
            return {}
        except RateLimited as error:
            report.rate_limited.append(
                f"GitHub's API rate limit ({error}): the action pins in the generated workflows "
                "are left as they are; set GH_TOKEN for a higher limit"
            )
            return {}
        if not VERSION_TAG.fullmatch(tag):
            report.notes.append(f"{repo}: latest release {tag!r} is not vX.Y.Z: left as it is")
            continue
        newest[repo] = (tag, sha)

    def replace(match: re.Match[str]) -> str:
        uses, repo, subpath, sha, hash_, comment = match.groups()
        if repo not in newest or newest[repo] == (comment, sha):
            return match.group(0)
        tag, new_sha = newest[repo]
        report.changes.append(f"{repo}: {comment} -> {tag} ({new_sha[:12]})")
        return f"{uses}{repo}{subpath}@{new_sha}{hash_}{tag}"

    return {path: ACTION_PIN.sub(replace, text) for path, text in texts.items()}


def bump_pypi(
    root: Path, path: Path, pattern: re.Pattern[str], fetch: Fetch, report: Report
) -> str | None:
    """Each pin `pattern` finds in `path` (its `name` group, or uv) at PyPI's newest release."""
    text = path.read_text()

    def name_of(match: re.Match[str]) -> str:
        return match.groupdict().get("name") or "uv"

    newest: dict[str, str] = {}
    for name in sorted({name_of(m) for m in pattern.finditer(text)}):
        try:
            newest[name] = newest_on_pypi(name, fetch)
        except Unreachable as error:
            report.unreachable.append(
                f"PyPI cannot be reached ({error}): {path.relative_to(root)} left as it is"
            )
            return None

    def replace(match: re.Match[str]) -> str:
        name, old = name_of(match), match.group("version")
        new = newest[name]
        if new == old:
            return match.group(0)
        change = f"{name}: {old} -> {new} ({path.relative_to(root)})"
        if change not in report.changes:
            report.changes.append(change)
        start, end = match.span("version")
        whole = match.group(0)
        return whole[: start - match.start()] + new + whole[end - match.start() :]

    return pattern.sub(replace, text)


def action_sources(root: Path) -> list[Path]:
    """The files that pin the generated project's actions: its workflows and their snippet."""
    workflows = (root / "template" / ".github" / "workflows").glob("*.yml*")
    return sorted([*workflows, *(root / "includes").glob("*.jinja")])


def bump(root: Path = ROOT, fetch: Fetch = fetch_json, dry_run: bool = False) -> Report:
    report = Report()
    updated: dict[Path, str] = {}
    updated.update(bump_actions(action_sources(root), fetch, report))
    for path, pattern in (
        (root / "template" / ".pre-commit-config.yaml", HOOK_PIN),
        (root / "template" / "Dockerfile.jinja", UV_PIN),
        (root / "template" / "Makefile.jinja", TOOL_PIN),
    ):
        text = bump_pypi(root, path, pattern, fetch, report)
        if text is not None:
            updated[path] = text
    if not dry_run:
        for path, text in updated.items():
            if path.read_text() != text:
                path.write_text(text)
    return report


def main(argv: list[str], root: Path = ROOT, fetch: Fetch = fetch_json) -> int:
    dry_run, strict = "--dry-run" in argv, "--strict" in argv
    report = bump(root, fetch, dry_run=dry_run)
    for line in report.changes:
        print(("would move " if dry_run else "moved ") + line)
    if not report.changes:
        print("every reachable pin is at its newest release")
    for line in report.notes:
        print(f"note: {line}")
    for line in report.unreachable:
        print(f"not checked: {line}", file=sys.stderr)
    for line in report.rate_limited:  # GitHub answered: no release broke anything
        print(f"not checked, later: {line}", file=sys.stderr)
    return 1 if strict and report.unreachable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
