"""The template's releases (scripts/release.py, .github/workflows/release.yml): CHANGELOG.md is
well formed and names every migration; the release workflow, run here step by step, tags the
newest dated entry once, with its text as the notes, and does nothing for an undated one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.gha import LocalRunner, StepFailed, github_context
from harness.gha.gh_recorder import fake_gh, gh_calls
from harness.project import TEMPLATE_ROOT, git, load_script

release = load_script(TEMPLATE_ROOT / "scripts" / "release.py")


def test_the_changelog_is_well_formed_and_names_every_migration() -> None:
    assert release.problems(TEMPLATE_ROOT / "CHANGELOG.md", TEMPLATE_ROOT / "copier.yml") == []


def test_the_check_reports_a_broken_changelog(tmp_path: Path) -> None:
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(
        "# Changelog\n\n## 0.1.0 - unreleased\n\nOld.\n\n## 0.3.0 - 2026-01-01\n\nNew.\n"
        "## 1.0beta - 2026-01-01\n"
    )
    copier_yml = tmp_path / "copier.yml"
    copier_yml.write_text('_migrations:\n  - version: "0.3.0"\n    command: "true"\n')
    said = release.problems(changelog, copier_yml)
    assert "0.3.0: not older than 0.1.0" in said
    assert "1.0beta: not a PEP 440 version" in said
    assert "migration 0.3.0: its CHANGELOG entry does not describe it" in said
    changelog.write_text("## Unreleased\n")
    with pytest.raises(SystemExit, match=r"is not '## X\.Y\.Z - YYYY-MM-DD'"):
        release.entries(changelog)


@pytest.mark.parametrize(
    ("heading", "tags", "expected"),
    [
        ("## 0.3.0 - 2026-02-01", {"v0.2.0"}, "0.3.0"),
        ("## 0.3.0 - 2026-02-01", {"v0.2.0", "v0.3.0"}, None),
        ("## 0.3.0 - unreleased", {"v0.2.0"}, None),
    ],
    ids=["dated-untagged", "already-tagged", "unreleased"],
)
def test_next_release(tmp_path: Path, heading: str, tags: set[str], expected: str | None) -> None:
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(f"# Changelog\n\n{heading}\n\n- New.\n\n## 0.2.0 - 2026-01-01\n\n- Old.\n")
    entry = release.next_release(changelog, tags)
    assert (entry.version if entry else None) == expected
    if entry:
        assert entry.text.strip() == "- New."


def _repository(tmp_path: Path, newest: str) -> Path:
    """A repository with scripts/release.py and a changelog, tagged v0.2.0, as a bare origin."""
    work = tmp_path / "work"
    (work / "scripts").mkdir(parents=True)
    shutil.copy2(TEMPLATE_ROOT / "scripts" / "release.py", work / "scripts" / "release.py")
    (work / "CHANGELOG.md").write_text(
        f"# Changelog\n\n{newest}\n\n- Template sync.\n\n## 0.2.0 - 2026-01-01\n\n- Old.\n"
    )
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "--no-verify", "-m", "0.2.0")
    git(work, "tag", "v0.2.0")
    git(work, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "Later")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(origin))
    return origin


@pytest.mark.parametrize("dated", [True, False], ids=["dated", "unreleased"])
def test_the_release_workflow_tags_a_dated_entry_once(tmp_path: Path, dated: bool) -> None:
    origin = _repository(tmp_path, "## 0.3.0 - 2026-02-01" if dated else "## 0.3.0 - unreleased")
    bin_dir, log = fake_gh(tmp_path)
    sha = git(origin, "rev-parse", "main").strip()
    runner = LocalRunner(
        origin,
        tmp_path / "run",
        base_env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_GH_LOG": str(log)},
        github={
            "event_name": "push",
            "ref": "refs/heads/main",
            "ref_name": "main",
            "sha": sha,
            "repository": "octo/copier-mlops",
            "token": "fake-github-token",
        },
    )
    job = runner.run(TEMPLATE_ROOT / ".github" / "workflows" / "release.yml")["release"]
    assert job.result == "success"
    calls = gh_calls(log)
    if not dated:
        assert job.step("Tag it").conclusion == "skipped" and not calls
        return
    assert job.step("The version to release").outputs == {"tag": "v0.3.0", "version": "0.3.0"}
    assert len(calls) == 1, calls
    args = calls[0]["args"]
    assert args[:3] == ["release", "create", "v0.3.0"]
    assert args[args.index("--target") + 1] == sha
    assert calls[0]["notes"] == "- Template sync.\n" and calls[0]["repo"] == "octo/copier-mlops"


@pytest.mark.parametrize("branch", ["main", "experiment"])
def test_a_release_by_hand_is_refused_off_the_default_branch(tmp_path: Path, branch: str) -> None:
    """workflow_dispatch runs on any branch: a tag made there would become every project's
    newest template version."""
    origin = _repository(tmp_path, "## 0.3.0 - 2026-02-01")
    git(origin, "branch", "experiment", "main")
    bin_dir, log = fake_gh(tmp_path)
    runner = LocalRunner(
        origin,
        tmp_path / "run",
        base_env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_GH_LOG": str(log)},
        github=github_context(
            "workflow_dispatch",
            repository="octo/copier-mlops",
            ref=f"refs/heads/{branch}",
            sha=git(origin, "rev-parse", branch).strip(),
            token="fake-github-token",
        ),
    )
    workflow = TEMPLATE_ROOT / ".github" / "workflows" / "release.yml"
    if branch == "main":
        assert runner.run(workflow)["release"].result == "success"
        assert [call["args"][:3] for call in gh_calls(log)] == [["release", "create", "v0.3.0"]]
        return
    with pytest.raises(StepFailed, match="at step 'Only the default branch") as refused:
        runner.run(workflow)
    assert "Releases are tagged on main only, not refs/heads/experiment" in str(refused.value)
    assert not gh_calls(log)
