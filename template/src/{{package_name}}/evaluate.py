"""DVC stage ``evaluate``: score the model on the newest data it has not seen.

Reads ``models/model.joblib`` and ``data/features/test.csv``; writes
``metrics/metrics.json`` (with a dummy baseline's score beside the model's, so a
useless model is obvious) and the plot data under ``plots/``: ``predictions.csv``
(a confusion matrix for classification, predicted vs actual for regression) and
``roc.csv`` (classification) or ``residuals.csv`` (regression).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn import metrics

from .predict import load_model, predict_frame
from .schema import TARGET, read_table
from .settings import UserError, run_cli

log = logging.getLogger(__name__)


def evaluate(bundle: dict[str, Any], test: pd.DataFrame, train_target: pd.Series) -> dict[str, Any]:
    """Model metrics on ``test``, with the dummy baseline's next to them."""
    actual = test[TARGET.name]
    predicted = predict_frame(bundle, test)
    if bundle["task"] == "classification":
        if actual.nunique() < 2:
            raise UserError("the test split has only one class: ROC AUC is undefined")
        positive = f"probability_{bundle['classes'][-1]}"
        majority = train_target.mode().iloc[0]
        return {
            "accuracy": metrics.accuracy_score(actual, predicted["prediction"]),
            "f1": metrics.f1_score(actual, predicted["prediction"], zero_division=0),
            "roc_auc": metrics.roc_auc_score(actual, predicted[positive]),
            "baseline_accuracy": metrics.accuracy_score(actual, [majority] * len(actual)),
            "test_rows": len(test),
        }
    mean = float(train_target.mean())
    return {
        "rmse": metrics.root_mean_squared_error(actual, predicted["prediction"]),
        "mae": metrics.mean_absolute_error(actual, predicted["prediction"]),
        "r2": metrics.r2_score(actual, predicted["prediction"]),
        "baseline_rmse": metrics.root_mean_squared_error(actual, [mean] * len(actual)),
        "test_rows": len(test),
    }


def plot_data(bundle: dict[str, Any], test: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The tables DVC draws the plots from (see ``plots:`` in dvc.yaml)."""
    actual = test[TARGET.name]
    predicted = predict_frame(bundle, test)
    tables = {"predictions": pd.DataFrame({"actual": actual, "predicted": predicted["prediction"]})}
    if bundle["task"] == "classification":
        positive = f"probability_{bundle['classes'][-1]}"
        fpr, tpr, _ = metrics.roc_curve(actual, predicted[positive])
        tables["roc"] = pd.DataFrame({"fpr": fpr, "tpr": tpr})
    else:
        residual = actual - predicted["prediction"]
        tables["residuals"] = pd.DataFrame(
            {"predicted": predicted["prediction"], "residual": residual}
        )
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the model on the test split.")
    parser.add_argument("model", type=Path)
    parser.add_argument("features_dir", type=Path, help="folder with train.csv and test.csv")
    parser.add_argument("metrics", type=Path, help="metrics JSON to write")
    parser.add_argument("plots_dir", type=Path)
    args = parser.parse_args(argv)

    bundle = load_model(args.model)
    test = read_table(args.features_dir / "test.csv")
    train_target = read_table(args.features_dir / "train.csv")[TARGET.name]
    scores = evaluate(bundle, test, train_target)

    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(scores, indent=2) + "\n")
    args.plots_dir.mkdir(parents=True, exist_ok=True)
    for name, table in plot_data(bundle, test).items():
        table.to_csv(args.plots_dir / f"{name}.csv", index=False)
    log.info("metrics: %s", ", ".join(f"{k}={v:.4g}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    run_cli(main)
