"""Fast rendering tests: every answer combination renders into a well-formed project."""

from __future__ import annotations

import ast
import json
import py_compile
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.project import Project
from tests.test_dockerfile import _docker_string, _labels

MINIMAL: dict[str, str] = {}
COMBINATIONS = [
    pytest.param(MINIMAL, id="defaults"),
    pytest.param({"model": "gradient_boosting"}, id="classification-gradient-boosting"),
    pytest.param(
        {"model": "logistic_regression", "license": "Apache-2.0"}, id="classification-logistic"
    ),
    pytest.param({"task": "regression"}, id="regression-random-forest"),
    pytest.param(
        {"task": "regression", "model": "gradient_boosting", "python_version": "3.12"},
        id="regression-gradient-boosting",
    ),
    pytest.param(
        {
            "task": "regression",
            "model": "ridge",
            "python_version": "3.13",
            "license": "BSD-3-Clause",
        },
        id="regression-ridge",
    ),
    pytest.param({"dvc_remote": "s3", "license": "Proprietary"}, id="s3-remote"),
    pytest.param({"dvc_remote": "gs"}, id="gcs-remote"),
    pytest.param(
        {"dvc_remote": "azure", "dvc_remote_url": "azure://models/churn"}, id="azure-remote"
    ),
    pytest.param(
        {"project_name": "Fraud Detector 2.", "description": "Finds fraud"}, id="name-with-spaces"
    ),
    pytest.param(
        {"dataset": "file", "dataset_path": "data/penguins.csv", "target_column": "species"},
        id="own-file-classification",
    ),
    pytest.param(
        {
            "dataset": "file",
            "task": "regression",
            "model": "ridge",
            "dataset_path": "/srv/exports/house prices (2024).parquet",
            "target_column": "Sale Price ($)",
            "id_column": "Id",
            "timestamp_column": "sold at",
        },
        id="own-file-regression",
    ),
    pytest.param(
        # What each question allows of: a double quote, a backslash, '#', ':', non-ASCII letters
        # (and one outside the BMP), a leading space, and what Docker or Markdown would read.
        {
            "project_name": "Churn  Model 2.0 - beta ",
            "description": ' # Say \\"hi\\": C:\\new """ café 😀 O\'Brien <a&b> $HOME',
            "author_name": ' Zoë "Z" O\'Brien \\ #1: Jr.',
            "author_email": "zoe.o'brien+churn#1@exämple.org",
        },
        id="free-text",
    ),
]


