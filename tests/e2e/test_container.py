"""End to end: the generated project's container image, built with Podman and run with Buildah.

make setup -> make pipeline -> make docker (Podman; the debootstrap base stands in for
python:3.11-slim through BASE_IMAGE) -> the image's configuration: a numeric non-root USER,
exec-form CMD, HEALTHCHECK, OCI labels -> only the serving dependencies inside -> the image's
own command as the image's user: the healthcheck passes, 200 with predictions, 400 for a
malformed body, no process is root -> SIGTERM with a request in flight: it exits within the
stop grace period, having written nothing outside /tmp -> the libraries slimmed (bytecode
without sources, no stubs), and every model answer's estimator fits, round-trips through
joblib and predicts in the image -> the Kubernetes manifests (deploy/, deployment=kubernetes)
agree with the image: its user, port, probe paths; the service predicts on a read-only root
with only the manifest's emptyDir writable, and stops within the manifest's grace period ->
the image-size benchmark (serving image at most 400 MB).

Without Podman and Buildah the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness import checkers, containers
from harness.answers import choices, questions
from harness.project import (
    TEMPLATE_ROOT,
    Project,
    bake_project,
    free_port,
    git,
    require,
    wait_until_ready,
)

pytestmark = pytest.mark.e2e

STOP_GRACE_S = 10  # what `docker stop` and Kubernetes wait between SIGTERM and SIGKILL
SERVICE_UID = 10001


@dataclass
class Image:
    project: Project
    ref: str
    config: dict[str, Any]

    @property
    def command(self) -> list[str]:
        return list(self.config.get("Entrypoint") or []) + list(self.config.get("Cmd") or [])


def _require_container_tools() -> None:
    missing = containers.missing_tools()
    require(
        not missing,
        f"the container tests need {', '.join(missing)} "
        "(.ci/deps.d/podman.sh installs them as root)",
    )


@pytest.fixture(scope="module")
def image(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    """A generated project, its pipeline run, and its serving image built by `make docker`."""
    _require_container_tools()
    containers.ensure_base_image()
    project = bake_project(
        template_repo,
        tmp_path_factory.mktemp("container") / "churn-service",
        project_name="churn-service",
        python_version=containers.BASE_PYTHON,
        deployment="kubernetes",  # deploy/: its manifests are checked against this image
    )
    project.run("make", "setup")
    project.run("make", "pipeline")
    git(project.path, "add", "--all")
    git(project.path, "commit", "--quiet", "--no-verify", "-m", "Pipeline run")

    ref = containers.make_docker(project, "localhost/churn-service-e2e")
    try:
        yield Image(project, ref, containers.image_config(ref))
    finally:
        containers.remove_image(ref)


def test_image_configuration(image: Image) -> None:
    config, package = image.config, image.project.answers["package_name"]

    user = config["User"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER must be a numeric non-root id, not {user!r}"
    assert not gid or (gid.isdigit() and int(gid) != 0), user

    assert image.command[:3] == ["bentoml", "serve", f"{package}.serving.service:ModelService"], (
        image.command
    )
    grace = image.command[image.command.index("--timeout-graceful-shutdown") + 1]
    assert int(grace) < STOP_GRACE_S, "the drain must end before the orchestrator's SIGKILL"
    assert config.get("StopSignal", "SIGTERM") == "SIGTERM"

    healthcheck = config["Healthcheck"]
    assert healthcheck and healthcheck["Test"][0] == "CMD", healthcheck
    assert "/readyz" in " ".join(healthcheck["Test"])

    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["MODEL_PATH"] == "/app/models/model.joblib"
    assert "3000/tcp" in config.get("ExposedPorts", {})

    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "churn-service"
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert (
        labels["org.opencontainers.image.revision"]
        == git(image.project.path, "rev-parse", "HEAD").strip()
    )
    assert labels["org.opencontainers.image.created"].startswith("20")
    assert labels["org.opencontainers.image.licenses"] == "MIT"


def test_image_holds_only_what_serving_needs(image: Image) -> None:
    package = image.project.answers["package_name"]
    probe = f"""
