"""DVC stage ``model_card``: the model card, a Markdown page that describes the model.

Reads ``docs/model_card_intro.md`` (yours: its title, intended use, limits; kept as you wrote
it, on top of the card), ``metrics/metrics.json`` and ``metrics/details.json`` (the evaluate
stage's), ``schema.yaml``, ``params.yaml`` and the raw data file (``data.raw``: its md5,
the one DVC records in its ``.dvc`` file, is the data's version); writes
``models/model_card.md``: the data and its split, the schema, the features, the parameters,
the metrics against the dummy baseline, per class, the splits' target distributions and a
shift warning, the feature importance, and links to the plots' images. CD attaches it to
the GitHub release of a version tag.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from ..contract.schema import Schema, load_schema
from ..settings import UserError, load_params, run_cli

log = logging.getLogger(__name__)

INTRO = Path("docs/model_card_intro.md")
TOP_FEATURES = 20  # rows of the importance table (the plot has every feature)


def fingerprint(path: Path) -> dict[str, Any]:
    """The file's md5 (DVC 3's hash of a file: its bytes) and size; for a CSV, its rows."""
    md5, lines = hashlib.md5(), 0
    with path.open("rb") as source:
        while chunk := source.read(1 << 22):
            md5.update(chunk)
            lines += chunk.count(b"\n")
    out: dict[str, Any] = {"path": str(path), "md5": md5.hexdigest(), "bytes": path.stat().st_size}
    if path.suffix == ".csv":
        out["rows"] = max(lines - 1, 0)  # the header (a quoted line break would count too)
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        out["rows"] = pq.ParquetFile(path).metadata.num_rows
    return out


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def data_section(data: dict[str, Any], params: dict[str, Any], schema: Schema) -> list[str]:
    rows = f", {data['rows']:,} rows" if "rows" in data else ""
    time = schema.timestamp
    prepare = params["prepare"]
    if time is not None:
        how = f"by time on `{time.name}`: the newest {prepare['test_size']:.0%} for testing"
        how += f", training ending {prepare['gap_days']} day(s) before it"
    else:
        how = f"at random: {prepare['test_size']:.0%} for testing (seed {prepare['seed']})"
    return [
        "## Data",
        "",
        f"`{data['path']}` ({data['bytes']:,} bytes{rows}), version: md5 `{data['md5']}` "
        f"(as in `{data['path']}.dvc`). Split {how}.",
    ]


def schema_section(schema: Schema, features: list[str]) -> list[str]:
    rows = [[f"`{c.name}`", c.kind, c.role, "yes" if c.nullable else "no"] for c in schema.columns]
    engineered = [name for name in features if name not in {c.name for c in schema.columns}]
    lines = ["## Schema and features", "", *_table(["column", "kind", "role", "nullable"], rows)]
    lines += ["", f"The model's {len(features)} features: " + ", ".join(f"`{f}`" for f in features)]
    if engineered:
        shown = ", ".join(f"`{f}`" for f in engineered)
        lines[-1] += f" (engineered in pipeline/features.py: {shown})"
    return [*lines[:-1], lines[-1] + "."]


def model_section(details: dict[str, Any], params: dict[str, Any]) -> list[str]:
    train = params["train"]
    settings = train.get(details["model"]) or {}
    shown = ", ".join(f"`{k}={v}`" for k, v in settings.items()) or "the defaults"
    return [
        "## Model",
        "",
        f"{details['task'].capitalize()}, `{details['model']}` (scikit-learn) with {shown}, "
        f"seed {train['seed']}; trained on {details['train_rows']:,} rows, tested on "
        f"{details['test_rows']:,}, target `{details['target']}`.",
    ]


def metrics_section(scores: dict[str, Any]) -> list[str]:
    rows = []
    for name, value in scores.items():
        if name.startswith("baseline_") or name in {"test_rows", "target_shift"}:
            continue
        rows.append([name, value, scores.get(f"baseline_{name}")])
    return [
        "## Metrics (test split)",
        "",
        "The baseline always predicts training's most frequent class (for a regressor, its "
        "mean): a model that does not beat it has learned nothing.",
        "",
        *_table(["metric", "model", "baseline"], rows),
    ]


def classes_section(details: dict[str, Any]) -> list[str]:
    per_class = details.get("per_class")
    split = details["distribution"]
    if per_class is None:  # a regressor: the target's summary in each split
        keys = ["rows", "mean", "std", "min", "median", "max"]
        rows = [[name, *(split[name][k] for k in keys)] for name in ("train", "test")]
        return ["## Target in each split", "", *_table(["split", *keys], rows)]

    def count(name: str, label: str) -> str:
        found = split[name]["classes"].get(label)
        return f"{found['rows']:,} ({found['share']:.0%})" if found else "0"

    rows = [
        [f"`{label}`", s["precision"], s["recall"], s["f1"], s["support"], count("train", label)]
        for label, s in per_class.items()
    ]
    header = ["class", "precision", "recall", "F1", "test rows", "training rows"]
    return ["## Per class (test split)", "", *_table(header, rows)]


def shift_section(shift: dict[str, Any]) -> list[str]:
    text = shift["warning"] or (
        f"The test split's target is close to training's ({shift['method']} "
        f"{shift['score']:.3f}, under the threshold {shift['threshold']})."
    )
    return ["## Shift between the splits", "", ("**Warning:** " if shift["warning"] else "") + text]


def importance_section(ranked: list[dict[str, Any]]) -> list[str]:
    if not ranked:
        return []
    rows = [[f"`{r['feature']}`", r["importance"], r["std"]] for r in ranked[:TOP_FEATURES]]
    return [
        "## Feature importance",
        "",
        "Permutation importance on the test split: how much the headline metric (accuracy; "
        "RMSE for a regressor) worsens when the feature's values are shuffled.",
        "",
        *_table(["feature", "importance", "std"], rows),
    ]


def plots_section(task: str) -> list[str]:
    names = ["confusion_matrix", "roc"] if task == "classification" else []
    names += ["predicted_vs_actual", "residuals"] if task == "regression" else []
    links = [f"![{name}](../plots/{name}.svg)" for name in [*names, "importance"]]
    return ["## Plots", "", *links]


def card(intro: str, data: dict, params: dict, schema: Schema, scores: dict, details: dict) -> str:
    sections = [
        data_section(data, params, schema),
        model_section(details, params),
        schema_section(schema, details["features"]),
        metrics_section(scores),
        classes_section(details),
        shift_section(details["target_shift"]),
        importance_section(details["importance"]),
        plots_section(details["task"]),
    ]
    generated = "<!-- Written by `make pipeline` (the model_card stage): edit "
    generated += f"{INTRO}, not this file. -->"
    body = "\n\n".join("\n".join(lines) for lines in sections if lines)
    return f"{intro.rstrip()}\n\n{generated}\n\n{body}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the model card (Markdown).")
    parser.add_argument("output", type=Path, help="the card to write, e.g. models/model_card.md")
    parser.add_argument("--metrics", type=Path, default=Path("metrics/metrics.json"))
    parser.add_argument("--details", type=Path, default=Path("metrics/details.json"))
    parser.add_argument("--intro", type=Path, default=INTRO)
    args = parser.parse_args(argv)

    params = load_params()
    if not args.intro.exists():
        raise UserError(f"{args.intro} not found: the card's first part, yours to write")
    raw = Path(str(params["data"]["raw"]))
    if not raw.exists():
        raise UserError(f"{raw} not found (data.raw): run `make pipeline`")
    scores = json.loads(args.metrics.read_text())
    details = json.loads(args.details.read_text())
    text = card(args.intro.read_text(), fingerprint(raw), params, load_schema(), scores, details)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log.info("model card: %s", args.output)
    return 0


if __name__ == "__main__":
    run_cli(main)
