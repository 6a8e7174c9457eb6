"""Fast rendering tests: every answer combination renders into a well-formed project."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import checkers
from harness.answers import OWN_FILE_FEAST, ask_copier, combination_id, matrix
from harness.dockerfile import docker_string, image_labels
from harness.project import Project

# Every choice of every question, as harness/answers.py derives the combinations from copier.yml,
# then named combinations for what the derivation does not reach: a remote's own URL and a
# custom schedule, a name with spaces, own files with every optional column, free text.
COMBINATIONS = [
    *(pytest.param(answers, id=combination_id(answers)) for answers in matrix()),
    pytest.param(
        {
            "dvc_remote": "azure",
            "dvc_remote_url": "azure://models/churn",
            "monitor_schedule": "*/30 2-4 * * MON-FRI",
        },
        id="azure-own-url-custom-schedule",
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
        OWN_FILE_FEAST,
        id="own-file-feast",
    ),
    pytest.param(
        # What each question allows of: a double quote, a backslash, '#', ':', non-ASCII letters
        # (and one outside the BMP), a leading space, and what Docker, Markdown or DVC (${...}
        # in dvc.yaml; a backslash before it) would read.
        {
            "project_name": "Churn  Model 2.0 - beta ",
            "description": ' # Say \\"hi\\": C:\\new """ café 😀 O\'Brien <a&b> $HOME'
            " ${HOME} \\${x}",
            "author_name": ' Zoë "Z" O\'Brien \\ #1: Jr.',
            "author_email": "zoe.o'brien+churn#1@exämple.org",
        },
        id="free-text",
    ),
]

# The files of every project, whatever the answers (<package> is the package name)...
ALWAYS = [
    ".copier-answers.yml",
    "AGENTS.md",
    ".dockerignore",
    ".dvc/.gitignore",
    ".dvc/config",
    ".dvcignore",
    ".github/dependabot.yml",
    ".github/workflows/cd.yml",
    ".github/workflows/ci.yml",
    ".github/workflows/monitor.yml",
    ".github/workflows/retrain.yml",
    ".github/workflows/template-sync.yml",
    ".gitignore",
    ".gto",
    ".hadolint.yaml",
    ".pre-commit-config.yaml",
    ".python-version",
    "Dockerfile",
    "Makefile",
    "README.md",
    "docs/ci-cd.md",
    "docs/data.md",
    "docs/model_card_intro.md",
    "docs/monitoring.md",
    "docs/pipeline.md",
    "docs/serving.md",
    "docs/updating.md",
    "dvc.yaml",
    "examples/request.json",
    "params.yaml",
    "pyproject.toml",
    "scripts/drift_issue.py",
    "scripts/dvc_lock.py",
    "scripts/setup.sh",
    "scripts/template_sync.sh",
    "src/<package>/__init__.py",
    "src/<package>/settings.py",
    "src/<package>/model.py",
    "src/<package>/contract/__init__.py",
    "src/<package>/contract/adopt.py",
    "src/<package>/contract/checks.py",
    "src/<package>/contract/infer.py",
    "src/<package>/contract/ingest.py",
    "src/<package>/contract/schema.py",
    "src/<package>/contract/tables.py",
    "src/<package>/pipeline/__init__.py",
    "src/<package>/pipeline/charts.py",
    "src/<package>/pipeline/evaluate.py",
    "src/<package>/pipeline/features.py",
    "src/<package>/pipeline/model_card.py",
    "src/<package>/pipeline/prepare.py",
    "src/<package>/pipeline/train.py",
    "src/<package>/pipeline/tune.py",
    "src/<package>/serving/__init__.py",
    "src/<package>/serving/api.py",
    "src/<package>/serving/batch.py",
    "src/<package>/serving/config.py",
    "src/<package>/serving/loading.py",
    "src/<package>/serving/metrics.py",
    "src/<package>/serving/middleware.py",
    "src/<package>/serving/server.py",
    "src/<package>/serving/service.py",
    "src/<package>/serving/prediction_log/__init__.py",
    "src/<package>/serving/prediction_log/rows.py",
    "src/<package>/serving/prediction_log/spool.py",
    "src/<package>/serving/prediction_log/store.py",
    "src/<package>/serving/prediction_log/writer.py",
    "src/<package>/monitoring/__init__.py",
    "src/<package>/monitoring/__main__.py",
    "src/<package>/monitoring/drift.py",
    "src/<package>/monitoring/feedback.py",
    "src/<package>/monitoring/quality.py",
    "src/<package>/monitoring/report.py",
    "src/<package>/monitoring/steps.py",
    "src/<package>/monitoring/traffic.py",
    "tests/conftest.py",
    "tests/test_data.py",
    "tests/test_features.py",
    "tests/test_ingest.py",
    "tests/test_model.py",
    "tests/test_monitor.py",
    "tests/test_predict.py",
    "tests/test_prediction_log.py",
    "tests/test_service.py",
    "tests/test_tune.py",
]


