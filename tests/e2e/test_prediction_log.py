"""End to end: the service logs what it answers, and `make monitor` watches that.

One default project, set up and its pipeline run once: with no traffic the monitor says "not
enough traffic" (exit 0); a stream drawn from the training data is served, logged to a local
folder and found undrifted, row for row; the sample's drifted batch is served, logged to S3
(moto's server on loopback) and flagged, prediction drift included. Values the service
coerces are logged as the model was given them; every process of the service killed under
load loses at most the last second of its log, and the next start says how much.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml

from harness.project import (
    MOTO_CREDENTIALS,
    Project,
    Server,
    descendants,
    free_port,
    moto_s3,
    object_store,
    serving,
    start_server,
)

pytestmark = pytest.mark.e2e

BUCKET = "served-predictions"
TARGET = "churned"  # the sample's target
RECORDS_A_REQUEST = 25
DROPPED = "prediction_log_dropped_records_total{"


@pytest.fixture(scope="module")
def project(trained_project: Project) -> Project:
    return trained_project


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_s3(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


def _records(project: Project, path: str, rows: int, seed: int, target: str = "") -> list[dict]:
    """``rows`` records of a CSV file as a client would send them: typed as schema.yaml says,
    null where a value is missing, no target (unless named: then kept, as the truth)."""
    columns = yaml.safe_load(project.read("schema.yaml"))["columns"]
    kinds = {n: c["kind"] for n, c in columns.items() if c["role"] != "target" or n == target}
    convert = {"integer": lambda v: int(float(v)), "float": float, "boolean": lambda v: v == "True"}
    with (project.path / path).open(newline="") as source:
        table = list(csv.DictReader(source))
    records = [
        {
            name: None if row[name] == "" else convert.get(kind, str)(row[name])
            for name, kind in kinds.items()
            if name in row
        }
        for row in table
    ]
    return random.Random(seed).sample(records, rows)


def _serve(project: Project, records: list[dict], env: dict[str, str]) -> None:
    """Serve with ``env``, send ``records`` in requests, then stop (the log is flushed)."""
    with serving(project, env=env) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for start in range(0, len(records), RECORDS_A_REQUEST):
                body = {"records": records[start : start + RECORDS_A_REQUEST]}
                sent_id = f"test-{start}"
                answer = client.post("/predict", json=body, headers={"X-Request-ID": sent_id})
                assert answer.status_code == 200, answer.text
                assert answer.headers["x-request-id"] == sent_id
            fresh = client.post("/predict", json={"records": records[:1]})
            assert len(fresh.headers["x-request-id"]) >= 8  # one of the service's own
            assert _dropped(client) == 0


def _dropped(client: httpx.Client) -> float:
    """The records the prediction log dropped, summed over the workers (from /metrics)."""
    lines = client.get("/metrics").text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(DROPPED))


def _monitor(project: Project, env: dict[str, str]) -> tuple[int, str, dict]:
    result = project.run("make", "monitor", check=False, env=env)
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    assert result.returncode in {0, 2}, result.stderr[-4000:]  # make exits 2 when monitor 1
    return result.returncode, result.stderr, json.loads(project.read("reports/drift.json"))


def test_an_unwritable_log_costs_records_not_requests(project: Project, tmp_path: Path) -> None:
    """A log that cannot be written: every request answered, the records dropped and counted
    on /metrics; and with nothing logged, the monitor's verdict is "not enough traffic"."""
    blocker = tmp_path / "a-file"
    blocker.write_text("where the log's folder should be")
    env = {"PREDICTION_LOG": str(blocker / "log"), "PREDICTION_LOG_FILE_ROWS": "1"}
    records = _records(project, "data/raw/customers.csv", rows=30, seed=1)
    with serving(project, env=env) as server, httpx.Client(base_url=server.url) as client:
        for record in records:
            assert client.post("/predict", json={"records": [record]}).status_code == 200
        deadline = time.monotonic() + 30
        while _dropped(client) < len(records) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _dropped(client) == len(records)
    assert "record(s) dropped (write failed" in server.read_log()

    code, output, report = _monitor(project, env)
    assert code == 0, output
    assert "not enough traffic" in output
    assert report["verdict"] == "not enough traffic" and report["drift_detected"] is False
    assert report["current_rows"] == 0 and project.has_file("reports/drift.html")


