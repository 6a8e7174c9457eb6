"""The monitor's verdict: ``reports/drift.json`` (the summary), a few lines in the log, and the
exit code it implies."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


NOT_ENOUGH = "not enough traffic"


REPORTS = ("drift.json", "drift.html", "quality.html")


def not_enough(rows: int, min_rows: int, source: str, drift_share: float) -> dict[str, Any]:
    return {
        "verdict": NOT_ENOUGH,
        "drift_detected": False,
        "drifted_share": 0.0,
        "threshold": drift_share,
        "drifted_columns": [],
        "current_rows": rows,
        "min_rows": min_rows,
        "current": source,
        "columns": {},
        "prediction_drift": None,
        "missing_values": {},
        "unseen_values": {},
        "out_of_range": {},
        "quality": None,
    }


def log_summary(summary: dict[str, Any], output_dir: Path) -> None:
    """The verdict in a few lines: drift, prediction drift, quality, missing and new values."""
    if summary["verdict"] == NOT_ENOUGH:
        log.info(
            "%s: %d row(s) in %s (monitor.min_rows: %d)",
            NOT_ENOUGH,
            summary["current_rows"],
            summary["current"],
            summary["min_rows"],
        )
        return
    log.info(
        "%s: %d of %d columns drifted (%.0f%%, threshold %.0f%%): %s; %d row(s) of %s; report: %s",
        "DRIFT DETECTED" if summary["drift_detected"] else "no drift",
        len(summary["drifted_columns"]),
        len(summary["columns"]),
        100 * summary["drifted_share"],
        100 * summary["threshold"],
        ", ".join(summary["drifted_columns"]) or "none",
        summary["current_rows"],
        summary["current"],
        output_dir / "drift.html",
    )
    drift = summary["prediction_drift"]
    if drift is not None:
        log.info(
            "prediction drift: %s (%s %.3f, threshold %.3f)",
            "yes" if drift["drifted"] else "no",
            drift["method"],
            drift["score"],
            drift["threshold"],
        )
    _log_quality(summary["quality"], output_dir)
    for name, missing in summary["missing_values"].items():
        log.info("'%s': %d row(s) missing (%.0f%%)", name, missing["rows"], 100 * missing["share"])
    for name, unseen in summary["unseen_values"].items():
        log.info("'%s': %d row(s) with values not seen in training", name, unseen["rows"])
    for name, count in summary.get("out_of_range", {}).items():
        log.info("'%s': %d value(s) outside the range seen in training (schema.yaml)", name, count)
    if summary.get("skipped_log_files"):
        log.warning("%d log file(s) skipped: not readable", len(summary["skipped_log_files"]))


def _log_quality(quality: dict[str, Any] | None, output_dir: Path) -> None:
    if quality is None:
        return
    if "degraded" not in quality:
        log.info("model quality: %s", quality["verdict"])
        return
    log.info(
        "model quality on %d labelled row(s): %s %.4g against %.4g on the test split (%+.1f%%, "
        "tolerance %.0f%%): %s; report: %s (%s)",
        quality["rows"],
        quality["headline"],
        quality["current"],
        quality["reference"],
        100 * quality["relative_change"],
        100 * quality["tolerance"],
        "DEGRADED" if quality["degraded"] else "as expected",
        output_dir / "quality.html",
        quality["report"],
    )
    classes = quality.get("classes") or {}
    for key, text in (
        ("only_in_labels", "in the labels but unknown to the model (always wrong)"),
        ("not_in_test_split", "in the labels but not in the test split"),
        ("never_predicted", "in the labels but never predicted (precision counted 0)"),
    ):
        if classes.get(key):
            log.info("class(es) %s: %s", text, ", ".join(classes[key]))


def alert(summary: dict[str, Any]) -> bool:
    """Drift, or degraded quality: exit 1."""
    quality = summary.get("quality") or {}
    return bool(summary.get("drift_detected") or quality.get("degraded"))


def write_report(path: Path, summary: dict[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")