DEPLOY = [
    "argocd/production.yaml",
    "argocd/staging.yaml",
    "base/batch-cronjob.yaml",
    "base/batch.env",
    "base/deployment.yaml",
    "base/hpa.yaml",
    "base/kustomization.yaml",
    "base/networkpolicy-batch.yaml",
    "base/networkpolicy.yaml",
    "base/pdb.yaml",
    "base/service.env",
    "base/service.yaml",
    "base/serviceaccount.yaml",
    "overlays/production/kustomization.yaml",
    "overlays/production/service.env",
    "overlays/staging/kustomization.yaml",
    "overlays/staging/service.env",
]


def expected_files(answers: dict[str, str]) -> set[str]:
    """...and the files that answers add. Written out, not read from a render, so that a file
    the template adds or loses by mistake fails the test."""
    package = answers["package_name"]
    files = {name.replace("<package>", package) for name in ALWAYS}
    if answers["dataset"] == "sample":  # the bundled sample: its schema, generator and test
        files |= {"schema.yaml", f"src/{package}/contract/sample_data.py", "tests/test_sample.py"}
    if answers["dataset"] == "file":  # the user's file: what `make setup` adopts
        files |= {"data/dataset.yml"}
    if answers["license"] != "Proprietary":
        files |= {"LICENSE"}
    if answers["deployment"] == "kubernetes":  # deploy/ and its page, promotion, batch scoring
        files |= {"docs/deployment.md", *(f"deploy/{name}" for name in DEPLOY)}
        files |= {".github/workflows/promote.yml", ".github/workflows/batch.yml"}
        files |= {"tests/test_promotion.py"}
        modules = ("__init__", "__main__", "gate", "images", "overlay", "registry")
        files |= {f"src/{package}/promotion/{name}.py" for name in modules}
    if answers.get("feature_store") == "feast":  # feature_repo/, the store's package, its page
        files |= {f"feature_repo/{name}" for name in (".feastignore", "definitions.py")}
        files |= {"feature_repo/feature_store.yaml", "feature_repo/serving.yaml"}
        files |= {"docs/feature-store.md"}
        files |= {"tests/test_feature_store.py"}
        modules = ("__init__", "materialize", "online", "source", "training")
        files |= {f"src/{package}/store/{name}.py" for name in modules}
    return files


