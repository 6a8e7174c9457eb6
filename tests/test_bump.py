"""`make bump` (scripts/bump.py): the pins Dependabot cannot see move to the newest releases,
and a source that cannot be reached is said so and left as it is. The registries are stood in
for here (PyPI answers, GitHub does not, or does), so the tests are the same on any machine."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.gha import JobResult, LocalRunner
from tests.project import TEMPLATE_ROOT, load_script
from tests.test_release import fake_gh, gh_calls

bump = load_script(TEMPLATE_ROOT / "scripts" / "bump.py")
NEW_SHA = "0123456789abcdef0123456789abcdef01234567"
TAG_SHA = "fedcba9876543210fedcba9876543210fedcba98"
PINNED = re.compile(r"uses:\s+([\w.-]+/[\w.-]+)\S*@([0-9a-f]{40}) # (\S+)")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The files bump.py edits, copied."""
    shutil.copytree(TEMPLATE_ROOT / "ci_templates", tmp_path / "ci_templates")
    (tmp_path / "template").mkdir()
    for name in (".pre-commit-config.yaml", "Dockerfile.jinja"):
        shutil.copy2(TEMPLATE_ROOT / "template" / name, tmp_path / "template" / name)
    return tmp_path


def _pins(root: Path) -> dict[str, tuple[str, str]]:
    text = "".join(path.read_text() for path in sorted((root / "ci_templates").glob("*.jinja")))
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
    assert actions, "ci_templates pin actions"
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
    assert not report.changes and len(report.unreachable) == 3, report.unreachable
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