def test_undrifted_traffic_is_logged_and_passes(project: Project) -> None:
    """Served, logged, found undrifted; then the labels of what was served arrive (by request
    id and record) and the monitor reports the model's quality on them."""
    truth = _records(project, "data/raw/customers.csv", rows=600, seed=3, target=TARGET)
    records = [{k: v for k, v in record.items() if k != TARGET} for record in truth]
    env = {"PREDICTION_LOG": "logs/calm", "PREDICTION_FEEDBACK": "logs/calm-labels"}
    _serve(project, records, env)
    files = list((project.path / "logs" / "calm").glob("date=*/part-*.parquet"))
    assert files, "the service logged nothing"

    code, output, report = _monitor(project, env)
    assert code == 0, output
    assert report["verdict"] == "no drift", report["drifted_columns"]
    # What was sent with X-Request-ID, and the one request without.
    assert report["current_rows"] == len(records) + 1
    assert report["prediction_drift"] is not None and not report["prediction_drift"]["drifted"]
    assert report["quality"] is None, "no labels yet"
    status = project.run("git", "status", "--porcelain").stdout
    assert "logs" not in status, "the prediction log is git-ignored"

    # The labels, as a CSV keyed by the request ids the client sent and the record's position.
    labels = project.path / "logs" / "calm-labels" / "week-1.csv"
    labels.parent.mkdir(parents=True)
    with labels.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["request_id", "record", TARGET])
        for n, record in enumerate(truth):
            start = n - n % RECORDS_A_REQUEST
            writer.writerow([f"test-{start}", n - start, record[TARGET]])
    code, output, report = _monitor(project, env)
    assert code == 0, output
    quality = report["quality"]
    assert quality is not None and quality["rows"] == len(records), quality
    # The accuracy of what the service answered, from its own log, against the labels.
    read = (
        "import json, pandas as pd; frame = pd.read_parquet('logs/calm');"
        "print(json.dumps(frame[['_request_id', '_record', '_prediction']].values.tolist()))"
    )
    logged = json.loads(project.run(".venv/bin/python", "-c", read).stdout)
    answered = {(request, record): prediction for request, record, prediction in logged}
    right = sum(
        answered[(f"test-{n - n % RECORDS_A_REQUEST}", n % RECORDS_A_REQUEST)] == record[TARGET]
        for n, record in enumerate(truth)
    )
    assert quality["headline"] == "Accuracy"
    assert quality["current"] == pytest.approx(right / len(truth)), quality
    assert 0 < quality["reference"] <= 1 and not quality["degraded"], quality
    assert "model quality on 600 labelled row(s): Accuracy" in output, output
    assert project.has_file("reports/quality.html")


def test_drifted_traffic_logged_to_s3_is_flagged(project: Project, s3_endpoint: str) -> None:
    # s3fs comes with dvc[s3] in a project generated for S3; this one is the default project.
    project.run("uv", "pip", "install", "--quiet", "s3fs")
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    env = {
        **MOTO_CREDENTIALS,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "PREDICTION_LOG": f"s3://{BUCKET}/my-model/predictions",
    }
    records = _records(project, "data/current/customers.csv", rows=400, seed=5)
    _serve(project, records, env)

    code, output, report = _monitor(project, env)
    assert code == 2, output  # make's exit when the monitor exits 1: drift
    assert "DRIFT DETECTED" in output
    assert report["drift_detected"] and report["current_rows"] == len(records) + 1
    assert report["prediction_drift"]["drifted"], report["prediction_drift"]
    assert BUCKET in report["current"]


