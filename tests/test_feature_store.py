"""Fast checks of the `feature_store` question: feast is refused without an id and a timestamp
column, and Feast is in a project that chose it and nowhere in one that did not."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable

import pytest
import yaml

from harness.answers import OWN_FILE_FEAST, ask_copier
from harness.project import Project

OWN_FILE = {"dataset": "file", "dataset_path": "t.csv", "target_column": "y"}
# The bundled sample's id and time columns: a project on a user's own file must not name them.
SAMPLE_KEYS = ("customer_id", "event_timestamp")


@pytest.mark.parametrize(
    "columns",
    [
        {},
        {"id_column": "id"},
        {"timestamp_column": "at"},
        {"id_column": " ", "timestamp_column": "at"},
    ],
    ids=["neither", "no-timestamp", "no-id", "blank-id"],
)
def test_feast_without_an_id_and_a_timestamp_column_is_refused(columns: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="feature_store=feast needs an id column") as refused:
        ask_copier({**OWN_FILE, **columns, "feature_store": "feast"})
    message = [line for line in str(refused.value).splitlines() if "feature_store=feast" in line]
    assert len(message) == 1 and "choose feature_store=module" in message[0]


def test_feast_is_accepted_with_both_columns_and_with_the_sample() -> None:
    ask_copier({**OWN_FILE, "id_column": "id", "timestamp_column": "at", "feature_store": "feast"})
    ask_copier({"feature_store": "feast"})


def _feast_traces(project: Project) -> list[str]:
    found = [p.relative_to(project.path).as_posix() for p in project.path.rglob("*")]
    files = [name for name in found if "feast" in name or "feature_repo" in name]
    files += [name for name in found if name.endswith("/store/__init__.py")]
    for name in ("pyproject.toml", "dvc.yaml", "params.yaml", "Dockerfile", ".dockerignore"):
        if "feast" in project.read(name).lower():
            files.append(name)
    service = project.read(f"src/{project.answers['package_name']}/serving/service.py")
    if "store" in service.lower():
        files.append("serving/service.py")
    return files


def test_the_default_project_has_no_trace_of_feast(baked: Callable[..., Project]) -> None:
    assert _feast_traces(baked()) == []


def test_a_feast_project_has_the_store_the_stages_and_the_dependency(
    baked: Callable[..., Project],
) -> None:
    project = baked(feature_store="feast")
    for name in (
        "feature_repo/feature_store.yaml",
        "feature_repo/definitions.py",
        "feature_repo/.feastignore",
        "docs/feature-store.md",
        "tests/test_feature_store.py",
        "src/my_model/store/online.py",
    ):
        assert project.has_file(name), name
    config = yaml.safe_load(project.read("feature_repo/feature_store.yaml"))
    assert config["offline_store"]["type"] == "duckdb"  # the file store drops unmatched labels
    assert config["online_store"]["type"] == "sqlite"
    serving_config = yaml.safe_load(project.read("feature_repo/serving.yaml"))
    assert "offline_store" not in serving_config  # the image has no DuckDB
    assert serving_config["online_store"] == config["online_store"]
    stages = yaml.safe_load(project.read("dvc.yaml"))["stages"]
    order = list(stages)
    assert order.index("prepare") < order.index("feature_source") < order.index("features")
    assert stages["feature_store"]["cmd"][0] == "feast -c feature_repo apply"
    assert yaml.safe_load(project.read("params.yaml"))["feature_store"]["ttl_days"] > 0
    pyproject = tomllib.loads(project.read("pyproject.toml"))
    assert any(d.startswith("feast>=") for d in pyproject["project"]["dependencies"])
    assert any(d.startswith("feast[duckdb]") for d in pyproject["dependency-groups"]["pipeline"])
    dockerfile = project.read("Dockerfile")
    assert "COPY data/feast/store" in dockerfile
    # typeguard's @typechecked, on Feast's classes, reads their sources at import.
    assert '-not -path "*/site-packages/feast/*"' in dockerfile
    assert "name: feature-store" in project.read(".github/workflows/ci.yml")


def test_a_feast_project_on_a_users_file_keys_the_store_by_its_columns(
    baked: Callable[..., Project],
) -> None:
    """What rendering decides for a user's own file: `make setup` infers schema.yaml from the
    file with the answered id and time columns (data/dataset.yml), and every part of the
    store takes its entity, event time and value types from schema.yaml (the project's own
    tests/test_feature_store.py checks the definitions for an integer and a text id under
    other names); nothing of the store names the sample's columns."""
    project = baked(**OWN_FILE_FEAST)
    dataset = yaml.safe_load(project.read("data/dataset.yml"))
    assert (dataset["id"], dataset["timestamp"]) == ("account_ref", "seen_at")
    assert not project.has_file("schema.yaml"), "make setup writes it from the user's file"
    package = project.answers["package_name"]
    store_files = [
        path
        for folder in ("feature_repo", f"src/{package}/store")
        for path in sorted((project.path / folder).rglob("*"))
        if path.is_file()
    ]
    others = ("dvc.yaml", "Dockerfile", "docs/feature-store.md", "tests/test_feature_store.py")
    store_files += [project.path / name for name in others]
    store_files += sorted((project.path / ".github" / "workflows").glob("*.yml"))
    for path in store_files:
        text = path.read_text()
        named = [key for key in SAMPLE_KEYS if re.search(rf"\b{key}\b", text)]
        assert not named, f"{path.relative_to(project.path)} names the sample's {named}"
    assert "load_schema" in project.read("feature_repo/definitions.py")
    assert '"account_ref 123 is not in the feature store' in project.read("docs/feature-store.md")
    own_tests = project.read("tests/test_feature_store.py")
    assert "text id, other names" in own_tests and "value_type" in own_tests