def _files(project: Project) -> set[str]:
    return {p.relative_to(project.path).as_posix() for p in project.path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_every_file_and_no_other(baked: Callable[..., Project], answers: dict[str, str]) -> None:
    project = baked(**answers)
    files, expected = _files(project), expected_files(project.answers)
    assert files == expected, (
        f"unexpected: {sorted(files - expected)}; missing: {sorted(expected - files)}"
    )


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_project_renders_well_formed(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    project = baked(**answers)
    _every_file_parses(project)
    _params_and_data(project)
    pyproject = tomllib.loads(project.read("pyproject.toml"))
    _free_text_answers(project, pyproject)
    _names_versions_and_dependencies(project, pyproject)


def _every_file_parses(project: Project) -> None:
    for name in sorted(_files(project)):
        path = project.path / name
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
            compile(text, str(path), "exec")  # a SyntaxError fails; no .pyc is written


def _params_and_data(project: Project) -> None:
    package = project.answers["package_name"]
    task = project.answers["task"]
    params = yaml.safe_load(project.read("params.yaml"))
    assert params["train"]["model"] == project.answers["model"]
    assert params["train"][project.answers["model"]] is not None, (
        "the chosen model has hyperparameters"
    )
    if project.answers["dataset"] == "sample":
        schema = yaml.safe_load(project.read("schema.yaml"))
        target = "churned" if task == "classification" else "spend_next_quarter"
        assert schema["task"] == task and schema["columns"][target]["role"] == "target"
        assert project.has_file(f"src/{package}/contract/sample_data.py")
        assert not project.has_file("data/dataset.yml")
    else:
        # Nothing of the sample: `make setup` adopts the answered file and writes the schema.
        assert not project.has_file("schema.yaml")
        assert not project.has_file(f"src/{package}/contract/sample_data.py")
        assert not project.has_file("tests/test_sample.py")
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


def _free_text_answers(project: Project, pyproject: dict[str, Any]) -> None:
    package = project.answers["package_name"]
    # Free-text answers: each string literal holds exactly the answer, prose the trimmed answer.
    description, author = project.answers["description"], project.answers["author_name"]
    assert pyproject["project"]["description"] == description
    assert pyproject["project"]["authors"] == [
        {"name": author, "email": project.answers["author_email"]}
    ]
    dvc_yaml = yaml.safe_load(project.read("dvc.yaml"))
    # DVC interpolates an unescaped ${...} of dvc.yaml, and reads \${ as ${ (its documented
    # escape; tests/e2e/test_lifecycle.py runs DVC on such a description).
    (desc,) = [a["desc"] for a in dvc_yaml["artifacts"].values()]
    assert not re.search(r"(?<!\\)\$\{", desc), desc
    assert desc.replace("\\${", "${") == description
    docstring = ast.get_docstring(ast.parse(project.read(f"src/{package}/__init__.py")))
    assert docstring is not None and docstring.startswith(f"{description.strip()}.\n")
    labels = image_labels(project.read("Dockerfile"))
    assert docker_string(labels["org.opencontainers.image.description"]) == description
    assert docker_string(labels["org.opencontainers.image.authors"]) == (
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


def _names_versions_and_dependencies(project: Project, pyproject: dict[str, Any]) -> None:
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
def test_generated_code_passes_its_own_linter(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    # As answered, and with the longest package name allowed: imports that fit for `my_model`
    # may not fit for it, and a statement split for a long name may fit on a line again.
    longest = {"project_name": "customer-lifetime-value-forecaster-2026a", **answers}
    for project in (baked(**answers), baked(**longest)):
        for command in (["check", "."], ["format", "--check", "."]):
            result = checkers.ruff(*command, cwd=project.path)
            assert result.returncode == 0, f"{project.path.name}: {result.stdout}{result.stderr}"


MAX_FUNCTION_LINES = 60


def long_functions(root: Path) -> list[str]:
    """Every function (or method) of the Python files under ``root`` longer than
    MAX_FUNCTION_LINES, as 'path:line name (N lines)'."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    where = path.relative_to(root).as_posix()
                    found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_no_function_of_the_generated_project_is_over_60_lines(
    baked: Callable[..., Project], answers: dict[str, str]
) -> None:
    """Short functions, each one job: in the package, its tests and its scripts."""
    project = baked(**answers)
    found = [f for part in ("src", "tests", "scripts") for f in long_functions(project.path / part)]
    assert not found, "split these functions:\n" + "\n".join(found)


def test_the_function_length_check_finds_a_long_function(tmp_path: Path) -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def short():\n    pass\n\n\nasync def long():\n{body}")
    assert long_functions(tmp_path) == [f"long.py:5 long ({MAX_FUNCTION_LINES + 1} lines)"]


def test_the_longest_project_name_gives_names_that_fit_a_file_name(
    baked: Callable[..., Project],
) -> None:
    # 100 characters, each spelt with two in the slug: the longest slug an answer can make.
    project = baked(project_name="ß" * 100, package_name="m")
    name = tomllib.loads(project.read("pyproject.toml"))["project"]["name"]
    assert name == "ss" * 100
    # The wheel uv builds of the project, and the local DVC storage: each one file name.
    for file_name in (f"{name.replace('-', '_')}-0.1.0-py3-none-any.whl", f"{name}-dvc-storage"):
        assert len(file_name.encode()) <= 255, file_name
    assert f"../../{name}-dvc-storage" in project.read(".dvc/config")


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
def test_invalid_answers_are_rejected(answers: dict[str, str], message: str) -> None:
    # copier's own validation of copier.yml, in a dry run (validation reads nothing else)
    with pytest.raises(ValueError, match=message):
        ask_copier(answers)


def test_template_code_is_lint_clean() -> None:
    # The template's own tests, harness and benchmarks (the generated code is checked above).
    root = Path(__file__).resolve().parents[1]
    for command in (["check", "."], ["format", "--check", "."]):
        result = checkers.ruff(*command, cwd=root)
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
