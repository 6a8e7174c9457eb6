"""Drift monitoring: is the data the model sees now still like the data it learned from?

Compares a reference table (the training split, ``data/prepared/train.parquet``) with what
the model was sent: by default the served traffic of the last ``monitor.window_days`` days,
read from the prediction log (``--log``, else ``PREDICTION_LOG``, else the one production
logs to, ``PREDICTION_LOG`` in ``deploy/overlays/production/service.env`` where the project
deploys to Kubernetes, else ``logs/predictions``: the folder or bucket ``make serve`` logs
to, see serving/prediction_log/; a log file that cannot be read,
truncated or empty, is named in one line, skipped and counted); or a batch file,
``--current`` (e.g. the sample's ``data/current/customers.csv``, ``data.current`` in
``params.yaml``).

An Evidently report covers data drift on the feature columns of ``schema.yaml``, prediction
drift (the predictions served, or the model's on the batch, against the model's on the
reference) and, per column, missing values and (categorical) values never seen in the
reference. A column with no value at all in the current rows (or in the reference) is
reported as 100% missing, and as drifted when the other side has values. Writes
``reports/drift.html`` and ``reports/drift.json``, logs one summary line. Fewer than
``monitor.min_rows`` rows is "not enough traffic": neither drift nor an error.

Model quality, when labels are known. Ground truth that arrives later (a customer who left,
a price paid) is joined to the served predictions by request id: CSV or parquet files under
``--feedback`` (``PREDICTION_FEEDBACK``, default ``logs/feedback``: a folder, a file or an
fsspec URL) with the columns

    request_id   the X-Request-ID the service returned (or the client sent)
    record       the record's position in that request's ``records``, from 0 (optional: 0)
    <target>     the true value, named and typed as the target in schema.yaml

(the batch CLI's ``--log`` run: its logged request id, and the row in the file as record). A
batch file (``--current``) that has the target column is labelled already. With labels, the
model's quality on the labelled rows is scored as the evaluate stage scores the test split
(the same functions: one definition of each metric), against the test split's
(``--quality-reference``), and Evidently's classification or regression report is written
beside the drift report (``reports/quality.html``). Any label set works: a class only in the
labels, only in the test split or only in training; where Evidently cannot put the labelled
rows beside the test split (their classes differ), the report shows them alone and says so.
The headline (accuracy; RMSE for a regressor) worse than the test split's by more than
``monitor.quality_tolerance`` (relative) is ``degraded``.

Exit codes: 0 calm (no drift, quality as expected, or too little to decide); 1 drift or
degraded quality (``drift.json`` says which: ``drift_detected``, ``quality.degraded``); 2 a
mistake to fix (a missing file, a bad label file: one line); 3 a step failed inside a
library (the line names the step: "the quality report failed: ..."; ``LOG_LEVEL=DEBUG``
adds the traceback). The reports of an earlier run are removed first: after a 2 or a 3,
``drift.json`` holds ``"verdict": "error"`` and the message, never an old verdict.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract.checks import out_of_range
from ..contract.schema import Schema, load_schema
from ..contract.tables import read_table, validate
from ..model import ModelBundle
from ..pipeline.features import raw_columns
from ..serving import prediction_log
from ..serving.prediction_log.store import OFF
from ..settings import UserError, run_cli
from .drift import drift_report, placeholder
from .feedback import FEEDBACK_URL
from .quality import labelled_pairs, quality
from .report import NOT_ENOUGH, REPORTS, alert, log_summary, not_enough, write_report
from .steps import Settings, StepFailed, load_settings, step
from .traffic import LABEL, batch, load_bundle, model_predictions, served_traffic

log = logging.getLogger(__name__)

EXIT_CALM, EXIT_ALERT, EXIT_FAILED = 0, 1, 3  # 2, a UserError, is settings.run_cli's
# The production overlay's service settings (deployment kubernetes): where production logs.
PRODUCTION_ENV = Path("deploy/overlays/production/service.env")


def env_file_value(path: Path, key: str) -> str | None:
    """``key``'s value in a kustomize env file (KEY=VALUE lines, ``#`` comments), read as
    kustomize's configMapGenerator reads it (the value as written); None when absent."""
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            if name.strip() == key:
                return value
    return None


