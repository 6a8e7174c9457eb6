"""Turn the drift report into one GitHub issue: open it on drift, or comment on the open one.

Reads ``reports/drift.json`` (written by ``make monitor``). ``--verdict`` prints
``drift=true`` or ``drift=false`` for the workflow's step outputs, and fails when the report is
missing or says the run failed (``"verdict": "error"``: the monitor exited 2 or 3).
``--summary`` prints the verdict as the job summary's Markdown; with too little traffic to
decide, what to configure; after a failed run, its error. Without either,
on drift, the GitHub CLI (``gh``, on every GitHub runner, authenticated by GH_TOKEN) finds the
open issue labelled ``drift`` and comments on it, or opens one. Outside GitHub Actions, or with
DRY_RUN=1, it only prints the issue it would open. Standard library only: it runs with any python3.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

LABEL = "drift"
TITLE = "Data drift detected"
PRODUCTION_ENV = "deploy/overlays/production/service.env"  # deployment kubernetes: its log


def degraded(summary: dict[str, Any]) -> bool:
    """Did the labelled rows show the model worse than on its test split (make monitor)?"""
    return bool((summary.get("quality") or {}).get("degraded"))


def quality_lines(summary: dict[str, Any]) -> list[str]:
    quality = summary.get("quality") or {}
    if "degraded" not in quality:
        return []
    return [
        "",
        f"Model quality on {quality['rows']} labelled rows: {quality['headline']} "
        f"**{quality['current']:.4g}** against {quality['reference']:.4g} on the test split "
        f"({100 * quality['relative_change']:+.1f}%, tolerance "
        f"{100 * quality['tolerance']:.0f}%, `monitor.quality_tolerance`): "
        + ("**degraded**." if quality["degraded"] else "as expected."),
    ]


def load(report: Path) -> dict[str, Any]:
    if not report.is_file():
        raise SystemExit(f"error: {report} not found: the monitor stopped before a verdict")
    return json.loads(report.read_text())


def failed(summary: dict[str, Any]) -> str | None:
    """The monitor's error, when the run failed (exit 2 or 3) and so decided nothing."""
    return summary.get("error") if summary.get("verdict") == "error" else None


def issue_body(summary: dict[str, Any]) -> str:
    """The issue (or comment) text: what drifted, how much (or how the model's quality fell),
    and where the reports are."""
    if not summary["drift_detected"]:  # the model's quality alone
        return "\n".join([*quality_lines(summary)[1:], *_closing()]) + "\n"
    drifted = summary["drifted_columns"]
    columns = summary.get("columns", {})
    lines = [
        f"`make monitor` found **{100 * summary['drifted_share']:.0f}%** of the input columns "
        f"drifted (threshold {100 * summary['threshold']:.0f}%, `monitor.drift_share` in "
        f"params.yaml), comparing {summary.get('current_rows', '?')} current rows with "
        f"{summary.get('reference_rows', '?')} training rows.",
        "",
        "| column | test | score | threshold |",
        "| --- | --- | --- | --- |",
    ]
    for name in drifted:
        column = columns.get(name, {})
        score, threshold = column.get("score"), column.get("threshold")
        lines.append(
            f"| `{name}` | {column.get('method', '?')} | "
            f"{'?' if score is None else f'{score:.4g}'} | "
            f"{'?' if threshold is None else f'{threshold:.4g}'} |"
        )
    lines += quality_lines(summary)
    lines += _closing()
    return "\n".join(lines) + "\n"


def _closing() -> list[str]:
    """Where the report is, and what happens next."""
    run_url = os.environ.get("RUN_URL")
    return [
        "",
        f"The HTML reports are the `drift-report` artifact of [this run]({run_url})."
        if run_url
        else "The HTML reports: `reports/drift.html`, `reports/quality.html` (`make monitor`).",
        *next_steps(os.environ.get("NEW_DATA", ""), os.environ.get("RETRAIN_ON_DRIFT", "")),
    ]


def title(summary: dict[str, Any]) -> str:
    return TITLE if summary["drift_detected"] else "Model quality degraded"


def next_steps(new_data: str, retrain_on_drift: str) -> list[str]:
    """What happens next, and what the user must do: NEW_DATA is make new-data's answer."""
    check = "First check whether the data changed or broke upstream (the report's columns)."
    if new_data == "true" and retrain_on_drift != "false":
        return [
            "",
            f"{check} The data committed since the model's training run is new "
            "(`make new-data`), so the Retrain workflow was started: it reruns the pipeline "
            "and opens a pull request with the new metrics against the current ones.",
        ]
    if new_data == "true":
        return [
            "",
            f"{check} There is new data since the model's training run (`make new-data`); "
            "retraining on drift is off (repository variable `RETRAIN_ON_DRIFT`): run the "
            "Retrain workflow by hand, or `make pipeline` and commit.",
        ]
    if new_data == "false":
        return [
            "",
            f"{check} **No retraining was started**: the data committed is what the model was "
            "trained on (`make new-data`), so a retrain would learn the same model. To adapt "
            "it, add recent labelled rows to the training data (e.g. the logged traffic "
            "joined with its labels, see the README's Monitoring section) with `dvc add` and "
            "`dvc push`, then either run `make pipeline` and commit `dvc.lock`, the `.dvc` "
            "file and the metrics, or commit the `.dvc` file alone and run the Retrain "
            "workflow, which opens the pull request with the retrained model (CI's "
            "`make check-lock` fails on that commit until the pull request is merged; a "
            "drift found meanwhile starts the retraining itself).",
        ]
    return ["", f"{check} With new labelled data, retrain (the Retrain workflow)."]