def _text_files(project: Project) -> list[Path]:
    return [p for p in project.path.rglob("*") if p.is_file() and ".git" not in p.parts]


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_project_renders_well_formed(bake, answers: dict[str, str]) -> None:
    project = bake(**answers)
    package = project.answers["package_name"]
    task = project.answers["task"]

    for name in [
        "pyproject.toml",
        "dvc.yaml",
        "params.yaml",
        "Makefile",
        "README.md",
        ".pre-commit-config.yaml",
        ".dvc/config",
        "examples/request.json",
        f"src/{package}/features.py",
        f"src/{package}/train.py",
        f"src/{package}/service.py",
        f"src/{package}/monitor.py",
        "tests/test_service.py",
        ".copier-answers.yml",
    ]:
        assert project.has_file(name), name
    assert project.has_file("LICENSE") == (project.answers["license"] != "Proprietary")

    for path in _text_files(project):
        text = path.read_text()
        # GitHub's own ${{ ... }} expressions (the workflows) are not Jinja.
        assert "{{" not in text.replace("${{", "") and "{%" not in text, (
            f"unrendered Jinja in {path.name}"
        )
        if path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".py":
            py_compile.compile(str(path), doraise=True)

    params = yaml.safe_load(project.read("params.yaml"))
    assert params["train"]["model"] == project.answers["model"]
    assert params["train"][project.answers["model"]] is not None, (
        "the chosen model has hyperparameters"
    )
    if project.answers["dataset"] == "sample":
        schema = yaml.safe_load(project.read("schema.yaml"))
        target = "churned" if task == "classification" else "spend_next_quarter"
        assert schema["task"] == task and schema["columns"][target]["role"] == "target"
        assert project.has_file(f"src/{package}/sample_data.py")
        assert not project.has_file("data/dataset.yml")
    else:
        # Nothing of the sample: `make setup` adopts the answered file and writes the schema.
        assert not project.has_file("schema.yaml")
        assert not project.has_file(f"src/{package}/sample_data.py")
        dataset = yaml.safe_load(project.read("data/dataset.yml"))
        answers = project.answers
        assert dataset["target"] == answers["target_column"]
        assert dataset["id"] == (answers["id_column"] or None)
        assert dataset["timestamp"] == (answers["timestamp_column"] or None)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(answers["dataset_path"]).name)
        assert params["data"] == {
            "raw": f"data/raw/{name}",
            "current": "data/prepared/test.parquet",
        }
    pyproject = tomllib.loads(project.read("pyproject.toml"))
    # Free-text answers: each string literal holds exactly the answer, prose the trimmed answer.
    description, author = project.answers["description"], project.answers["author_name"]
    assert pyproject["project"]["description"] == description
    assert pyproject["project"]["authors"] == [
        {"name": author, "email": project.answers["author_email"]}
    ]
    dvc_yaml = yaml.safe_load(project.read("dvc.yaml"))
    assert [a["desc"] for a in dvc_yaml["artifacts"].values()] == [description]
    docstring = ast.get_docstring(ast.parse(project.read(f"src/{package}/__init__.py")))
    assert docstring is not None and docstring.startswith(f"{description.strip()}.\n")
    labels = _labels(project.read("Dockerfile"))
    assert _docker_string(labels["org.opencontainers.image.description"]) == description
    assert _docker_string(labels["org.opencontainers.image.authors"]) == (
        f"{author} <{project.answers['author_email']}>"
    )
    heading, blank, summary = project.read("README.md").splitlines()[:3]
    assert (heading, blank) == (f"# {project.answers['project_name'].strip()}", "")
    # A paragraph, not a heading, list, quote, code or HTML block; CommonMark's backslash
    # escapes read back to the description.
    assert not re.match(r"\s|[#>+*=|~`<\[_-]|[0-9]*[.)]", summary), summary
    assert re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", summary) == f"{description.strip()}."
    if project.has_file("LICENSE"):
        assert f" {author.strip()}\n" in project.read("LICENSE")
    # A valid distribution name (PEP 508), also the image, model and DVC storage name.
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", pyproject["project"]["name"])
    assert "project_slug" not in project.answers, "derived, not an answer to remember"
    assert pyproject["project"]["requires-python"] == f">={project.answers['python_version']}"
    assert project.read(".python-version").strip() == project.answers["python_version"]
    serving = " ".join(pyproject["project"]["dependencies"])
    assert "dvc" not in serving and "evidently" not in serving, "serving needs only serving deps"
    dvc_config = project.read(".dvc/config")
    if project.answers["dvc_remote"] == "local":
        assert "-dvc-storage" in dvc_config
    else:
        assert project.answers["dvc_remote_url"] in dvc_config
        assert f"dvc[{project.answers['dvc_remote']}]" in " ".join(
            pyproject["dependency-groups"]["pipeline"]
        )


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_generated_code_passes_its_own_linter(bake, answers: dict[str, str]) -> None:
    # The longest package name allowed: imports that fit for `my_model` may not fit for it.
    project = bake(**{"project_name": "customer-lifetime-value-forecaster-2026a", **answers})
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=project.path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "my-model!"}, "not a valid Python package name"),
        ({"package_name": "class"}, "is a Python keyword"),
        ({"package_name": "1model"}, "not a valid Python package name"),
        ({"package_name": "m" * 41}, "longer than 40 characters"),
        ({"author_email": "jane.example.com"}, "is not an e-mail address"),
        ({"project_name": "-x"}, "must start with a letter"),
        ({"task": "regression", "model": "logistic_regression"}, "Only for classification"),
        ({"task": "classification", "model": "ridge"}, "Only for regression"),
        ({"dvc_remote": "s3", "dvc_remote_url": "gs://wrong"}, "must start with s3://"),
        ({"dataset": "file", "dataset_path": "t.csv"}, "Name the column"),
        ({"dataset": "file", "dataset_path": "t.txt", "target_column": "y"}, "a .csv, .csv.gz"),
        (
            {"dataset": "file", "dataset_path": "t.csv", "target_column": "y", "id_column": "y"},
            "cannot be the target",
        ),
    ],
)
def test_invalid_answers_are_rejected(bake, answers: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bake(**answers)


def test_template_code_is_lint_clean() -> None:
    # The template's own tests, harness and benchmarks (the generated code is checked above).
    root = Path(__file__).resolve().parents[1]
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("destination", "dataset_path", "expected"),
    [
        ("churn", "tables/churn.csv", "../tables/churn.csv"),
        ("work/churn", "churn.csv", "../../churn.csv"),
        ("./churn", "/srv/churn.csv", "/srv/churn.csv"),
    ],
)
def test_a_relative_dataset_path_means_from_where_copier_ran(
    template_repo: Path, tmp_path: Path, destination: str, dataset_path: str, expected: str
) -> None:
    # The copier CLI, run from tmp_path: make setup reads the path from the project folder.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "copier",
            "copy",
            "--defaults",
            "--quiet",
            *("--data", "dataset=file"),
            *("--data", f"dataset_path={dataset_path}"),
            *("--data", "target_column=y"),
            str(template_repo),
            destination,
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    dataset = yaml.safe_load((tmp_path / destination / "data" / "dataset.yml").read_text())
    assert dataset["file"] == expected
    if not expected.startswith("/"):
        assert (tmp_path / destination / expected).resolve() == (tmp_path / dataset_path).resolve()
