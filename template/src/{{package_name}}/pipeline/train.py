"""DVC stage ``train``: fit the scikit-learn pipeline on the training features.

Reads ``data/features/train.parquet``, ``schema.yaml`` and the ``train`` section of
``params.yaml``; writes ``models/model.joblib``, the one model artifact that evaluation, the
batch CLI, the service and the container all load. It is a ``ModelBundle``: the fitted
pipeline with its preprocessing (imputation; scaling and one-hot encoding for the linear
models, categories as integer codes for the tree models), and the schema it was trained on,
so both travel with the model.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from ..contract.schema import Schema, load_schema
from ..contract.tables import read_table
from ..model import ModelBundle, save_model
from ..settings import UserError, load_params, param, run_cli
from .features import feature_set, names

log = logging.getLogger(__name__)

# The models of each task (schema.yaml's `task`): choose one with `train.model` in
# params.yaml; its hyperparameters are `train.<model>`.
MODELS: dict[str, dict[str, Any]] = {
    "classification": {
        "random_forest": RandomForestClassifier,
        "gradient_boosting": HistGradientBoostingClassifier,
        "logistic_regression": LogisticRegression,
    },
    "regression": {
        "random_forest": RandomForestRegressor,
        "gradient_boosting": HistGradientBoostingRegressor,
        "ridge": Ridge,
    },
}


def build_pipeline(
    task: str,
    model_name: str,
    hyperparameters: dict[str, Any],
    seed: int,
    numeric: list[str],
    categorical: list[str],
) -> Pipeline:
    """Preprocessing plus the chosen estimator, as one scikit-learn pipeline."""
    models = MODELS[task]
    if model_name not in models:
        raise UserError(f"train.model '{model_name}' is not one of: {', '.join(models)} ({task})")
    estimator_class = models[model_name]
    if "random_state" in estimator_class().get_params():
        hyperparameters = {"random_state": seed, **hyperparameters}
    trees = model_name in {"random_forest", "gradient_boosting"}
    if trees:
        # Categories as integer codes, one column each (a new category is -1): trees split on
        # them directly. One-hot columns would be sparse and many, several times slower.
        encoder: Any = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, dtype="float64"
        )
        numbers: Any = SimpleImputer(strategy="median", keep_empty_features=True)
    else:
        encoder = OneHotEncoder(handle_unknown="ignore")
        numbers = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
        )
    if model_name == "gradient_boosting" and categorical:
        # Its native categorical splits: the codes are the last columns of the transform.
        codes = list(range(len(numeric), len(numeric) + len(categorical)))
        hyperparameters = {"categorical_features": codes, **hyperparameters}
    try:
        estimator = estimator_class(**hyperparameters)
    except TypeError as error:
        raise UserError(f"train.{model_name}: {error}") from None
    preprocess = ColumnTransformer(
        [("numeric", numbers, numeric), ("categorical", encoder, categorical)]
    )
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def train(features: pd.DataFrame, params: dict[str, Any], schema: Schema) -> ModelBundle:
    """Fit on a features frame; return the model bundle that ``model.load_model`` reads."""
    model_name = param(params, "model", str)
    hyperparameters = params.get(model_name) or {}
    if not isinstance(hyperparameters, dict):
        raise UserError(f"params.yaml: 'train.{model_name}' must be a mapping of hyperparameters")
    features_of = feature_set(schema)  # computed once: it may log what it leaves out
    feature_names = names(features_of)
    target = schema.target.name
    missing = [name for name in [*feature_names, target] if name not in features]
    if missing:
        raise UserError(f"training data lacks column(s): {', '.join(missing)}")
    pipeline = build_pipeline(
        schema.task,
        model_name,
        hyperparameters,
        param(params, "seed", int),
        names(features_of, "numeric"),
        names(features_of, "categorical"),
    )
    labels = features[target]
    if labels.dtype == "Int64":
        labels = labels.astype("int64")
    elif labels.dtype == "boolean":
        labels = labels.astype(bool)
    if isinstance(hyperparameters.get("max_samples"), int):
        # Rows drawn for each tree: at most as many as there are.
        pipeline.named_steps["model"].set_params(
            max_samples=min(hyperparameters["max_samples"], len(features))
        )
    try:
        pipeline.fit(features[feature_names], labels)
    except (ValueError, TypeError) as error:  # scikit-learn checks parameters at fit time
        raise UserError(f"train.{model_name}: {error}") from None
    # Train on every core, predict on one: a service predicts small batches, where starting
    # a thread pool per call costs more than it saves, and workers already share the CPUs.
    if "n_jobs" in pipeline.named_steps["model"].get_params():
        pipeline.named_steps["model"].set_params(n_jobs=1)
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(pipeline, "classes_", [])]
    return ModelBundle(
        pipeline=pipeline,
        task=schema.task,
        model=model_name,
        schema=schema.to_dict(),
        features=feature_names,
        classes=classes or None,  # a regressor has no classes
        train_rows=len(features),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the model.")
    parser.add_argument("features", type=Path, help="training features (parquet)")
    parser.add_argument("model", type=Path, help="where to write the model (.joblib)")
    args = parser.parse_args(argv)
    params = load_params("train")

    bundle = train(read_table(args.features), params, load_schema())
    save_model(bundle, args.model)
    log.info("trained %s on %d rows -> %s", bundle.model, bundle.train_rows, args.model)
    return 0


if __name__ == "__main__":
    run_cli(main)