import importlib.util, json, os, shutil, site
print(json.dumps({{
    "uid": os.getuid(),
    "present": {{m: importlib.util.find_spec(m) is not None for m in
                ["bentoml", "sklearn", "pandas", "{package}", "dvc", "evidently", "pytest",
                 "ruff", "pre_commit", "pyarrow", "uv"]}},
    "package_at": importlib.util.find_spec("{package}").origin,
    "app": sorted(os.listdir("/app")),
    "model": os.path.isfile(os.environ["MODEL_PATH"]),
    "compilers": [c for c in ["gcc", "cc", "g++", "make", "strip"] if shutil.which(c)],
    "venv_writable": os.access("/app/.venv/lib", os.W_OK),
    "files": [os.path.join(folder, name) for folder, _, names in os.walk(site.getsitepackages()[0])
              for name in names],
}}))
"""
    with containers.working_container(image.ref) as ctr:
        out = _in_container(ctr, 3000, "python", "-c", probe)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    files = found.pop("files")
    assert found["uid"] == SERVICE_UID
    present = found["present"]
    assert all(present[m] for m in ["bentoml", "sklearn", "pandas", package]), present
    unwanted = [
        m
        for m in ["dvc", "evidently", "pytest", "ruff", "pre_commit", "pyarrow", "uv"]
        if present[m]
    ]
    assert not unwanted, f"not serving dependencies, yet in the image: {unwanted}"
    assert found["package_at"].startswith("/app/.venv/"), (
        "the package is installed, not a source tree"
    )
    # The environment and the model (which carries the contract the service's API is built from).
    assert found["app"] == [".venv", "models"], found["app"]
    assert found["model"] and not found["compilers"] and not found["venv_writable"], found
    # The libraries as bytecode alone (no sources, stubs, C sources); the package keeps its
    # sources beside its bytecode, so that a traceback through it shows the lines.
    package_dir = str(Path(found["package_at"]).parent) + "/"
    libraries = Counter(Path(f).suffix for f in files if not f.startswith(package_dir))
    own = Counter(Path(f).suffix for f in files if f.startswith(package_dir))
    assert libraries[".pyc"] > 1000 and own[".py"] > 5 and own[".pyc"] >= own[".py"], own
    kept = {s: libraries[s] for s in (".py", ".pyi", ".pyx", ".pxd", ".c", ".cpp", ".h")}
    assert not any(kept.values()), f"library sources and stubs in the image: {kept}"


COMPILED_PROBE = """
import importlib, importlib._bootstrap_external as loaders, json, sys
from importlib.metadata import entry_points
compiled = []
to_code = loaders.SourceLoader.source_to_code
def counted(self, data, path, *args, **kwargs):
    compiled.append(path)
    return to_code(self, data, path, *args, **kwargs)
loaders.SourceLoader.source_to_code = counted
script, *modules = sys.argv[1:]
for module in [*modules, *(e.module for e in entry_points(group="console_scripts", name=script))]:
    importlib.import_module(module)
print(json.dumps({"modules": len(sys.modules), "compiled": compiled}))
"""


def test_serving_compiles_no_module_at_start(image: Image) -> None:
    """Every module the service imports has valid bytecode in the image: none is compiled
    from source (in memory, at each start of each worker: seconds) because its bytecode is
    missing or stale."""
    # The command's script (bentoml), the service's module, and BentoML's worker process.
    script, service = image.command[0], image.command[2].split(":")[0]
    modules = [service, "_bentoml_impl.worker.service"]
    with containers.working_container(image.ref) as ctr:
        out = _in_container(ctr, 3000, "python", "-c", COMPILED_PROBE, script, *modules)
    assert out.returncode == 0, out.stderr[-4000:]
    found = json.loads(out.stdout)
    assert found["modules"] > 1000 and found["compiled"] == [], found


# What each model answer (copier.yml's `model`) trains, per task: the image must load and
# predict with any of them, though the test builds it once, for the default.
ESTIMATORS = {
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier", "RandomForestRegressor"),
    "gradient_boosting": (
        "sklearn.ensemble",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    ),
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression", None),
    "ridge": ("sklearn.linear_model", None, "Ridge"),
}
MODELS_PROBE = """
import importlib, io, json, sys
import joblib, numpy as np, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

