"""DVC stage ``evaluate``: score the model on the held-out test split.

Reads ``models/model.joblib`` and ``data/features/{train,test}.parquet``; writes
``metrics/metrics.json`` (with a dummy baseline's score beside the model's, so a useless
model is obvious) and the plot data under ``plots/``: ``predictions.csv`` (a confusion
matrix for classification, predicted vs actual for regression) and ``roc.csv``
(classification: the ROC curve, micro-averaged over the classes when there are more than
two) or ``residuals.csv`` (regression).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.preprocessing import label_binarize

from .bundle import ModelBundle
from .predict import load_model, predict_frame, probability_column
from .schema import read_table
from .settings import UserError, run_cli

log = logging.getLogger(__name__)


def _labels(values: pd.Series) -> pd.Series:
    # Nullable integers and booleans as plain values, comparable with the model's classes.
    return pd.Series(values.to_numpy(dtype=object), index=values.index).map(
        lambda v: v.item() if hasattr(v, "item") else v
    )


def _probabilities(bundle: ModelBundle, predicted: pd.DataFrame) -> np.ndarray:
    return predicted[[probability_column(c) for c in bundle.classes or []]].to_numpy()


def evaluate(
    bundle: ModelBundle,
    test: pd.DataFrame,
    train_target: pd.Series,
    predicted: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Model metrics on ``test``, with the dummy baseline's next to them."""
    target = bundle.contract.target.name
    actual = _labels(test[target])
    predicted = predict_frame(bundle, test) if predicted is None else predicted
    if bundle.classes is not None:
        if actual.nunique() < 2:
            raise UserError("the test split has only one class: ROC AUC is undefined")
        classes = bundle.classes
        binary = len(classes) == 2
        probabilities = _probabilities(bundle, predicted)
        majority = _labels(train_target).mode().iloc[0]
        scores = {
            "accuracy": metrics.accuracy_score(actual, predicted["prediction"]),
            # Binary: F1 of the second class (1, "yes"); more classes: the unweighted mean.
            "f1": metrics.f1_score(
                actual,
                predicted["prediction"],
                average="binary" if binary else "macro",
                pos_label=classes[-1] if binary else 1,
                labels=None if binary else classes,
                zero_division=0,
            ),
        }
        if binary:
            scores["roc_auc"] = metrics.roc_auc_score(actual == classes[-1], probabilities[:, 1])
        elif set(actual) == set(classes):
            scores["roc_auc"] = metrics.roc_auc_score(
                actual, probabilities, multi_class="ovr", labels=classes
            )
        else:
            log.warning("roc_auc left out: some class does not occur in the test split")
        scores["baseline_accuracy"] = metrics.accuracy_score(actual, [majority] * len(actual))
        scores["test_rows"] = len(test)
        return scores
    actual = actual.astype("float64")
    mean = float(train_target.astype("float64").mean())
    return {
        "rmse": metrics.root_mean_squared_error(actual, predicted["prediction"]),
        "mae": metrics.mean_absolute_error(actual, predicted["prediction"]),
        "r2": metrics.r2_score(actual, predicted["prediction"]),
        "baseline_rmse": metrics.root_mean_squared_error(actual, [mean] * len(actual)),
        "test_rows": len(test),
    }


def plot_data(
    bundle: ModelBundle, test: pd.DataFrame, predicted: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """The tables DVC draws the plots from (see ``plots:`` in dvc.yaml)."""
    actual = _labels(test[bundle.contract.target.name])
    predicted = predict_frame(bundle, test) if predicted is None else predicted
    tables = {"predictions": pd.DataFrame({"actual": actual, "predicted": predicted["prediction"]})}
    if bundle.classes is not None:
        classes = bundle.classes
        truth = label_binarize(actual, classes=classes)
        probabilities = _probabilities(bundle, predicted)
        if len(classes) == 2:
            truth, probabilities = truth[:, 0], probabilities[:, 1]
        fpr, tpr, _ = metrics.roc_curve(truth.ravel(), probabilities.ravel())
        tables["roc"] = pd.DataFrame({"fpr": fpr, "tpr": tpr})
    else:
        residual = actual.astype("float64") - predicted["prediction"]
        tables["residuals"] = pd.DataFrame(
            {"predicted": predicted["prediction"], "residual": residual}
        )
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the model on the test split.")
    parser.add_argument("model", type=Path)
    parser.add_argument("features_dir", type=Path, help="folder with train.parquet, test.parquet")
    parser.add_argument("metrics", type=Path, help="metrics JSON to write")
    parser.add_argument("plots_dir", type=Path)
    args = parser.parse_args(argv)

    bundle = load_model(args.model)
    target = bundle.contract.target.name
    test = read_table(args.features_dir / "test.parquet")
    train_target = read_table(args.features_dir / "train.parquet")[target]
    predicted = predict_frame(bundle, test)  # once, for the metrics and the plots
    scores = evaluate(bundle, test, train_target, predicted)

    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(scores, indent=2) + "\n")
    args.plots_dir.mkdir(parents=True, exist_ok=True)
    for name, table in plot_data(bundle, test, predicted).items():
        table.to_csv(args.plots_dir / f"{name}.csv", index=False)
    log.info("metrics: %s", ", ".join(f"{k}={v:.4g}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    run_cli(main)