@pytest.mark.parametrize("store", ["az", "gs"])
def test_the_log_on_azure_and_gcs_is_written_and_monitored(
    project: Project, store: str, tmp_path: Path
) -> None:
    """az:// and gs:// through fsspec, on Azurite and gcp-storage-emulator: the batch CLI
    logs there as the service does (in chunks: each record's position in the whole file),
    labels are put beside it, and `make monitor` reads every row and joins every label.
    (adlfs or gcsfs comes with dvc[azure] or dvc[gs] in a project generated for that
    remote; this one is the default project.)"""
    project.run("uv", "pip", "install", "--quiet", "adlfs" if store == "az" else "gcsfs")
    rows = 250  # above monitor.min_rows
    table = list(csv.DictReader((project.path / "data" / "raw" / "customers.csv").open()))[:rows]
    batch = project.path / "reports" / f"batch-{store}.csv"
    batch.parent.mkdir(exist_ok=True)
    with batch.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[k for k in table[0] if k != TARGET])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k != TARGET} for row in table)
    root = f"{store}://{BUCKET}/my-model"
    with object_store(store, BUCKET, tmp_path) as store_env:
        env = {
            **store_env,
            "PREDICTION_LOG": f"{root}/predictions",
            "PREDICTION_FEEDBACK": f"{root}/feedback",
        }
        python = ".venv/bin/python"
        if store == "az":  # the container, as its owner makes it once
            make = f"import adlfs; adlfs.AzureBlobFileSystem().mkdir({BUCKET!r})"
            project.run(python, "-c", make, env=env)
        package = project.answers["package_name"]
        output = project.path / "reports" / f"scored-{store}.csv"
        predict = [python, "-m", f"{package}.serving.batch", str(batch), str(output)]
        scored = project.run(*predict, "--log", "--chunk-rows", "100", env=env)
        logged = re.search(r"logging the predictions to (\S+) \(request id (\S+)\)", scored.stderr)
        assert logged and logged.group(1) == env["PREDICTION_LOG"], scored.stderr
        # The labels, keyed by the run's request id and each row's position in the file.
        labels = "request_id,record,churned\n" + "".join(
            f"{logged.group(2)},{n},{row[TARGET]}\n" for n, row in enumerate(table)
        )
        put = "import fsspec, sys\nwith fsspec.open(sys.argv[1], 'w') as f: f.write(sys.argv[2])"
        project.run(python, "-c", put, f"{root}/feedback/labels.csv", labels, env=env)
        code, said, report = _monitor(project, env)
    assert code == 0, said
    assert report["current_rows"] == rows and env["PREDICTION_LOG"] in report["current"], report
    quality = report["quality"]
    assert quality is not None and quality["rows"] == rows, quality
    answered = [row["prediction"] for row in csv.DictReader(output.open())]
    right = sum(a == row[TARGET] for a, row in zip(answered, table, strict=True))
    assert quality["current"] == pytest.approx(right / rows), quality


def _logged(project: Project, folder: str, columns: list[str]) -> list[list]:
    """Rows of the prediction log in ``folder`` (its parquet files), these columns."""
    read = (
        "import json, sys, pandas as pd; frame = pd.read_parquet(sys.argv[1]);"
        "print(frame[sys.argv[2:]].to_json(orient='values', date_format='iso'))"
    )
    return json.loads(project.run(".venv/bin/python", "-c", read, folder, *columns).stdout)


def test_coerced_values_are_logged_as_the_model_was_given_them(project: Project) -> None:
    """ "34.0" for an integer, "6" for another, 3.0 for a third: answered 200 and logged as
    the integers the model saw, beside every other request's rows; false for a number is a
    400, not logged."""
    record = json.loads(project.read("examples/request.json"))["records"][0]
    coerced = record | {"age": "34.0", "support_calls": "6", "tenure_months": 3.0}
    env = {"PREDICTION_LOG": "logs/typed"}
    with serving(project, env=env) as server, httpx.Client(base_url=server.url) as client:
        for number in range(10):
            sent = coerced if number == 5 else record
            answer = client.post(
                "/predict", json={"records": [sent]}, headers={"X-Request-ID": f"t{number}"}
            )
            assert answer.status_code == 200, answer.text
        refused = client.post("/predict", json={"records": [record | {"age": False}]})
        assert refused.status_code == 400 and "age" in refused.text, refused.text
        assert _dropped(client) == 0
    rows = _logged(project, "logs/typed", ["_request_id", "age", "support_calls", "tenure_months"])
    assert sorted(row[0] for row in rows) == sorted(f"t{n}" for n in range(10))
    assert [row[1:] for row in rows if row[0] == "t5"] == [[34, 6, 3]]