rng = np.random.default_rng(0)
x = pd.DataFrame({"n": rng.normal(size=300), "c": rng.choice(["a", "b", "c"], 300)})
x.loc[::7, "n"] = np.nan
targets = {"classification": (x["c"] == "a").astype(int), "regression": x["n"].fillna(0) * 2}
answered = {}
for answer, (module, *classes) in json.loads(sys.argv[1]).items():
    for task, name in zip(["classification", "regression"], classes, strict=True):
        if name is None:
            continue
        trees = "Forest" in name or "Gradient" in name
        encode = (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1) if trees
                  else OneHotEncoder(handle_unknown="ignore"))
        prepare = ColumnTransformer([
            ("n", make_pipeline(SimpleImputer(), StandardScaler()), ["n"]), ("c", encode, ["c"])])
        model = make_pipeline(prepare, getattr(importlib.import_module(module), name)())
        saved = io.BytesIO()
        joblib.dump(model.fit(x, targets[task]), saved)
        loaded = joblib.load(io.BytesIO(saved.getvalue()))
        answered[f"{answer}/{task}"] = len(loaded.predict(x.head(5)))
print(json.dumps(answered))
"""


def test_every_model_answer_fits_and_predicts_in_the_image(image: Image) -> None:
    """The libraries are bytecode without sources, their extensions stripped: each model
    answer's estimator, with the train stage's preprocessing, fits, round-trips through joblib
    and predicts in the image (the served model, the default's, is checked below)."""
    assert set(ESTIMATORS) == set(choices(questions()["model"])), "a model answer is unchecked"
    with containers.working_container(image.ref) as ctr:
        out = _in_container(ctr, 3000, "python", "-c", MODELS_PROBE, json.dumps(ESTIMATORS))
    assert out.returncode == 0, out.stderr[-4000:]
    answered = json.loads(out.stdout)
    expected = {
        f"{answer}/{task}"
        for answer, (_, *classes) in ESTIMATORS.items()
        for task, name in zip(["classification", "regression"], classes, strict=True)
        if name
    }
    assert answered == dict.fromkeys(expected, 5), answered


def test_container_serves_as_non_root_and_stops_within_grace(image: Image, tmp_path: Path) -> None:
    port = free_port()
    healthcheck = image.config["Healthcheck"]["Test"][1:]
    log_path = tmp_path / "server.log"
    with containers.working_container(image.ref) as ctr, log_path.open("w") as log:
        rootfs = Path(containers.run("buildah", "mount", ctr).stdout.strip())
        since = time.time() - 1
        # Exactly what the image starts, as the image's user; only the port is moved.
        server = subprocess.Popen(
            containers.buildah_run(ctr, port, *image.command),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started: list[int] = []
        try:
            _wait_ready(server, f"http://127.0.0.1:{port}/readyz", log_path)
            started = _descendants(server.pid)
            check = _in_container(ctr, port, *healthcheck)
            assert check.returncode == 0, (
                f"the image's HEALTHCHECK fails on a ready service: {check.stderr}"
            )
            _serves_predictions_and_refuses_a_malformed_body(image, port)
            main = _server_process(server.pid, image.command)
            for pid in [main, *[p for p in _descendants(main)]]:
                uids = _uids(pid)
                assert uids and all(u == SERVICE_UID for u in uids), f"pid {pid} runs as {uids}"
            _stops_within_grace_with_a_request_in_flight(image, server, main, port, log_path)
            assert not [p for p in started if _alive(p)], "worker processes outlived the server"
        finally:
            if server.poll() is None:
                for pid in [*started, server.pid]:
                    _kill(pid)
                server.wait(timeout=30)
        down = _in_container(ctr, port, *healthcheck)
        assert down.returncode != 0, "the HEALTHCHECK must fail when the service is down"
        _wrote_nothing_outside_tmp(rootfs, since)
    log_text = log_path.read_text()
    assert "Service" in log_text and "initialized" in log_text, log_text[-4000:]


def _serves_predictions_and_refuses_a_malformed_body(image: Image, port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    request = json.loads(image.project.read("examples/request.json"))
    answer = httpx.post(f"{base}/predict", json=request, timeout=30)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()
    assert [p["customer_id"] for p in predictions] == [r["customer_id"] for r in request["records"]]
    assert all(p["prediction"] in (0, 1) for p in predictions)
    malformed = httpx.post(
        f"{base}/predict",
        content=b'{"records": [',
        timeout=30,
        headers={"Content-Type": "application/json"},
    )
    assert 400 <= malformed.status_code < 500, (malformed.status_code, malformed.text)


def _stops_within_grace_with_a_request_in_flight(
    image: Image, server: subprocess.Popen, main: int, port: int, log_path: Path
) -> None:
    """A request still arriving when SIGTERM comes: the server waits for it, but no longer
    than its graceful-shutdown timeout, inside the orchestrator's grace."""
    body = json.dumps(json.loads(image.project.read("examples/request.json"))).encode()
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
    )
    time.sleep(0.5)
    stop = time.monotonic()
    os.kill(main, signal.SIGTERM)
    try:
        returncode = server.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_GRACE_S} s after SIGTERM: Docker would SIGKILL it")
    stopped_in = time.monotonic() - stop
    slow.close()
    assert returncode == 0, log_path.read_text()[-4000:]
    print(f"stopped {stopped_in:.1f} s after SIGTERM, with a request in flight")


def _wrote_nothing_outside_tmp(rootfs: Path, since: float) -> None:
    """It wrote nowhere but /tmp: a read-only root filesystem with a tmpfs on /tmp works.
    (The runtime, not the service, sets up /run and /etc's hosts, hostname, resolv.conf.)"""
    written = sorted("/" + str(path.relative_to(rootfs)) for path in _changed_since(rootfs, since))
    runtime = {"/tmp", "/run", "/etc", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
    elsewhere = [p for p in written if p not in runtime and not p.startswith("/tmp/")]
    assert not elsewhere, f"the service wrote outside /tmp: {elsewhere}"


# --- the Kubernetes manifests against the image ----------------------------------------------

READ_ONLY_ROOT = """
set -eu
root=$1 ro=$2 mounts=$3 user=$4
shift 4
# The runtime's files need a mount point: in the working container's own layer.
for file in hosts hostname resolv.conf; do [ -e "$root/etc/$file" ] || touch "$root/etc/$file"; done
mount --bind "$root" "$ro"
mount -o remount,bind,ro "$ro"
for path in $mounts; do mount -t tmpfs -o mode=1777 tmpfs "$ro$path"; done
mount -t proc proc "$ro/proc"
mount --rbind /dev "$ro/dev"
for file in hosts hostname resolv.conf; do  # the runtime's, as the kubelet's (not the image's)
    mount --bind -o ro "/etc/$file" "$ro/etc/$file"
done
exec chroot --userspec="$user" "$ro" /usr/bin/env -i "$@"
"""
WRITE_PROBE = """
import json, os, sys
found = {}
for folder in sys.argv[1:]:
    try:
        with open(os.path.join(folder, ".write-probe"), "w"):
            pass
        found[folder] = "written"
    except OSError as error:
        found[folder] = error.strerror
print(json.dumps(found))
"""


@dataclass
class Pod:
    """The rendered production Deployment's pod, as the kubelet would run it from the image."""

    spec: dict[str, Any]
    settings: dict[str, str]  # its ConfigMap

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.spec["containers"]
        return container

    @property
    def writable(self) -> list[str]:
        """Where the pod may write: its emptyDir volumes' mount paths."""
        empty = {v["name"] for v in self.spec["volumes"] if "emptyDir" in v}
        return [m["mountPath"] for m in self.container["volumeMounts"] if m["name"] in empty]

    def probe(self, kind: str) -> tuple[str, int]:
        get = self.container[kind]["httpGet"]
        ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        return get["path"], ports.get(get["port"], get["port"])


@pytest.fixture(scope="module")
def pod(image: Image) -> Pod:
    out = checkers.kustomize(image.project.path / "deploy" / "overlays" / "production")
    assert out.returncode == 0, out.stderr
    docs = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    (settings,) = [maps[e["configMapRef"]["name"]] for e in spec["containers"][0]["envFrom"]
                   if "configMapRef" in e]  # fmt: skip
    return Pod(spec, settings)


def _read_only(rootfs: str, pod: Pod, ro: Path, env: dict[str, str], *command: str) -> list[str]:
    """``command`` in the image's root filesystem (``ro``, read-only), as the pod's user, with a
    tmpfs where the pod has an emptyDir, in a mount namespace of its own: what the kubelet
    does with readOnlyRootFilesystem (Podman's --read-only cannot run here)."""
    context = pod.spec["securityContext"]
    user = f"{context['runAsUser']}:{context['runAsGroup']}"
    ro.mkdir(exist_ok=True)
    variables = [f"{k}={v}" for k, v in env.items()]
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", READ_ONLY_ROOT,
            "sh", rootfs, str(ro), " ".join(pod.writable), user, *variables, *command]  # fmt: skip


def test_manifests_agree_with_the_image(image: Image, pod: Pod) -> None:
    """The Deployment runs the image as the image would run: its user, its port."""
    user, _, group = image.config["User"].partition(":")
    context = pod.spec["securityContext"]
    assert context["runAsNonRoot"] is True
    assert (str(context["runAsUser"]), str(context["runAsGroup"])) == (user, group or user)
    env = dict(item.split("=", 1) for item in image.config["Env"])
    (port,) = pod.container["ports"]
    assert str(port["containerPort"]) == env["BENTOML_PORT"]
    assert f"{port['containerPort']}/tcp" in image.config["ExposedPorts"]
    # What the service writes (BentoML's home, the prediction log and its spool) is on an
    # emptyDir: the image's defaults, and the ConfigMap's.
    paths = [env["BENTOML_HOME"], env["PREDICTION_LOG"], pod.settings["PREDICTION_LOG_SPOOL"]]
    for path in paths:
        assert any(path.startswith(w.rstrip("/") + "/") for w in pod.writable), (path, pod.writable)
    assert "command" not in pod.container and "args" not in pod.container, "the image's CMD"


def test_pod_serves_on_a_read_only_root(image: Image, pod: Pod, tmp_path: Path) -> None:
    """The service starts and predicts on a read-only root, the emptyDir alone writable; its
    probes answer 200; SIGTERM stops it inside the grace period the preStop hook leaves."""
    port = free_port()
    env = dict(item.split("=", 1) for item in image.config["Env"])
    # The ConfigMap's settings, except the production bucket, not reachable here: the image's
    # default log folder, under /tmp, stands in for it.
    env |= {k: v for k, v in pod.settings.items() if k != "PREDICTION_LOG"}
    env["BENTOML_PORT"] = str(port)

    with containers.working_container(image.ref) as ctr:
        rootfs = containers.run("buildah", "mount", ctr).stdout.strip()
        _on_a_read_only_root(image, pod, rootfs, env, tmp_path)


def _on_a_read_only_root(
    image: Image, pod: Pod, rootfs: str, env: dict[str, str], tmp_path: Path
) -> None:
    port = int(env["BENTOML_PORT"])
    probe = _read_only(rootfs, pod, tmp_path / "probe", env, "python", "-c", WRITE_PROBE,
                       "/", "/app", "/app/models", "/var/tmp", *pod.writable)  # fmt: skip
    out = subprocess.run(probe, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    written = json.loads(out.stdout)
    assert {p for p, result in written.items() if result == "written"} == set(pod.writable), written
    assert set(written.values()) <= {"written", "Read-only file system"}, written
    pre_stop = pod.container["lifecycle"]["preStop"]["exec"]["command"]
    found = _read_only(rootfs, pod, tmp_path / "probe", env, "sh", "-c",
                       f"command -v {shlex.quote(pre_stop[0])}")  # fmt: skip
    assert subprocess.run(found, capture_output=True, timeout=60).returncode == 0, pre_stop

    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            _read_only(rootfs, pod, tmp_path / "root", env, *image.command),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(server, base + pod.probe("startupProbe")[0], log_path)
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                path, probe_port = pod.probe(kind)  # the port moved: BENTOML_PORT
                assert probe_port == pod.container["ports"][0]["containerPort"], kind
                assert httpx.get(base + path, timeout=5).status_code == 200, (kind, path)
            _serves_predictions_and_refuses_a_malformed_body(image, port)
            _report_resources(image, server.pid, port)
            spool = Path(f"/proc/{server.pid}/root") / pod.settings["PREDICTION_LOG_SPOOL"][1:]
            assert spool.is_dir(), "the prediction log's spool is on the emptyDir"
            grace = pod.spec["terminationGracePeriodSeconds"] - int(pre_stop[-1])
            stop = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            try:
                returncode = server.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pytest.fail(f"running {grace} s after SIGTERM: the kubelet would SIGKILL it")
            print(f"read-only root: stopped {time.monotonic() - stop:.1f} s after SIGTERM")
            assert returncode == 0, log_path.read_text()[-4000:]
        finally:
            if server.poll() is None:
                for pid in [*_descendants(server.pid), server.pid]:
                    _kill(pid)
                server.wait(timeout=30)
    assert "Read-only file system" not in log_path.read_text(), log_path.read_text()[-4000:]


def test_the_batch_job_over_its_completions_scores_as_one_run(image: Image, tmp_path: Path) -> None:
    """The production CronJob's command, as each pod of its Indexed Job runs it (its $(VAR)s
    expanded from its ConfigMaps, JOB_COMPLETION_INDEX 0 to completions - 1): the parts'
    predictions, in order, are exactly one run's over the whole table. Run with the project's
    environment: the image's batch CLI and model are the project's (built from them)."""
    out = checkers.kustomize(image.project.path / "deploy" / "overlays" / "production")
    assert out.returncode == 0, out.stderr
    docs = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    (cronjob,) = [d for d in docs if d["kind"] == "CronJob"]
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed" and job["completions"] > 1, job
    (container,) = job["template"]["spec"]["containers"]
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    settings: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            settings |= maps[source["configMapRef"]["name"]]
    table = _unlabelled_table(image.project, tmp_path / "table.csv")
    # The bucket's URLs of the overlay, not reachable here: local files stand in for them.
    settings |= {"BATCH_INPUT": str(table), "BATCH_OUTPUT": str(tmp_path / "predictions")}
    settings["PREDICTION_LOG"] = "off"
    python = str(image.project.path / ".venv" / "bin" / "python")
    outputs = []
    for index in range(job["completions"]):
        env = {**settings, "JOB_COMPLETION_INDEX": str(index)}
        command = [
            re.sub(r"\$\((\w+)\)", lambda m, env=env: env[m.group(1)], part)
            for part in [*container["command"], *container.get("args", [])]
        ]
        assert command[0] == "python", command
        image.project.run(python, *command[1:], env=env)
        outputs.append(Path(command[4]))
    whole = tmp_path / "whole.csv"
    image.project.run(python, *container["command"][1:3], str(table), str(whole), env=settings)
    header, *rows = whole.read_text().splitlines()
    parts = [path.read_text().splitlines() for path in outputs]
    assert all(part[0] == header for part in parts), header
    assert [row for part in parts for row in part[1:]] == rows
    assert all(len(part) > 1 for part in parts), [len(part) for part in parts]


def _unlabelled_table(project: Project, path: Path) -> Path:
    """The project's test fixture without its target column: a table to score."""
    columns = yaml.safe_load(project.read("schema.yaml"))["columns"]
    (target,) = [name for name, column in columns.items() if column.get("role") == "target"]
    with (project.path / "tests" / "fixtures" / "data.csv").open(newline="") as source:
        rows = list(csv.DictReader(source))
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, [name for name in rows[0] if name != target])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k != target} for row in rows)
    return path


