"""Cookiecutter users get the same project: cookiecutter.json follows copier.yml, and
`cookiecutter <template>` (a folder or a git URL, with prompts or --no-input) makes the same
files as `copier copy` with the same answers, and refuses the same answers with the same
messages. (tests/e2e/test_update.py updates a cookiecutter-made project with copier.)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import copier
import pytest
import yaml
from cookiecutter.main import cookiecutter

from harness.answers import OWN_FILE_FEAST
from harness.project import TEMPLATE_ROOT, Project, load_script, tool_env

cookiecutter_json = load_script(TEMPLATE_ROOT / "scripts" / "cookiecutter_json.py")

# Files that may differ between the two engines' projects: none. (Named here so that a
# difference that must exist one day is written down, not waved through.)
MAY_DIFFER: set[str] = set()

COMBINATIONS = [
    pytest.param({}, id="defaults"),
    pytest.param(
        {
            "license": "Proprietary",
            "python_version": "3.12",
            "task": "regression",
            "model": "ridge",
            "dvc_remote": "s3",
            "monitor_schedule": "15 3 * * *",
            "deployment": "kubernetes",
            "github_repository": "Octo/Churn.Model",
        },
        id="regression-s3-kubernetes",
    ),
    pytest.param(
        # Accented letters: each engine derives the same slug and package name from them.
        {"project_name": "Café Détecteur 2.", "description": 'Says "hi" \\ & <more>'},
        id="accented-name-free-text",
    ),
    pytest.param({"feature_store": "feast"}, id="feast"),
    pytest.param(
        OWN_FILE_FEAST,
        id="own-file-feast",
    ),
]


@pytest.fixture
def cookiecutter_config(tmp_path: Path) -> str:
    """cookiecutter's clones and replays under tmp_path, not in the home folder."""
    config = tmp_path / "cookiecutter-config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cookiecutters_dir": str(tmp_path / "cookiecutters"),
                "replay_dir": str(tmp_path / "replay"),
            }
        )
    )
    return str(config)


def _tree(folder: Path) -> dict[str, tuple[bytes, bool]]:
    """Each file by its path: its bytes, and whether it is executable."""
    return {
        path.relative_to(folder).as_posix(): (path.read_bytes(), bool(path.stat().st_mode & 0o111))
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _assert_same_project(by_copier: Path, by_cookiecutter: Path) -> None:
    copier_tree, cookiecutter_tree = _tree(by_copier), _tree(by_cookiecutter)
    assert set(copier_tree) - MAY_DIFFER == set(cookiecutter_tree) - MAY_DIFFER, (
        f"only copier: {sorted(set(copier_tree) - set(cookiecutter_tree))}; "
        f"only cookiecutter: {sorted(set(cookiecutter_tree) - set(copier_tree))}"
    )
    different = [
        name
        for name in sorted(set(copier_tree) - MAY_DIFFER)
        if copier_tree[name] != cookiecutter_tree[name]
    ]
    assert not different, f"different: {different}"


def test_cookiecutter_json_is_derived_from_copier_yml() -> None:
    expected = cookiecutter_json.render(cookiecutter_json.derive())
    assert (TEMPLATE_ROOT / "cookiecutter.json").read_text() == expected, (
        "cookiecutter.json is not what copier.yml gives: run make cookiecutter-json"
    )


def test_the_derivation_follows_a_change_of_copier_yml(tmp_path: Path) -> None:
    """The check above can fail: a new choice in copier.yml changes what is derived."""
    config = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    config["license"]["choices"]["GPL 3.0"] = "GPL-3.0"
    config["extra_question"] = {"type": "str", "help": "Extra", "default": "{{ project_name }}!"}
    changed = tmp_path / "copier.yml"
    changed.write_text(yaml.safe_dump(config, sort_keys=False))
    derived = cookiecutter_json.derive(changed)
    assert derived["license"][-1] == "GPL-3.0"
    assert derived["__prompts__"]["license"]["GPL-3.0"] == "GPL 3.0"
    assert derived["extra_question"] == "{{ cookiecutter.project_name }}!"
    original = cookiecutter_json.derive()
    for name, spec in yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text()).items():
        if name.startswith("_") or spec.get("when") is False:
            continue
        assert name in original, f"{name} is asked by copier, not by cookiecutter"
        default = original[name][0] if isinstance(original[name], list) else original[name]
        if "{{" not in str(spec.get("default", "")):
            assert default == str(spec.get("default", "")).strip(), name


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_both_engines_make_the_same_project(
    baked: Callable[..., Project],
    template_repo: Path,
    tmp_path: Path,
    cookiecutter_config: str,
    answers: dict[str, str],
) -> None:
    by_copier = baked(**answers).path
    made = cookiecutter(
        str(template_repo),
        no_input=True,
        extra_context=answers,
        output_dir=str(tmp_path / "out"),
        config_file=cookiecutter_config,
    )
    _assert_same_project(by_copier, Path(made))


