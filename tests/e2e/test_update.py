"""End to end: `copier update` across template versions, in real git repositories.

The template's history is made here, from the working tree: v0.1.0 is the working tree, v0.2.0
the same files (an empty commit: the release that brought migration 0.2.0), and v0.3.0 changes
the template as a maintainer would (a Makefile line, a threshold in params.yaml, a README line,
the LICENSE, a new CONTRIBUTING.md). One project is generated at v0.2.0, set up with
`make setup` and `make pipeline` and committed once; each scenario works on a copy of it
(without its .venv), makes a user's edits, commits, updates, and checks that the edits survive,
that the template's change arrives, and that the project's fast tests still pass.

The fast tests run on the base project's environment (`UV_PROJECT_ENVIRONMENT`) with the
copy's own `src/` first on the path, so they test the updated code, not the base's. They take
half a minute, so the four scenarios whose edits sit in different files (1, 2, 4, 5) share one
copy and one update, each with its own test function, and one run of the tests.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import copier
import pytest
import yaml
from cookiecutter.main import cookiecutter
from copier.errors import UserMessageError

from harness.gha import GitHubRepo, LocalRunner, StepFailed, github_context
from harness.project import (
    TEMPLATE_ROOT,
    Project,
    archive,
    bake_project,
    git,
    has_commit,
    require,
    tool_env,
)

pytestmark = pytest.mark.e2e

PACKAGE = "my_model"
ADDED_TO_MAKEFILE = "# Added in v0.3.0"
README_NOTE = "Template note added in v0.3.0."
LICENSE_NOTE = "License note added in v0.3.0."
TEMPLATE_CONTRIBUTING = "# Contributing\n\nThe template's guide to contributing.\n"
USER_CONTRIBUTING = "# Contributing\n\nOur team's rules.\n"
MARKERS = ("<<<<<<< before updating", ">>>>>>> after updating")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) >= 1, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def template(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of the template under test, tagged v0.1.0, v0.2.0 (same files) and v0.3.0."""
    root = tmp_path_factory.mktemp("update") / "copier-mlops"
    git(root.parent, "clone", "--quiet", str(template_repo), str(root))
    git(root, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "Release 0.2.0")
    git(root, "tag", "v0.2.0")

    files = root / "template"
    with (files / "Makefile.jinja").open("a") as makefile:
        makefile.write(f"\n{ADDED_TO_MAKEFILE}\n")
    _edit(files / "params.yaml.jinja", "drift_share: 0.3 ", "drift_share: 0.25")
    _edit(files / "README.md.jinja", "\n## ", f"\n{README_NOTE}\n\n## ")
    license_file = files / "{% if license != 'Proprietary' %}LICENSE{% endif %}.jinja"
    license_file.write_text(license_file.read_text() + f"\n{LICENSE_NOTE}\n")
    (files / "CONTRIBUTING.md").write_text(TEMPLATE_CONTRIBUTING)
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--no-verify", "-m", "Release 0.3.0")
    git(root, "tag", "v0.3.0")
    return root