def _report_resources(image: Image, main: int, port: int) -> None:
    """Print what the pod uses: its processes' memory (PSS, shared pages counted once, as the
    pod's cgroup counts them; RSS beside it) at idle and under load, and its CPU."""
    request = json.loads(image.project.read("examples/request.json"))
    record = {"records": request["records"][:1]}
    idle = _memory_mib(main)
    cpu_before, start = _cpu_seconds(main), time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _: client.post("/predict", json=record).status_code,
                                  range(2000)))  # fmt: skip
    loaded, seconds = _memory_mib(main), time.monotonic() - start
    cores = (_cpu_seconds(main) - cpu_before) / seconds
    assert set(codes) == {200}, Counter(codes)
    print(f"pod resources: PSS {idle['Pss']:.0f} MiB at idle (RSS {idle['Rss']:.0f}), "
          f"{loaded['Pss']:.0f} MiB (RSS {loaded['Rss']:.0f}) after 2000 requests "
          f"(16 clients, {2000 / seconds:.0f} req/s) using {cores:.2f} cores")  # fmt: skip


def _tree(main: int) -> list[int]:
    return [main, *[p for p in _descendants(main) if _alive(p)]]


def _memory_mib(main: int) -> dict[str, float]:
    """Proportional and resident memory of the process tree, in MiB."""
    total = {"Pss": 0, "Rss": 0}
    for pid in _tree(main):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key = line.split(":")[0]
                if key in total:
                    total[key] += int(line.split()[1])
    return {key: kib / 1024 for key, kib in total.items()}


