"""Serving throughput: adaptive batching against the same service with batching off.

Generates the default project, trains its model, then serves it twice on loopback, once
with ADAPTIVE_BATCHING=false (every request predicted alone: the baseline) and once with the
template's defaults (adaptive batching), and loads each with wrk: single-record requests
from CONCURRENCY clients. Prints requests/s, latency and non-2xx answers of both, and the
ratio. Both run in this one process, on this machine, minutes apart: absolute numbers
drift between machines, the ratio is what to compare.

    uv run python benchmarks/serving_throughput.py [--concurrency 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.project import (
    TEMPLATE_ROOT,
    bake_project,
    free_port,
    tool_env,
    wait_until_ready,
)

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""


def measure(
    project: Path, env: dict[str, str], script: Path, concurrency: int, seconds: int
) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [
            "uv",
            "run",
            "--no-sync",
            "bentoml",
            "serve",
            "my_model.service:ModelService",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        cwd=project,
        env=tool_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", server)
        url = f"http://127.0.0.1:{port}/predict"
        subprocess.run(
            ["wrk", "-t2", "-c4", "-d2s", "-s", str(script), url],  # warm-up
            capture_output=True,
            check=True,
        )
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{concurrency}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return {
        "rps": rps,
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "p99": p99.group(1) if p99 else "?",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("benchmark: wrk is not installed (make install-system)")

    with tempfile.TemporaryDirectory() as tmp:
        project = bake_project(TEMPLATE_ROOT, Path(tmp) / "my-model", vcs_ref="HEAD").path
        for command in (["make", "setup"], ["make", "pipeline"]):
            subprocess.run(command, cwd=project, env=tool_env(), check=True, capture_output=True)
        record = json.loads((project / "examples" / "request.json").read_text())["records"][0]
        script = Path(tmp) / "post.lua"
        script.write_text(LUA.format(body=json.dumps({"records": [record]})))

        runs = {
            "baseline: no batching": {"ADAPTIVE_BATCHING": "false"},
            "adaptive batching (template defaults)": {},
        }
        results = {}
        for name, env in runs.items():
            results[name] = measure(project, env, script, args.concurrency, args.seconds)
            r = results[name]
            print(
                f"{name:45s} {r['rps']:8.1f} req/s  p99 {r['p99']:>8s}  "
                f"non-2xx {r['non_2xx']}/{r['requests']}",
                flush=True,
            )

    baseline, batched = results.values()
    print(
        f"ratio (adaptive batching / no batching): {batched['rps'] / baseline['rps']:.2f}x "
        f"at {args.concurrency} concurrent clients, single-record requests"
    )


if __name__ == "__main__":
    main()