def gh(*args: str, stdin: str | None = None) -> str:
    try:
        result = subprocess.run(
            ["gh", *args], input=stdin, capture_output=True, text=True, check=True
        )
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"error: gh {' '.join(args)} failed:\n{error.stderr}") from error
    return result.stdout.strip()


def open_or_comment(body: str, title: str = TITLE) -> str:
    """Comment on the open drift issue if there is one, else open it; return what was done."""
    found = json.loads(
        gh("issue", "list", "--state", "open", "--label", LABEL, "--json", "number", "--limit", "1")
        or "[]"
    )
    if found:
        number = str(found[0]["number"])
        gh("issue", "comment", number, "--body-file", "-", stdin=f"Still drifting.\n\n{body}")
        return f"commented on the open drift issue #{number}"
    gh(
        "label",
        "create",
        LABEL,
        "--color",
        "D93F0B",
        "--force",
        "--description",
        "Data drift found by the monitor workflow",
    )
    url = gh("issue", "create", "--title", title, "--label", LABEL, "--body-file", "-", stdin=body)
    return f"opened {url}"


def job_summary(summary: dict[str, Any]) -> str:
    """Markdown for the workflow run's page: the verdict, and what to do about it."""
    if failed(summary):
        return f"### Monitor failed: no verdict\n\n`make monitor`: {failed(summary)}\n"
    rows, source = summary.get("current_rows", 0), summary.get("current", "?")
    if summary.get("verdict") == "not enough traffic":
        return (
            "### Drift: not enough traffic to decide\n\n"
            f"{rows} rows at `{source}`, fewer than `monitor.min_rows` "
            f"({summary.get('min_rows', '?')}): no verdict, no issue, no retraining.\n\n"
            "To watch what the service answers, point the service's `PREDICTION_LOG` at "
            "storage this workflow can read (e.g. `s3://BUCKET/predictions`, with the DVC "
            "remote's credentials) and set the repository variable `PREDICTION_LOG` to the "
            "same URL (Settings > Secrets and variables > Actions > Variables)"
            + (
                f", or leave it unset: the monitor reads production's, `PREDICTION_LOG` in "
                f"`{PRODUCTION_ENV}`"
                if Path(PRODUCTION_ENV).is_file()
                else ""
            )
            + ". To check a batch file instead, run this workflow by hand with its path as "
            "`current`.\n"
        )
    if summary["drift_detected"]:
        return (
            f"### Drift detected\n\n{100 * summary['drifted_share']:.0f}% of the input "
            f"columns drifted in {rows} rows at `{source}`: "
            + ", ".join(f"`{c}`" for c in summary["drifted_columns"])
            + "."
            + "\n".join(quality_lines(summary))
            + " The drift issue and the report artifact have the details.\n"
        )
    if degraded(summary):
        return (
            "### Model quality degraded\n\n"
            + "\n".join(quality_lines(summary)[1:])
            + " The drift issue and the report artifact have the details.\n"
        )
    return f"### No drift\n\n{rows} rows at `{source}` checked against the training data.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, nargs="?", default=Path("reports/drift.json"))
    parser.add_argument("--verdict", action="store_true", help="print drift=true|false only")
    parser.add_argument("--summary", action="store_true", help="print the job summary (Markdown)")
    args = parser.parse_args(argv)

    summary = load(args.report)
    if failed(summary) and not args.summary:
        raise SystemExit(f"error: the monitor failed, no verdict: {failed(summary)}")
    if args.summary:
        sys.stdout.write(job_summary(summary))
        return 0
    drift = bool(summary["drift_detected"]) or degraded(summary)
    if args.verdict:
        sys.stdout.write(f"drift={'true' if drift else 'false'}\n")
        return 0
    if not drift:
        sys.stdout.write("no drift: no issue to open\n")
        return 0

    body = issue_body(summary)
    if os.environ.get("DRY_RUN") == "1" or os.environ.get("GITHUB_ACTIONS") != "true":
        sys.stdout.write(
            "DRY RUN (outside GitHub Actions, or DRY_RUN=1): on GitHub this opens the issue "
            f"below, labelled '{LABEL}', or comments on the open one.\n\n"
            f"# {title(summary)}\n\n{body}"
        )
        return 0
    sys.stdout.write(open_or_comment(body, title(summary)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