def log_url(given: str | None, deployed: Path | None = None) -> str:
    """Where the served traffic is: ``--log``, else ``PREDICTION_LOG`` (set and not empty),
    else production's (its overlay's service.env), else logs/predictions."""
    if given:
        return given
    if os.environ.get("PREDICTION_LOG", "").strip():
        return prediction_log.url_from_env() or prediction_log.DEFAULT_URL
    deployed = PRODUCTION_ENV if deployed is None else deployed
    production = (env_file_value(deployed, "PREDICTION_LOG") or "").strip()
    if production and production.lower() not in OFF:
        log.info("reading the traffic production logs to (%s): %s", deployed, production)
        return production
    return prediction_log.DEFAULT_URL


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Drift report: the served traffic (or a batch) against the training data. "
        "Exit 0: calm; 1: drift or degraded quality; 2: a mistake to fix; 3: a step failed."
    )
    parser.add_argument("--reference", type=Path, default=Path("data/prepared/train.parquet"))
    parser.add_argument(
        "--current",
        type=Path,
        help="a batch file (CSV/parquet) instead of the served traffic, e.g. data.current",
    )
    parser.add_argument(
        "--log",
        default=None,
        help="the prediction log's folder or URL (default: $PREDICTION_LOG, else production's "
        f"in {PRODUCTION_ENV}, else logs/predictions)",
    )
    parser.add_argument(
        "--feedback",
        default=None,
        help=f"labels to join by request id (default: $PREDICTION_FEEDBACK or {FEEDBACK_URL})",
    )
    parser.add_argument(
        "--quality-reference",
        type=Path,
        default=Path("data/prepared/test.parquet"),
        help="labelled rows the model's quality is compared with (the held-out test split)",
    )
    parser.add_argument("--output-dir", type=Path, default=Path("reports"))
    parser.add_argument(
        "--min-rows", type=int, default=None, help="default: monitor.min_rows in params.yaml"
    )
    return parser.parse_args(argv)


def read_current(
    args: argparse.Namespace, settings: Settings, schema: Schema, url: str
) -> tuple[pd.DataFrame, str, list[str]]:
    """The rows to check (a batch, or the served traffic), where they come from, and the log
    files skipped."""
    if args.current is not None:
        return batch(args.current, schema), str(args.current), []
    current, skipped = served_traffic(url, settings.window_days, schema)
    return current, f"{url} (served, last {settings.window_days} day(s))", skipped


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    bundle: ModelBundle | None,
    settings: Settings,
    schema: Schema,
    html: Path,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The drift summary, and the rows' labels and predictions (served, or the model's)."""
    extra = [LABEL, prediction_log.PREDICTION]
    served = current[[name for name in extra if name in current]].reset_index(drop=True)
    current = current.drop(columns=extra, errors="ignore")
    predictions = None
    if bundle is not None:
        if prediction_log.PREDICTION not in served:
            served[prediction_log.PREDICTION] = model_predictions(current, bundle)
        predictions = (model_predictions(reference, bundle), served[prediction_log.PREDICTION])
    summary = drift_report(reference, current, settings.drift_share, html, schema, predictions)
    return summary, served


def model_quality(
    args: argparse.Namespace,
    served: pd.DataFrame,
    bundle: ModelBundle,
    settings: Settings,
    schema: Schema,
    url: str,
) -> dict[str, Any] | None:
    """The quality section: labels from the feedback (served traffic) or the batch itself."""
    feedback = None
    if args.current is None:
        labels = args.feedback or os.environ.get("PREDICTION_FEEDBACK") or FEEDBACK_URL
        feedback = (labels, url, settings.label_days)
    elif args.feedback:
        log.warning("--feedback is for the served traffic: a batch's labels are its target")
    pairs = labelled_pairs(served, feedback, schema)
    html = args.output_dir / "quality.html"
    summary = quality(pairs, args.quality_reference, bundle, settings, html)
    if summary is not None:
        summary["labels"] = feedback[0] if feedback else "the batch's target column"
    return summary


def monitor(args: argparse.Namespace) -> dict[str, Any]:
    """Read, compare, score: the summary that drift.json holds."""
    settings, schema = load_settings(args.min_rows), load_schema()
    if not args.reference.exists():
        raise UserError(f"{args.reference} not found: run `make pipeline` first")
    url = log_url(args.log)
    current, source, skipped = read_current(args, settings, schema, url)
    html = args.output_dir / "drift.html"
    if len(current) < settings.min_rows:
        text = f"{len(current)} row(s) in {source}, fewer than monitor.min_rows "
        placeholder(html, NOT_ENOUGH, text + f"({settings.min_rows}): no verdict on drift.")
        summary = not_enough(len(current), settings.min_rows, source, settings.drift_share)
        return summary | {"skipped_log_files": skipped}
    table = read_table(args.reference, schema)
    reference = validate(table, schema, raw_columns(schema), str(args.reference))
    bundle = load_bundle()
    summary, served = compare(reference, current, bundle, settings, schema, html)
    summary.update(current=source, skipped_log_files=skipped, quality=None)
    summary["out_of_range"] = out_of_range(current, schema)  # schema.yaml's ranges: soft checks
    if bundle is not None:
        summary["quality"] = model_quality(args, served, bundle, settings, schema, url)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name in REPORTS:  # an earlier run's verdict never outlives a failed run
        (args.output_dir / name).unlink(missing_ok=True)
    report = args.output_dir / "drift.json"
    try:
        with step("the monitor"):  # whatever else fails is not a verdict: never exit 1
            summary = monitor(args)
    except (UserError, StepFailed) as error:
        write_report(report, {"verdict": "error", "error": str(error)})
        if isinstance(error, UserError):
            raise  # one line, exit 2 (settings.run_cli)
        log.error("%s", error)
        return EXIT_FAILED
    write_report(report, summary)
    log_summary(summary, args.output_dir)
    return EXIT_ALERT if alert(summary) else EXIT_CALM


if __name__ == "__main__":
    run_cli(main)
