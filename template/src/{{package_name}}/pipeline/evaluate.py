"""DVC stage ``evaluate``: score the model on the held-out test split, and explain it.

Reads ``models/model.joblib``, ``data/features/{train,test}.parquet`` and the ``evaluate``
section of ``params.yaml``; writes

- ``metrics/metrics.json``: the headline metrics, a dummy baseline's beside them (a useless
  model is obvious), and how far the test split's target is from training's
  (``target_shift``): flat numbers, for ``dvc metrics diff``;
- ``metrics/details.json``: per class, precision, recall, F1 and support; each split's class
  counts (for a regressor, the target's summary); the shift's figures and warning; the
  permutation importance of each feature; the model and its features (for the model card);
- ``plots/``: the data DVC draws its plots from (``predictions.csv``: a confusion matrix, or
  predicted against actual; ``roc.csv`` or ``residuals.csv``; ``importance.csv``), and the
  same plots as SVG images that open without the internet (charts.py).

One definition of each metric, here and in ``make monitor``'s quality scores (its quality.py
calls these functions; Evidently's report computes the same): accuracy; precision, recall
and F1 of the positive class (the last of the model's classes) for a binary model, else
their unweighted mean over the classes that occur in the labels or the predictions (a class
neither there nor predicted has no F1 to average: scikit-learn's and Evidently's macro
average); ROC AUC is the area under the plotted curve (micro-averaged over the classes, one
against the rest, when there are more than two), so it is defined when a class is missing.
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
from sklearn.inspection import permutation_importance
from sklearn.preprocessing import label_binarize

from ..contract.tables import read_table
from ..model import ModelBundle, load_model, predict_frame, probability_column
from ..settings import load_params, param, run_cli

log = logging.getLogger(__name__)


def _labels(values: pd.Series) -> pd.Series:
    # Nullable integers and booleans as plain values, comparable with the model's classes.
    return pd.Series(values.to_numpy(dtype=object), index=values.index).map(
        lambda v: v.item() if hasattr(v, "item") else v
    )


def _probabilities(bundle: ModelBundle, predicted: pd.DataFrame) -> np.ndarray:
    return predicted[[probability_column(c) for c in bundle.classes or []]].to_numpy()


def classification_scores(
    actual: pd.Series, predicted: pd.Series, classes: list[Any]
) -> dict[str, float]:
    """Accuracy, precision, recall and F1 (the module's docstring has the definitions)."""
    if len(classes) == 2:  # the positive class alone, whatever else the labels hold
        average: dict[str, Any] = {"labels": [classes[-1]], "average": "macro"}
    else:
        average = {"average": "macro"}
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        actual, predicted, zero_division=0, **average
    )
    return {
        "accuracy": float(metrics.accuracy_score(actual, predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def per_class_scores(
    actual: pd.Series, predicted: pd.Series, classes: list[Any]
) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support of each class; None where undefined (a class never
    predicted has no precision; one absent from the labels, no recall)."""
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        actual, predicted, labels=classes, zero_division=np.nan
    )

    def number(value: float) -> float | None:
        return None if np.isnan(value) else float(value)

    return {
        str(label): {
            "precision": number(precision[i]),
            "recall": number(recall[i]),
            "f1": number(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(classes)
    }


def regression_scores(actual: pd.Series, predicted: pd.Series) -> dict[str, float]:
    """RMSE, MAE and R²."""
    return {
        "rmse": float(metrics.root_mean_squared_error(actual, predicted)),
        "mae": float(metrics.mean_absolute_error(actual, predicted)),
        "r2": float(metrics.r2_score(actual, predicted)),
    }


def roc_auc(actual: pd.Series, probabilities: np.ndarray, classes: list[Any]) -> float | None:
    """The area under the ROC curve that plot_data draws; None when undefined (a binary
    model's test split with one class)."""
    truth = label_binarize(actual, classes=classes)
    if len(classes) == 2:
        truth, probabilities = truth[:, 0], probabilities[:, 1]
    if len(set(truth.ravel())) < 2:
        return None
    return float(metrics.roc_auc_score(truth.ravel(), probabilities.ravel()))


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
        classes = bundle.classes
        scores: dict[str, Any] = classification_scores(actual, predicted["prediction"], classes)
        auc = roc_auc(actual, _probabilities(bundle, predicted), classes)
        if auc is None:
            log.warning("roc_auc left out: the test split has one class only")
        else:
            scores["roc_auc"] = auc
        majority = _labels(train_target).mode().iloc[0]
        scores["baseline_accuracy"] = metrics.accuracy_score(actual, [majority] * len(actual))
        scores["test_rows"] = len(test)
        return scores
    actual = actual.astype("float64")
    mean = float(train_target.astype("float64").mean())
    return {
        **regression_scores(actual, predicted["prediction"]),
        "baseline_rmse": metrics.root_mean_squared_error(actual, [mean] * len(actual)),
        "test_rows": len(test),
    }


def distribution(target: pd.Series, classification: bool) -> dict[str, Any]:
    """A split's target: rows and share of each class, or a regressor's summary."""
    if classification:
        counts = _labels(target.dropna()).value_counts()
        return {
            "rows": int(counts.sum()),
            "classes": {
                str(label): {"rows": int(n), "share": float(n / counts.sum())}
                for label, n in counts.sort_index(key=lambda i: i.map(str)).items()
            },
        }
    values = target.dropna().astype("float64")
    quantiles = values.quantile([0.25, 0.5, 0.75]).to_numpy()
    return {
        "rows": len(values),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "p25": float(quantiles[0]),
        "median": float(quantiles[1]),
        "p75": float(quantiles[2]),
        "max": float(values.max()),
    }


def target_shift(
    train: pd.Series, test: pd.Series, classification: bool, threshold: float
) -> dict[str, Any]:
    """How far the test split's target is from training's, by make monitor's drift measures
    (Jensen-Shannon distance of the class mix; Wasserstein distance over training's standard
    deviation), with a warning, its figures in words, at ``threshold`` or above."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    before, after = distribution(train, classification), distribution(test, classification)
    splits = (before, after)
    if classification:
        classes = sorted(set(before["classes"]) | set(after["classes"]))
        p, q = ([d["classes"].get(c, {}).get("share", 0.0) for c in classes] for d in splits)
        score, method = float(jensenshannon(p, q)), "jensenshannon"
        absent = [c for c in classes if c not in after["classes"]]
        figures = ", ".join(
            f"'{c}' {100 * a:.0f}% -> {100 * b:.0f}%" for c, a, b in zip(classes, p, q, strict=True)
        )
    else:
        values = (s.dropna().astype("float64") for s in (train, test))
        score = float(wasserstein_distance(*values) / max(before["std"], 1e-3))
        method, absent = "wasserstein", []
        figures = (
            f"mean {before['mean']:.4g} -> {after['mean']:.4g}, range "
            f"{before['min']:.4g}..{before['max']:.4g} -> {after['min']:.4g}..{after['max']:.4g}"
        )
    shifted = score >= threshold or bool(absent)
    warning = None
    if shifted:
        warning = (
            f"the test split's target differs from training's ({method} {score:.3f}, threshold "
            f"{threshold}): {figures}"
        )
        if absent:
            warning += f"; no test row of class(es) {', '.join(absent)}: their F1 is undefined"
    return {
        "method": method,
        "score": score,
        "threshold": threshold,
        "shifted": shifted,
        "absent_from_test": absent,
        "warning": warning,
        "train": before,
        "test": after,
    }


def importance(bundle: ModelBundle, test: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Permutation importance of each feature on (a sample of) the test split: how much the
    headline metric (accuracy; RMSE for a regressor) worsens when the feature's values are
    shuffled. At most ``evaluate.importance_rows`` rows, ``importance_repeats`` shuffles."""
    rows, repeats = param(params, "importance_rows", int), param(params, "importance_repeats", int)
    if rows < 1 or repeats < 1:
        return pd.DataFrame(columns=["feature", "importance", "std"])
    seed = param(params, "seed", int)
    sample = test.sample(n=min(rows, len(test)), random_state=seed)
    target = _labels(sample[bundle.contract.target.name])
    classifier = bundle.classes is not None
    model = bundle.pipeline.named_steps["model"]
    parallel = "n_jobs" in model.get_params()
    if parallel:  # trees predict on every core here; the service keeps one (train.py)
        model.set_params(n_jobs=-1)
    try:
        result = permutation_importance(
            bundle.pipeline,
            sample[bundle.features],
            target if classifier else target.astype("float64"),
            scoring="accuracy" if classifier else "neg_root_mean_squared_error",
            n_repeats=repeats,
            random_state=seed,
        )
    finally:
        if parallel:
            model.set_params(n_jobs=1)
    table = pd.DataFrame(
        {
            "feature": bundle.features,
            "importance": result.importances_mean,
            "std": result.importances_std,
        }
    )
    return table.sort_values("importance", ascending=False, ignore_index=True)


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
        if len(set(truth.ravel())) > 1:  # else no curve (roc_auc says why)
            fpr, tpr, _ = metrics.roc_curve(truth.ravel(), probabilities.ravel())
            tables["roc"] = pd.DataFrame({"fpr": fpr, "tpr": tpr})
        else:
            tables["roc"] = pd.DataFrame({"fpr": [], "tpr": []})
    else:
        residual = actual.astype("float64") - predicted["prediction"]
        tables["residuals"] = pd.DataFrame(
            {"predicted": predicted["prediction"], "residual": residual}
        )
    return tables


def details(
    bundle: ModelBundle,
    test: pd.DataFrame,
    predicted: pd.DataFrame,
    shift: dict[str, Any],
    ranked: pd.DataFrame,
) -> dict[str, Any]:
    """What metrics.json leaves out: per class, the splits, the shift, the importance."""
    out: dict[str, Any] = {
        "task": bundle.task,
        "model": bundle.model,
        "features": list(bundle.features),
        "train_rows": bundle.train_rows,
        "test_rows": len(test),
        "target": bundle.contract.target.name,
    }
    if bundle.classes is not None:
        actual = _labels(test[bundle.contract.target.name])
        extra = sorted(set(actual) - set(bundle.classes), key=str)  # only in the test split
        labels = list(bundle.classes) + extra
        out["classes"] = [str(c) for c in bundle.classes]
        out["per_class"] = per_class_scores(actual, predicted["prediction"], labels)
    out["distribution"] = {"train": shift.pop("train"), "test": shift.pop("test")}
    out["target_shift"] = shift
    out["importance"] = ranked.to_dict(orient="records")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the model on the test split.")
    parser.add_argument("model", type=Path)
    parser.add_argument("features_dir", type=Path, help="folder with train.parquet, test.parquet")
    parser.add_argument("metrics", type=Path, help="metrics JSON to write")
    parser.add_argument("plots_dir", type=Path)
    parser.add_argument("--details", type=Path, help="details JSON to write (default: beside)")
    args = parser.parse_args(argv)
    params = load_params("evaluate")

    bundle = load_model(args.model)
    target = bundle.contract.target.name
    test = read_table(args.features_dir / "test.parquet")
    train_target = pd.read_parquet(args.features_dir / "train.parquet", columns=[target])[target]
    predicted = predict_frame(bundle, test)  # once, for the metrics, the plots and details
    scores = evaluate(bundle, test, train_target, predicted)
    threshold = param(params, "shift_threshold", float)
    shift = target_shift(train_target, test[target], bundle.classes is not None, threshold)
    scores["target_shift"] = shift["score"]
    if shift["warning"]:
        log.warning("%s", shift["warning"])
    ranked = importance(bundle, test, params)
    tables = plot_data(bundle, test, predicted) | {"importance": ranked}
    write(args, scores, details(bundle, test, predicted, shift, ranked), tables)
    log.info("metrics: %s", ", ".join(f"{k}={v:.4g}" for k, v in scores.items()))
    return 0


def write(
    args: argparse.Namespace,
    scores: dict[str, Any],
    more: dict[str, Any],
    tables: dict[str, pd.DataFrame],
) -> None:
    """metrics.json, details.json, the plots' data and their images."""
    from .charts import render

    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(scores, indent=2) + "\n")
    detail = args.details or args.metrics.with_name("details.json")
    detail.write_text(json.dumps(more, indent=2) + "\n")
    args.plots_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(args.plots_dir / f"{name}.csv", index=False)
    render(tables, args.plots_dir, more["task"])


if __name__ == "__main__":
    run_cli(main)