def test_killing_every_process_under_load_loses_at_most_a_second(
    project: Project, tmp_path: Path
) -> None:
    """`make serve` under load, then every process of the service killed at once (as a
    container's end kills them; BentoML's workers run in sessions of their own). The next
    start writes what the spool held into the log: every request answered more than a
    second before the kill is there, once; what is missing is counted on /metrics."""
    env = {"PREDICTION_LOG": "logs/crash"}
    record = json.loads(project.read("examples/request.json"))["records"][0]
    port = free_port()
    command = ["make", "serve", f"PORT={port}"]
    server = start_server(command, project.path, port, env, tmp_path / "first.log")
    answered, killed_at, clients = _kill_everything_under_load(server, record)
    assert len(answered) > 500, len(answered)
    spool = project.path / "logs" / "crash" / ".spool"
    assert list(spool.glob("*.jsonl")), "nothing spooled"
    counted = _restart_and_recover(project, env, spool, tmp_path / "second.log")
    logged = [row[0] for row in _logged(project, "logs/crash", ["_request_id"])]
    assert len(logged) == len(set(logged)), "a row was logged twice"
    missing = {request_id for request_id, _ in answered} - set(logged)
    late = {request_id for request_id, when in answered if when > killed_at - 1.0}
    assert missing <= late, sorted(missing - late)[:10]
    # Counted: what the workers had accepted and not spooled; a response on its way out
    # when the kill came may have been answered and never accepted (one a client at most).
    assert len(missing) - clients <= counted <= len(late), (len(missing), counted)


def _kill_everything_under_load(
    server: Server, record: dict[str, Any]
) -> tuple[list[tuple[str, float]], float, int]:
    """Eight clients for five seconds or more, then SIGKILL to every process of the service:
    what was answered (request id, when), when the kill came, and how many clients there were."""
    answered: list[tuple[str, float]] = []
    stop = threading.Event()

    def load(client_number: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for number in range(10**9):
                request_id = f"c{client_number}-{number}"
                try:
                    answer = client.post(
                        "/predict", json={"records": [record]}, headers={"X-Request-ID": request_id}
                    )
                except httpx.HTTPError:
                    return
                if answer.status_code == 200:
                    answered.append((request_id, time.monotonic()))
                if stop.is_set():
                    return

    clients = [threading.Thread(target=load, args=(n,)) for n in range(8)]
    for client in clients:
        client.start()
    # Five seconds, longer on a busy machine: until a thousand answers (at most 30 s), so that
    # the kill comes under load and behind a spool with something in it.
    started = time.monotonic()
    while time.monotonic() - started < 5 or (
        len(answered) < 1000 and time.monotonic() - started < 30
    ):
        time.sleep(0.1)
    processes = [server.process.pid, *descendants(server.process.pid)]
    killed_at = time.monotonic()
    for pid in processes:
        os.kill(pid, signal.SIGKILL)
    stop.set()
    for client in clients:
        client.join()
    server.stop()
    return answered, killed_at, len(clients)


def _restart_and_recover(project: Project, env: dict[str, str], spool: Path, log: Path) -> float:
    """The next start recovers the dead workers' spools; what it counts as lost in the crash."""
    with serving(project, env=env, log=log) as again:
        deadline = time.monotonic() + 60
        while "prediction log: recovered" not in again.read_log() or any(
            not _alive(int(p.name.split("-")[0])) for p in spool.glob("*.ledger")
        ):
            assert time.monotonic() < deadline, "the dead workers' spools were not recovered"
            time.sleep(0.2)
        time.sleep(1)  # a second worker's count, a moment behind its spool's removal
        lines = httpx.get(f"{again.url}/metrics", timeout=10).text.splitlines()
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in lines
            if line.startswith(DROPPED) and 'reason="lost_in_crash"' in line
        )
    assert "recovered" in again.read_log(), again.read_log()[-3000:]
    return counted


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