def _cpu_seconds(main: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _tree(main):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def test_image_size_benchmark(image: Image) -> None:
    """benchmarks/image_size.py on this image: at most 400 MB (`make bench` also builds the
    baseline image it compares with, size and cold start: minutes the suite does not spend)."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.image_size"),
            "--project",
            str(image.project.path),
            "--serving-image",
            image.ref,
            "--base-image",
            containers.BASE_IMAGE,
            "--no-baseline",
        ],
        capture_output=True,
        text=True,
        cwd=TEMPLATE_ROOT,  # `-m benchmarks...` imports from the repository's root
        timeout=1200,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    assert "serving image" in result.stdout and "OK: the serving image is within 400 MB" in (
        result.stdout
    )


# --- helpers ---------------------------------------------------------------------------------


def _in_container(ctr: str, port: int, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        containers.buildah_run(ctr, port, *command),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _changed_since(root: Path, since: float) -> list[Path]:
    changed = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            try:
                if path.lstat().st_mtime > since:
                    changed.append(path)
            except OSError:
                continue
    return changed


def _wait_ready(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    wait_until_ready(url, server, log=log_path.read_text)


def _processes() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, argv) for every process we can see."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a.decode() for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        )
        table[int(entry.name)] = (ppid, argv)
    return table


def _descendants(root: int) -> list[int]:
    table, found, frontier = _processes(), [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _server_process(root: int, command: list[str]) -> int:
    """The process running the image's command (PID 1 in a container): the interpreter of
    the console script, with the command's arguments, not Buildah's helper before it."""
    table = _processes()
    for pid in sorted(_descendants(root)):
        argv = table.get(pid, (0, []))[1]
        if (
            len(argv) == len(command) + 1
            and Path(argv[0]).name.startswith("python")
            and Path(argv[1]).name == command[0]
            and argv[2:] == command[1:]
        ):
            return pid
    raise AssertionError(f"no process runs {command}: {[table.get(p) for p in _descendants(root)]}")


def _uids(pid: int) -> list[int]:
    """Real, effective, saved and filesystem uid of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    return [
        int(u)
        for u in next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    ]


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