@pytest.fixture(scope="module")
def base(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The project generated at v0.2.0, set up, its pipeline run, all committed."""
    project = bake_project(template, tmp_path_factory.mktemp("base") / "my-model", vcs_ref="v0.2.0")
    project.run("make", "setup")
    project.run("make", "pipeline")
    project.commit("Initial commit")
    assert project.answers["_commit"] == "v0.2.0"
    return project


def _copy(base: Project, destination: Path) -> Project:
    """The base project as another checkout: everything but the virtual environment."""
    shutil.copytree(base.path, destination, symlinks=True, ignore=shutil.ignore_patterns(".venv"))
    return Project(destination, dict(base.answers))


def _venv(project: Project) -> Path:
    return project.path / ".venv"


def _fast_tests(project: Project, venv: Path) -> None:
    """The generated project's tests without the HTTP server, on `venv`, importing the
    project's own src/ (a .pth file in `venv` points at the project it was made for)."""
    result = project.run(
        *("uv", "run", "--no-sync", "python", "-m", "pytest"),
        *("-q", "-x", "-m", "not integration", "-p", "no:cacheprovider"),
        env={"UV_PROJECT_ENVIRONMENT": str(venv), "PYTHONPATH": str(project.path / "src")},
    )
    assert " passed" in result.stdout, result.stdout


def _update(project: Project, **options: object) -> None:
    """copier update as `copier update --defaults` runs it, to the newest tag by default."""
    copier.run_update(
        project.path, defaults=True, overwrite=True, unsafe=False, quiet=True, **options
    )


def _answers(project: Project) -> dict[str, object]:
    return yaml.safe_load(project.read(".copier-answers.yml"))


def _unmerged(project: Project) -> set[str]:
    return set(git(project.path, "diff", "--name-only", "--diff-filter=U").split())


def _keep_ours(text: str) -> str:
    """Each conflict resolved for the project's side ("before updating")."""
    return re.sub(
        r"^<<<<<<< before updating\n(.*?)(?:^\|{7}.*?)?"  # ours, then the base (diff3 style)
        r"^=======\n.*?^>>>>>>> after updating\n",
        r"\1",
        text,
        flags=re.DOTALL | re.MULTILINE,
    )


def _dvc_status(project: Project, venv: Path) -> dict[str, object]:
    result = project.run(
        "uv",
        "run",
        "--no-sync",
        "dvc",
        "status",
        "--json",
        env={"UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    return json.loads(result.stdout)


def _snapshot(project: Project) -> dict[str, str]:
    """Every file but git's own and the environment, by content."""
    return {
        path.relative_to(project.path).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project.path.rglob("*"))
        if path.is_file() and not {".git", ".venv"} & set(path.relative_to(project.path).parts)
    }


# --- scenarios 1, 2, 4 and 5: edits in different files, one update ---------------------------


@pytest.fixture(scope="module")
def merged(base: Project, tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str, dict]:
    """A copy with the user's edits of scenarios 1, 2, 4 and 5, updated by `make template-sync`;
    its output (the summary the workflow's pull request gets); `dvc status` before the update."""
    project = _copy(base, tmp_path_factory.mktemp("merged") / "my-model")
    # 1: a file the template does not touch, and a new module.
    with (project.path / "src" / PACKAGE / "pipeline" / "evaluate.py").open("a") as module:
        module.write("\n# Our team: metrics are reported to two decimals.\n")
    (project.path / "src" / PACKAGE / "extra.py").write_text('"""Our own module."""\n')
    # 2: files the template changes too, in other places.
    _edit(project.path / "params.yaml", "n_estimators: 100", "n_estimators: 150")
    with (project.path / "README.md").open("a") as readme:
        readme.write("\n## Our team's notes\n\nAsk Ana before retraining.\n")
    # 4: a file the template changes, deleted.
    git(project.path, "rm", "--quiet", "LICENSE")
    # 5: a file the template adds too.
    (project.path / "CONTRIBUTING.md").write_text(USER_CONTRIBUTING)
    project.commit("Our changes")
    status = _dvc_status(project, _venv(base))

    result = project.run("make", "template-sync")
    return project, result.stdout, status


def test_1_an_edited_file_the_template_left_alone_is_kept(
    merged: tuple[Project, str, dict],
) -> None:
    project, _, _ = merged
    assert _answers(project)["_commit"] == "v0.3.0"
    assert project.read("Makefile").rstrip().endswith(ADDED_TO_MAKEFILE), "the template's change"
    assert "Our team: metrics are reported" in project.read(f"src/{PACKAGE}/pipeline/evaluate.py")
    assert project.read(f"src/{PACKAGE}/extra.py") == '"""Our own module."""\n'


def test_2_both_edited_one_file_in_different_places(merged: tuple[Project, str, dict]) -> None:
    project, _, _ = merged
    params = project.read("params.yaml")
    assert "n_estimators: 150" in params, "the user's edit"
    assert "drift_share: 0.25" in params, "the template's edit"
    readme = project.read("README.md")
    assert README_NOTE in readme and readme.endswith("Ask Ana before retraining.\n")
    for name in ("params.yaml", "README.md"):
        assert not any(marker in project.read(name) for marker in MARKERS), name


def test_4_a_deleted_file_stays_deleted(merged: tuple[Project, str, dict], template: Path) -> None:
    project, _, _ = merged
    changed = git(template, "diff", "--name-only", "v0.2.0", "v0.3.0")
    assert "LICENSE" in changed, "the template changed the file the user deleted"
    assert not project.has_file("LICENSE")


def test_5_a_file_both_added_keeps_both_versions(merged: tuple[Project, str, dict]) -> None:
    project, summary, _ = merged
    contributing = project.read("CONTRIBUTING.md")
    assert "Our team's rules." in contributing, "the user's version"
    assert "The template's guide" in contributing, "the template's version"
    assert all(marker in contributing for marker in MARKERS)
    assert _unmerged(project) == {"CONTRIBUTING.md"}, "the only conflict"
    # make template-sync lists it, as the pull request's body would.
    assert "Conflicts to resolve" in summary and "- `CONTRIBUTING.md`" in summary, summary


def test_a_set_up_project_keeps_its_data_lock_cache_and_model(
    merged: tuple[Project, str, dict], base: Project
) -> None:
    project, _, status = merged
    kept = [
        "data/raw/customers.csv",
        "data/current/customers.csv",
        "uv.lock",
        "dvc.lock",
        "models/model.joblib",
        "metrics/metrics.json",
        "tests/fixtures/data.csv",
        "schema.yaml",
        "examples/request.json",
    ]
    cache = sorted(p.relative_to(base.path) for p in (base.path / ".dvc" / "cache").rglob("*"))
    assert cache, "the DVC cache is not empty"
    for name in [*kept, *map(str, cache)]:
        if (base.path / name).is_file():
            assert (project.path / name).read_bytes() == (base.path / name).read_bytes(), name
    # What DVC would rerun is what the user's own edits (code, params) asked for before the
    # update, and nothing more: the update invalidated no stage.
    assert _dvc_status(project, _venv(base)) == status


def test_the_merged_project_passes_its_tests(
    merged: tuple[Project, str, dict], base: Project
) -> None:
    project, _, _ = merged
    _fast_tests(project, _venv(base))


# --- scenario 3: the same lines -------------------------------------------------------------


def test_3_a_conflict_is_marked_and_pre_commit_refuses_it(base: Project, tmp_path: Path) -> None:
    project = _copy(base, tmp_path / "my-model")
    _edit(project.path / "params.yaml", "drift_share: 0.3 ", "drift_share: 0.4 ")
    project.commit("A stricter drift threshold")

    # --conflict rej: the hunk that did not apply is left in params.yaml.rej.
    _update(project, conflict="rej")
    assert project.has_file("params.yaml.rej")
    git(project.path, "add", "--all")
    refused = subprocess.run(
        ["git", "commit", "-m", "Update"], cwd=project.path, capture_output=True, text=True
    )
    said = refused.stdout + refused.stderr  # git hands a hook's output to stderr
    assert refused.returncode != 0, said
    assert "no .rej files" in said and "params.yaml.rej" in said, said
    git(project.path, "reset", "--quiet", "--hard")
    git(project.path, "clean", "--quiet", "-fd")

    # --conflict inline (copier's default, and make template-sync's): both versions, marked.
    _update(project, conflict="inline")
    params = project.read("params.yaml")
    assert all(marker in params for marker in MARKERS), params
    assert "drift_share: 0.4" in params and "drift_share: 0.25" in params
    assert "params.yaml" in _unmerged(project)
    assert ADDED_TO_MAKEFILE in project.read("Makefile"), "the rest of the update arrived"
    git(project.path, "add", "--all")  # what a hurried user does
    refused = subprocess.run(
        ["git", "commit", "-m", "Update"], cwd=project.path, capture_output=True, text=True
    )
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, said
    assert "Merge conflict string '<<<<<<<' found" in said, said

    # Resolved (the user's threshold kept), the update commits and the tests pass.
    (project.path / "params.yaml").write_text(_keep_ours(params))
    project.commit("Update from the template, keeping our threshold")
    assert "drift_share: 0.4" in project.read("params.yaml")
    _fast_tests(project, _venv(base))


# --- scenario 6: an answer changed --------------------------------------------------------------


def test_6_an_answer_changed_during_the_update(base: Project, tmp_path: Path) -> None:
    project = _copy(base, tmp_path / "my-model")
    _edit(project.path / "params.yaml", "n_estimators: 100", "n_estimators: 150")
    project.commit("More trees")

    _update(project, data={"model": "logistic_regression"}, conflict="inline")
    assert _answers(project)["model"] == "logistic_regression"
    params = yaml.safe_load(project.read("params.yaml"))
    assert params["train"]["model"] == "logistic_regression", "the new answer arrived"
    assert params["train"]["random_forest"]["n_estimators"] == 150, "the user's edit survived"
    assert ADDED_TO_MAKEFILE in project.read("Makefile")
    assert not _unmerged(project)
    _fast_tests(project, _venv(base))


# --- scenario 7: a dirty working tree ----------------------------------------------------------


def test_7_a_dirty_tree_is_refused_and_nothing_changes(base: Project, tmp_path: Path) -> None:
    project = _copy(base, tmp_path / "my-model")
    _edit(project.path / "params.yaml", "n_estimators: 100", "n_estimators: 175")
    (project.path / "notes.txt").write_text("not committed yet\n")
    before = _snapshot(project)

    refused = project.run("make", "template-sync", check=False)
    assert refused.returncode == 2
    assert "uncommitted changes: commit or stash them first" in refused.stderr, refused.stderr
    assert "params.yaml" in refused.stderr and "notes.txt" in refused.stderr
    with pytest.raises(UserMessageError, match="Destination repository is dirty"):
        _update(project)

    assert _snapshot(project) == before, "nothing changed"
    assert _answers(project)["_commit"] == "v0.2.0"


# --- scenario 8: two versions at once, across a migration ------------------------------------


def test_8_an_update_across_two_versions_runs_the_migration(
    base: Project, template: Path, tmp_path: Path
) -> None:
    """From v0.1.0 to v0.3.0: migration 0.2.0 (copier.yml) draws the test fixture a project
    made before 0.2.0 lacks; the template's later change arrives too."""
    tree = "^{tree}"
    assert git(template, "rev-parse", f"v0.1.0{tree}") == git(
        template, "rev-parse", f"v0.2.0{tree}"
    )
    project = _copy(base, tmp_path / "my-model")
    # The project as v0.1.0 made it (the same files as v0.2.0) and before 0.2.0's fixture.
    _edit(project.path / ".copier-answers.yml", "_commit: v0.2.0", "_commit: v0.1.0")
    git(project.path, "rm", "--quiet", "tests/fixtures/data.csv")
    project.commit("A project made before 0.2.0")
    _edit(project.path / "params.yaml", "n_estimators: 100", "n_estimators: 150")
    project.commit("More trees")
    head = git(project.path, "rev-parse", "HEAD")

    # A migration runs code: without trust, copier refuses and changes nothing.
    refused = project.run("make", "template-sync", "TRUST=0", check=False)
    assert refused.returncode != 0
    assert "migrations" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert git(project.path, "status", "--porcelain") == ""
    assert git(project.path, "rev-parse", "HEAD") == head

    synced = project.run("make", "template-sync")
    assert "migration 0.2.0" in synced.stdout, synced.stdout
    assert "tests/fixtures/data.csv: drawn from the data" in synced.stdout, synced.stdout
    # The model was trained by this version's code: nothing says it is in the old format.
    assert "models/model.joblib: the updated code loads it" in synced.stdout, synced.stdout
    assert "old format" not in synced.stdout, synced.stdout
    assert project.read("tests/fixtures/data.csv") == base.read("tests/fixtures/data.csv")
    assert _answers(project)["_commit"] == "v0.3.0"
    assert "v0.1.0 -> v0.3.0" in synced.stdout
    assert ADDED_TO_MAKEFILE in project.read("Makefile")
    assert "n_estimators: 150" in project.read("params.yaml")
    # The migration ran `uv run`, which made this copy its own environment.
    _fast_tests(project, _venv(project))

    # A model saved before 0.2.0 (not a bundle): the migration says to retrain it.
    model = project.path / "models" / "model.joblib"
    model.unlink()  # DVC's cache may share the file: replace it, never write into it
    dump = "import joblib; joblib.dump({'pipeline': None}, 'models/model.joblib')"
    project.run("uv", "run", "python", "-c", dump)
    migrated = project.run("python3", str(template / "migrations" / "v0.2.0.py"), PACKAGE)
    assert "models/model.joblib: saved in the old format: retrain" in migrated.stdout


# --- scenario 9: the package's new layout (migration 0.2.0, v0.2.0_layout.py) ----------------
# The template before its package showed its parts (contract/, pipeline/, serving/,
# monitoring/): the last commit of the flat layout, rebuilt from the template's history.
FLAT_LAYOUT = "1f95687"
OUR_FEATURE = """ENGINEERED: tuple[Feature, ...] = (
    Feature(
        "charges_per_call",
        "numeric",
        "Monthly charges per support call (our team's feature)",
        ("monthly_charges", "support_calls"),
        lambda raw: raw["monthly_charges"].astype("float64")
        / (raw["support_calls"].astype("float64") + 1),
    ),
)"""
OUR_TRAIN_NOTE = "        # Our team: integer codes for every tree model, reviewed in May.\n"
OUR_SERVING_NOTE = '    """A numpy scalar as the plain value JSON needs (our team\'s note)."""\n'


@pytest.fixture(scope="module")
def layout_template(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One history: the template at FLAT_LAYOUT tagged v0.1.0, the working tree v0.2.0."""
    require(
        has_commit(FLAT_LAYOUT),
        f"commit {FLAT_LAYOUT} of the template's history (a full clone: git fetch --unshallow)",
    )
    root = tmp_path_factory.mktemp("layout") / "copier-mlops"
    archive(TEMPLATE_ROOT, FLAT_LAYOUT, root)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--no-verify", "-m", "The flat layout")
    git(root, "tag", "v0.1.0")
    git(root, "rm", "--quiet", "-r", ".")
    archive(template_repo, "HEAD", root)
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--no-verify", "-m", "Release 0.2.0: the package's parts")
    git(root, "tag", "v0.2.0")
    return root


@pytest.fixture(scope="module")
def flat(layout_template: Path, base: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project generated at v0.1.0 (the flat layout), with what make setup draws for the
    tests (the same sample with the same answers: the base project's fixture), committed."""
    project = bake_project(layout_template, tmp_path_factory.mktemp("flat") / "my-model", "v0.1.0")
    assert project.has_file(f"src/{PACKAGE}/features.py"), "the flat layout"
    fixture = project.path / "tests" / "fixtures" / "data.csv"
    fixture.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(base.path / "tests" / "fixtures" / "data.csv", fixture)
    git(project.path, "init", "--quiet", "--initial-branch=main")
    project.commit("Made before the new layout")
    return project


def _flat_copy(flat: Project, destination: Path) -> Project:
    shutil.copytree(flat.path, destination, symlinks=True)
    return Project(destination, dict(flat.answers))


def test_9_edits_of_moved_modules_follow_them_to_the_new_layout(
    flat: Project, base: Project, tmp_path: Path
) -> None:
    """Edits in features.py, train.py and service.py, made in the flat layout: after `make
    update` they are in pipeline/features.py, pipeline/train.py and serving/service.py, the
    old files are gone (git shows the moves), and the project's tests pass."""
    project = _flat_copy(flat, tmp_path / "my-model")
    src = project.path / "src" / PACKAGE
    _edit(src / "features.py", "ENGINEERED: tuple[Feature, ...] = ()", OUR_FEATURE)
    encoder = "        encoder: Any = OrdinalEncoder("
    _edit(src / "train.py", encoder, OUR_TRAIN_NOTE + encoder)
    plain = "def _plain(value: Any) -> Any:\n"
    _edit(src / "service.py", plain, plain + OUR_SERVING_NOTE)
    project.commit("Our feature, a note on the encoder, a docstring")

    updated = project.run("make", "update")
    said = updated.stdout + updated.stderr
    assert "migration 0.2.0: the modules moved" in said, said
    moved = {"features.py": "pipeline/features.py", "train.py": "pipeline/train.py"}
    moved["service.py"] = "serving/service.py"
    for old, new in moved.items():
        assert f"src/{PACKAGE}/{old} -> src/{PACKAGE}/{new}, your changes merged" in said, said
        assert not (src / old).exists(), old
    assert OUR_FEATURE in (src / "pipeline" / "features.py").read_text()
    assert OUR_TRAIN_NOTE + encoder in (src / "pipeline" / "train.py").read_text()
    assert plain + OUR_SERVING_NOTE in (src / "serving" / "service.py").read_text()
    flat_modules = {f"src/{PACKAGE}/{name}" for name in ("features.py", "monitor.py", "bundle.py")}
    assert not flat_modules & set(git(project.path, "ls-files").split()), "git shows the moves"
    assert not _unmerged(project)
    _fast_tests(project, _venv(base))


def test_9_an_edit_the_new_layout_changed_too_is_a_conflict_make_update_lists(
    flat: Project, tmp_path: Path
) -> None:
    """A model added to train.py's MODELS, which the new layout rewrote (models by task):
    both versions marked in pipeline/train.py, registered as unmerged, listed by make update."""
    project = _flat_copy(flat, tmp_path / "my-model")
    train = project.path / "src" / PACKAGE / "train.py"
    forest = '    "random_forest": RandomForestClassifier,\n'
    _edit(train, forest, forest + '    "forest_again": RandomForestClassifier,\n')
    project.commit("Another model")

    updated = project.run("make", "update", check=False)
    assert updated.returncode != 0, updated.stdout
    assert f"!!!     src/{PACKAGE}/pipeline/train.py" in updated.stderr, updated.stderr
    assert "CONFLICT" in updated.stdout, updated.stdout
    text = (project.path / "src" / PACKAGE / "pipeline" / "train.py").read_text()
    assert all(marker in text for marker in MARKERS) and '"forest_again"' in text
    assert _unmerged(project) == {f"src/{PACKAGE}/pipeline/train.py"}
    stages = git(project.path, "ls-files", "--unmerged", f"src/{PACKAGE}/pipeline/train.py")
    assert sorted(line.split()[2] for line in stages.splitlines()) == ["1", "2", "3"]
    assert not train.exists()


# --- the template-sync workflow, run as on GitHub -----------------------------------------------


def _runner(
    origin: Path, workdir: Path, repo: GitHubRepo, secrets: dict[str, str] | None = None
) -> LocalRunner:
    """A scheduled run against `origin`, GitHub's side of it in `repo` (pull requests, events),
    with the runner's `gh` (it dispatches workflows)."""
    env = tool_env()
    for key in list(env):
        if key.startswith(("GITHUB_", "RUNNER_")) or key in {"CI"}:
            del env[key]
    sha = git(origin, "rev-parse", "HEAD").strip()
    github = github_context(
        "schedule", repository="octo/my-model", sha=sha, token="fake-github-token"
    )
    return LocalRunner(
        origin, workdir, base_env=env, github=github, secrets=secrets, repo=repo, gh=True
    )


def _pushed(project: Project, tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(project.path), str(origin))
    return origin


def _conflicted(base: Project, tmp_path: Path) -> tuple[Project, Path]:
    """A copy whose params.yaml edit conflicts with v0.3.0's, pushed to a bare origin."""
    project = _copy(base, tmp_path / "my-model")
    _edit(project.path / "params.yaml", "drift_share: 0.3 ", "drift_share: 0.4 ")
    project.commit("A stricter drift threshold")
    return project, _pushed(project, tmp_path)


def test_the_sync_workflow_opens_a_pull_request_with_the_conflicts_shown(
    base: Project, tmp_path: Path
) -> None:
    project, origin = _conflicted(base, tmp_path)
    workflow = project.path / ".github" / "workflows" / "template-sync.yml"
    repo = GitHubRepo()

    sync = _runner(origin, tmp_path / "run1", repo).run(workflow)["sync"]
    assert sync.result == "success"
    outputs = sync.step("copier update").outputs
    assert outputs == {
        "title": "Update from the template: v0.2.0 -> v0.3.0 (conflicts to resolve)",
        "conflicts": "true",
        "open": "true",
    }
    body = (sync.workspace / "reports" / "template-sync.md").read_text()
    assert "### Conflicts to resolve before merging" in body and "- `params.yaml`" in body, body
    proposal = sync.step("Open (or update) the pull request").note
    assert proposal.startswith(f"pull request {outputs['title']!r} with "), proposal
    for name in ("params.yaml", "Makefile", ".copier-answers.yml", "CONTRIBUTING.md"):
        assert name in proposal, proposal
    assert "reports/" not in proposal, "the body is not part of the change"
    [pull] = repo.pull_requests
    assert pull.draft and pull.title == outputs["title"] and pull.head == "template-sync"
    assert "<<<<<<< before updating" in git(origin, "show", "template-sync:params.yaml")
    # Opened with GITHUB_TOKEN: its own events start nothing, the dispatched CI runs.
    assert [(name, event.name) for name, event in repo.runs(origin)] == [
        ("ci.yml", "workflow_dispatch")
    ]
    assert repo.events[-1].ref == "refs/heads/template-sync"

    # A person resolves the conflict on the branch; the next run leaves their commit alone.
    person = tmp_path / "person"
    git(tmp_path, "clone", "--quiet", "--branch", "template-sync", str(origin), str(person))
    (person / "params.yaml").write_text(_keep_ours((person / "params.yaml").read_text()))
    git(person, "commit", "--quiet", "--no-verify", "-am", "Keep our threshold")
    git(person, "push", "--quiet", "origin", "template-sync")
    resolved = git(origin, "rev-parse", "template-sync").strip()
    events = len(repo.events)
    sync = _runner(origin, tmp_path / "run2", repo).run(workflow)["sync"]
    assert sync.result == "success"
    assert git(origin, "rev-parse", "template-sync").strip() == resolved, "overwritten"
    assert sync.step("copier update").outputs["open"] == "false"
    assert "the branch `template-sync` is yours now" in sync.summary, sync.summary
    assert "Keep our threshold" in sync.summary
    assert sync.step("Open (or update)").conclusion == "skipped"
    assert sync.step("A draft while").conclusion == "skipped"
    assert len(repo.events) == events and len(repo.pull_requests) == 1 and pull.draft

    # Merged: the next run finds nothing to do, opens nothing and deletes the branch.
    git(person, "checkout", "--quiet", "main")
    git(person, "merge", "--quiet", "--no-ff", "--no-edit", "template-sync")
    git(person, "push", "--quiet", "origin", "main")
    pull.state = "merged"
    sync = _runner(origin, tmp_path / "run3", repo).run(workflow)["sync"]
    assert sync.step("copier update").outputs["title"] == "Template: already at v0.3.0"
    assert sync.step("Open (or update)").note.startswith("no change left"), sync.steps
    assert not git(origin, "branch", "--list", "template-sync").strip()
    assert len(repo.pull_requests) == 1


def test_where_drafts_are_unavailable_the_pull_request_says_its_conflicts_in_its_title(
    base: Project, tmp_path: Path
) -> None:
    """A private repository on GitHub's free plan has no drafts: creating one fails."""
    project, origin = _conflicted(base, tmp_path)
    repo = GitHubRepo(drafts=False)
    workflow = project.path / ".github" / "workflows" / "template-sync.yml"
    sync = _runner(origin, tmp_path / "run", repo).run(workflow)["sync"]
    assert sync.result == "success"
    draft = sync.step("A draft while it has conflicts")
    assert (draft.outcome, draft.conclusion) == ("failure", "success")
    assert "Draft pull requests are not supported" in draft.output
    [pull] = repo.pull_requests
    assert not pull.draft and pull.title.endswith("(conflicts to resolve)"), pull
    assert [name for name, _ in repo.runs(origin)] == ["ci.yml"], "CI started on its branch"


def test_an_update_that_changes_the_workflows_needs_the_token(
    base: Project, template: Path, tmp_path: Path
) -> None:
    """GITHUB_TOKEN may not push .github/workflows/: without TEMPLATE_SYNC_TOKEN the run says
    so and names the secret; with it, the pull request's own events start CI."""
    newer = tmp_path / "copier-mlops"
    git(tmp_path, "clone", "--quiet", str(template), str(newer))
    with (newer / "template" / ".github" / "workflows" / "ci.yml.jinja").open("a") as ci:
        ci.write("# Added in v0.4.0\n")
    git(newer, "commit", "--quiet", "--no-verify", "-am", "Release 0.4.0")
    git(newer, "tag", "v0.4.0")
    project = _copy(base, tmp_path / "my-model")
    _edit(project.path / ".copier-answers.yml", str(template), str(newer))
    project.commit("The template, from its new home")
    origin = _pushed(project, tmp_path)
    workflow = project.path / ".github" / "workflows" / "template-sync.yml"

    repo = GitHubRepo()
    with pytest.raises(StepFailed, match=r"failed at step .copier update") as failed:
        _runner(origin, tmp_path / "run1", repo).run(workflow)
    assert "changes workflow files, which the built-in GITHUB_TOKEN may not push" in str(
        failed.value
    )
    assert ".github/workflows/ci.yml" in str(failed.value)
    assert not repo.pull_requests and not repo.events
    assert not git(origin, "branch", "--list", "template-sync").strip()

    secrets = {"TEMPLATE_SYNC_TOKEN": "a-persons-token"}
    sync = _runner(origin, tmp_path / "run2", repo, secrets).run(workflow)["sync"]
    assert sync.result == "success"
    assert "# Added in v0.4.0" in git(origin, "show", "template-sync:.github/workflows/ci.yml")
    [pull] = repo.pull_requests
    assert not pull.draft and pull.title == "Update from the template: v0.2.0 -> v0.4.0"
    started = [(name, event.name, event.action) for name, event in repo.runs(origin)]
    assert started == [("ci.yml", "pull_request", "opened")], started
    assert sync.step("Start CI on the branch").conclusion == "skipped"


# --- a project made by cookiecutter ------------------------------------------------------------


def test_a_cookiecutter_made_project_updates_with_copier(template: Path, tmp_path: Path) -> None:
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(
        yaml.safe_dump(
            {"cookiecutters_dir": str(tmp_path / "clones"), "replay_dir": str(tmp_path / "replay")}
        )
    )
    made = cookiecutter(
        str(template),
        checkout="v0.2.0",
        no_input=True,
        extra_context={"model": "gradient_boosting"},
        output_dir=str(tmp_path / "out"),
        config_file=str(config),
    )
    project = Project(Path(made), {})
    assert _answers(project)["_commit"] == "v0.2.0"
    assert _answers(project)["_src_path"] == str(template)
    git(project.path, "init", "--quiet", "--initial-branch=main")
    project.commit("Made with cookiecutter")
    _edit(project.path / "params.yaml", "max_iter: 200", "max_iter: 250")
    project.commit("Longer boosting")

    _update(project, conflict="inline")
    assert _answers(project)["_commit"] == "v0.3.0"
    assert _answers(project)["model"] == "gradient_boosting", "the cookiecutter answer is kept"
    assert ADDED_TO_MAKEFILE in project.read("Makefile")
    assert "max_iter: 250" in project.read("params.yaml")
    assert not _unmerged(project)
