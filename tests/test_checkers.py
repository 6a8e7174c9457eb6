"""A check that cannot fail is a defect: each static checker the tests use reports a broken
input, and no test skips a check on CI (harness.project.require is the only way to skip)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import checkers
from harness.project import TEMPLATE_ROOT, Project, require

BROKEN_WORKFLOW = """\
on: issues
permissions: {}
jobs:
  triage:
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - run: echo "${{ github.event.issue.title }}"
      - run: echo "${{ github.no_such_property }}"
"""


def test_require_skips_here_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    require(True, "present")  # nothing happens
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no such tool"):
        require(False, "no such tool")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no such tool"):
        require(False, "no such tool")


def test_every_skip_goes_through_require() -> None:
    # Anything else (pytest.skip, skipif, importorskip) would pass unseen on CI.
    skip = re.compile(r"pytest\.skip\(|\bskipif\b|\bimportorskip\b|pytest\.mark\.skip\b")
    paths = [*(TEMPLATE_ROOT / "tests").rglob("*.py"), *(TEMPLATE_ROOT / "harness").rglob("*.py")]
    for path in sorted(paths):
        if path.relative_to(TEMPLATE_ROOT).as_posix() in {
            "harness/project.py",
            "tests/test_checkers.py",
        }:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not skip.search(line), f"{path.relative_to(TEMPLATE_ROOT)}:{number}: {line}"


def test_check_jsonschema_reports_a_broken_workflow_and_dependabot_file(tmp_path: Path) -> None:
    workflow = tmp_path / "workflow.yml"
    workflow.write_text("on: push\njobs:\n  build:\n    steps: []\n")  # a job without runs-on
    result = checkers.check_jsonschema("vendor.github-workflows", workflow)
    assert result.returncode == 1 and "runs-on" in result.stdout, result.stdout + result.stderr
    dependabot = tmp_path / "dependabot.yml"
    dependabot.write_text("version: 2\nupdates:\n  - package-ecosystem: pip\n")  # no directory
    result = checkers.check_jsonschema("vendor.dependabot", dependabot)
    assert result.returncode == 1, result.stdout + result.stderr


def test_zizmor_reports_a_broken_workflow(tmp_path: Path) -> None:
    # An issue title, which anyone can write, expanded into a shell script.
    workflow = tmp_path / ".github" / "workflows" / "triage.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(BROKEN_WORKFLOW)
    result = checkers.zizmor(tmp_path / ".github")
    assert result.returncode != 0 and "template-injection" in result.stdout, result.stdout


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    workflow = tmp_path / "triage.yml"
    workflow.write_text(BROKEN_WORKFLOW)
    result = checkers.actionlint(workflow)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "potentially untrusted" in result.stdout and "no_such_property" in result.stdout


def test_hadolint_reports_a_broken_dockerfile(tmp_path: Path) -> None:
    # tests/test_dockerfile.py also shows the generated project's own configuration failing a
    # Dockerfile without HEALTHCHECK.
    (tmp_path / "Dockerfile").write_text("FROM python\nRUN cd /app && pip install flask\n")
    result = checkers.hadolint("--failure-threshold", "style", "Dockerfile", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert {"DL3006", "DL3003", "DL3013"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_ruff_reports_broken_code_in_a_generated_project(baked: Callable[..., Project]) -> None:
    # With the generated project's configuration: unsorted imports (I001) and a print (T201)
    # are findings there, not in ruff's defaults; and code the formatter would change.
    project = baked()
    name = f"src/{project.answers['package_name']}/broken.py"
    source = "import sys\nimport os\n\nprint(os.sep,sys.argv)\n"
    result = checkers.ruff("check", "--stdin-filename", name, "-", cwd=project.path, stdin=source)
    assert result.returncode == 1, result.stdout + result.stderr
    assert {"I001", "T201"} <= set(re.findall(r"\b[A-Z]+\d{3}\b", result.stdout)), result.stdout
    result = checkers.ruff(
        "format", "--check", "--stdin-filename", name, "-", cwd=project.path, stdin=source
    )
    assert result.returncode == 1, result.stdout + result.stderr
