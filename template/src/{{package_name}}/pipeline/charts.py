"""The evaluate stage's plots as SVG images, readable without the internet.

``dvc plots show`` writes an HTML page that loads Vega from a CDN: blank offline. These are
the same plots, drawn from the same tables (``plots/*.csv``) with Vega-Lite (the grammar of
DVC's templates) and rendered by vl-convert, which needs neither a browser nor the network:
``plots/confusion_matrix.svg`` and ``plots/roc.svg`` (classification) or
``plots/predicted_vs_actual.svg`` and ``plots/residuals.svg`` (regression), and
``plots/importance.svg``. Scatter plots draw a sample of at most ``POINTS`` points, so an
image stays small whatever the test split's size.

SVG, in one font (Liberation Sans, which vl-convert bundles): the layout depends on the
font's metrics only, so the files are the same on every machine, as ``dvc.lock`` records
them (``make check-lock`` in CI compares); a PNG's pixels would depend on the fonts installed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

POINTS = 2000
FONT = "Liberation Sans"  # bundled with vl-convert, metric-compatible everywhere
WIDTH = 420


def _spec(title: str, data: pd.DataFrame, **body: Any) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": WIDTH,
        "height": WIDTH,
        "background": "white",
        "config": {"font": FONT},
        "data": {"values": json.loads(data.to_json(orient="records"))},  # plain JSON types
        **body,
    }


def confusion_matrix(predictions: pd.DataFrame) -> dict[str, Any]:
    """Rows of the test split by actual and predicted class, counts written in the cells."""
    counts = (
        predictions.astype(str).groupby(["actual", "predicted"]).size().reset_index(name="rows")
    )
    axis = {"type": "nominal", "sort": sorted(set(counts["actual"]) | set(counts["predicted"]))}
    return _spec(
        "Confusion matrix (test split)",
        counts,
        encoding={
            "x": {"field": "predicted", **axis},
            "y": {"field": "actual", **axis},
        },
        layer=[
            {"mark": "rect", "encoding": {"color": {"field": "rows", "type": "quantitative"}}},
            {"mark": "text", "encoding": {"text": {"field": "rows", "type": "quantitative"}}},
        ],
    )


def roc(curve: pd.DataFrame) -> dict[str, Any]:
    """The ROC curve, thinned to at most ``POINTS`` points (the ends kept)."""
    if len(curve) > POINTS:
        keep = sorted(set(range(0, len(curve), len(curve) // POINTS + 1)) | {len(curve) - 1})
        curve = curve.iloc[keep]
    return _spec(
        "ROC curve (test split)",
        curve,
        mark={"type": "line", "interpolate": "step-after"},
        encoding={
            "x": {"field": "fpr", "type": "quantitative", "title": "false positive rate"},
            "y": {"field": "tpr", "type": "quantitative", "title": "true positive rate"},
        },
    )


def scatter(table: pd.DataFrame, x: str, y: str, title: str) -> dict[str, Any]:
    if len(table) > POINTS:
        table = table.sample(n=POINTS, random_state=0)
    return _spec(
        title,
        table[[x, y]].astype("float64"),
        mark={"type": "point", "opacity": 0.4, "size": 12},
        encoding={
            "x": {"field": x, "type": "quantitative", "scale": {"zero": False}},
            "y": {"field": y, "type": "quantitative", "scale": {"zero": False}},
        },
    )


def importance(ranked: pd.DataFrame) -> dict[str, Any]:
    """Permutation importance, the most important feature on top."""
    return _spec(
        "Permutation importance (test split)",
        ranked[["feature", "importance"]],
        height={"step": 18},
        mark="bar",
        encoding={
            "x": {"field": "importance", "type": "quantitative"},
            "y": {"field": "feature", "type": "nominal", "sort": "-x"},
        },
    )


def specs(tables: dict[str, pd.DataFrame], task: str) -> dict[str, dict[str, Any]]:
    """The Vega-Lite specification of each image, by file name."""
    out = {}
    if task == "classification":
        out["confusion_matrix"] = confusion_matrix(tables["predictions"])
        if len(tables.get("roc", ())):
            out["roc"] = roc(tables["roc"])
    else:
        out["predicted_vs_actual"] = scatter(
            tables["predictions"], "actual", "predicted", "Predicted vs actual (test split)"
        )
        out["residuals"] = scatter(
            tables["residuals"], "predicted", "residual", "Residuals (test split)"
        )
    if len(tables.get("importance", ())):
        out["importance"] = importance(tables["importance"])
    return out


def render(tables: dict[str, pd.DataFrame], folder: Path, task: str) -> list[Path]:
    """Write each plot as ``folder/<name>.svg``; the paths written."""
    import vl_convert  # the pipeline's dependency group: ~100 MB, not in the serving image

    written = []
    for name, spec in specs(tables, task).items():
        path = folder / f"{name}.svg"
        path.write_text(vl_convert.vegalite_to_svg(vl_spec=spec))
        written.append(path)
    log.info("plots as images: %s", ", ".join(str(path) for path in written))
    return written