def test_own_file_with_a_relative_path_and_a_git_url(
    template_repo: Path,
    tmp_path: Path,
    cookiecutter_config: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A relative dataset_path is read from where the engine runs, and the template can be a
    git URL: the same project either way, recording the same template for copier update."""
    url = f"git+file://{template_repo}"
    answers = {
        "project_name": "iris-model",
        "dataset": "file",
        "dataset_path": "data/iris.csv",
        "target_column": "species",
        "id_column": "plant_id",
    }
    for engine in ("copier", "cookiecutter"):
        (tmp_path / engine).mkdir()
    monkeypatch.chdir(tmp_path / "copier")
    copier.run_copy(url, "iris-model", data=answers, defaults=True, quiet=True, unsafe=False)
    monkeypatch.chdir(tmp_path / "cookiecutter")
    monkeypatch.setenv("PWD", str(tmp_path / "cookiecutter"))
    made = cookiecutter(url, no_input=True, extra_context=answers, config_file=cookiecutter_config)
    _assert_same_project(tmp_path / "copier" / "iris-model", Path(made))
    recorded = yaml.safe_load((Path(made) / ".copier-answers.yml").read_text())
    assert recorded["_src_path"] == url and recorded["_commit"] == "v0.1.0"
    dataset = yaml.safe_load((Path(made) / "data" / "dataset.yml").read_text())
    assert dataset["file"] == "../data/iris.csv"


def _cookiecutter_cli(
    template: Path, folder: Path, config: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--config-file", config, str(template), *args],
        cwd=folder,
        env={**os.environ, "PWD": str(folder)},  # as a shell in `folder` runs it
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    "answers",
    [
        {"package_name": "class"},  # a question's validator
        {"task": "regression", "model": "logistic_regression"},  # a choice's validator
        {"deployment": "kubernetes", "github_repository": "https://github.com/octo/churn"},
        # a question's validator that reads other answers: feast needs an id and a time column
        {
            "dataset": "file",
            "dataset_path": "t.csv",
            "target_column": "y",
            "feature_store": "feast",
        },
    ],
    ids=[
        "keyword-package",
        "model-for-the-other-task",
        "repository-url",
        "feast-without-id-and-time",
    ],
)
def test_bad_answers_are_refused_with_copier_s_message(
    template_repo: Path, tmp_path: Path, cookiecutter_config: str, answers: dict[str, str]
) -> None:
    with pytest.raises(ValueError) as refused:
        copier.run_copy(
            str(template_repo), tmp_path / "by-copier", data=answers, defaults=True, quiet=True
        )
    message = str(refused.value)
    pairs = [f"{key}={value}" for key, value in answers.items()]
    result = _cookiecutter_cli(
        template_repo, tmp_path / "out", cookiecutter_config, "--no-input", *pairs
    )
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert not list((tmp_path / "out").iterdir()), "cookiecutter removed the half-made project"


@pytest.mark.parametrize("output", ["projects/ml", "../elsewhere"])
def test_an_output_folder_gets_a_cd_that_works_from_where_cookiecutter_ran(
    template_repo: Path, tmp_path: Path, cookiecutter_config: str, output: str
) -> None:
    """`cookiecutter -o DIR`: the `cd` of copier's closing message is the project's path from
    the shell's folder, and a relative dataset_path is read from that folder too."""
    shell = tmp_path / "shell"
    answers = ["dataset=file", "dataset_path=tables/iris.csv", "target_column=species"]
    result = _cookiecutter_cli(
        template_repo, shell, cookiecutter_config, "--no-input", "-o", output, *answers
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cd = re.search(r"^ *cd (.+)$", result.stderr, re.M)
    assert cd is not None, result.stderr
    project = shell / shlex.split(cd.group(1))[0]
    assert project.resolve() == (shell / output / "my-model").resolve()
    assert (project / ".copier-answers.yml").is_file()
    dataset = yaml.safe_load((project / "data" / "dataset.yml").read_text())
    assert (project / dataset["file"]).resolve() == (shell / "tables" / "iris.csv").resolve()


def test_interactive_cookiecutter_offers_copier_s_defaults(
    baked: Callable[..., Project], template_repo: Path, tmp_path: Path, cookiecutter_config: str
) -> None:
    questions = [key for key in json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text())]
    asked = [key for key in questions if not key.startswith("_")]
    result = _cookiecutter_cli(
        template_repo, tmp_path / "out", cookiecutter_config, stdin="\n" * len(asked)
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Project name (the repository and the distribution name)" in result.stdout
    _assert_same_project(baked().path, tmp_path / "out" / "my-model")


def test_without_copier_cookiecutter_says_how_to_install_it(
    template_repo: Path, tmp_path: Path, cookiecutter_config: str
) -> None:
    """A cookiecutter installed alone: the pre-prompt hook stops before any question."""
    env = tool_env()
    uv = shutil.which("uv", path=env["PATH"])
    assert uv, "uv is on the tests' PATH (the dev environment installs it)"
    venv = tmp_path / "cookiecutter-alone"
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "cookiecutter"],
        check=True,
        env=env,
    )
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [
            str(python),
            "-m",
            "cookiecutter",
            "--no-input",
            "--config-file",
            cookiecutter_config,
            str(template_repo),
        ],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "uvx --with copier cookiecutter" in result.stderr, result.stderr[-3000:]
    assert not list(out.iterdir())
