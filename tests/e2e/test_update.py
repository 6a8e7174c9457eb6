"""End to end: `copier update` brings a template change into a set-up project, and keeps
everything the user made (edits, new files, data, models)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import copier
import pytest
import yaml

from tests.project import bake_project, git

pytestmark = pytest.mark.e2e


def test_update_keeps_user_work_and_brings_template_changes(
    template_repo: Path, tmp_path: Path
) -> None:
    template = tmp_path / "template"
    subprocess.run(["git", "clone", "--quiet", str(template_repo), str(template)], check=True)
    project = bake_project(template, tmp_path / "my-model")
    project.run("make", "setup")
    project.commit("Initial commit")
    raw_data = project.read("data/raw/customers.csv")

    # The user's work: a tuned parameter, a changed threshold, a new module, a README note.
    params = project.read("params.yaml")
    params = params.replace("n_estimators: 100", "n_estimators: 150")
    params = params.replace("drift_share: 0.3 ", "drift_share: 0.4 ")
    (project.path / "params.yaml").write_text(params)
    (project.path / "src/my_model/extra.py").write_text('"""My own module."""\n')
    with (project.path / "README.md").open("a") as readme:
        readme.write("\nOur team's notes.\n")
    project.commit("Tune the model")

    # The template moves on: v0.2.0 changes the same threshold and adds a Makefile line.
    template_params = template / "template" / "params.yaml.jinja"
    template_params.write_text(
        template_params.read_text().replace("drift_share: 0.3 ", "drift_share: 0.25 ")
    )
    makefile = template / "template" / "Makefile.jinja"
    makefile.write_text(makefile.read_text() + "\n# Added in v0.2.0\n")
    git(template, "commit", "--quiet", "--all", "-m", "v0.2.0")
    git(template, "tag", "v0.2.0")

    copier.run_update(project.path, defaults=True, overwrite=True, unsafe=False, quiet=True)

    answers = yaml.safe_load(project.read(".copier-answers.yml"))
    assert answers["_commit"] == "v0.2.0"
    assert "# Added in v0.2.0" in project.read("Makefile"), "the template's change arrived"
    updated = project.read("params.yaml")
    assert "n_estimators: 150" in updated, "the user's edit was kept"
    # Both sides of the conflicting line are kept, marked as in a git merge.
    assert "drift_share: 0.4" in updated and "drift_share: 0.25" in updated
    assert "<<<<<<<" in updated
    assert project.has_file("src/my_model/extra.py")
    assert project.read("README.md").endswith("Our team's notes.\n")
    assert project.read("data/raw/customers.csv") == raw_data
    assert not list(project.path.rglob("*.rej"))
