"""The model bundle: what the train stage writes to ``models/model.joblib``, typed.

Its own module, never run as a script, so the pickled class is always found under the same
name, whichever entry point (stage, batch CLI, service) loads it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .pipeline.features import Feature, feature_set, names
from .contract.schema import Schema
from .settings import UserError


@dataclass
class ModelBundle:
    """What the train stage writes to ``models/model.joblib``."""

    pipeline: Any  # the fitted scikit-learn Pipeline: preprocessing and the estimator
    task: str  # "classification" or "regression"
    model: str  # the name in params.yaml's train.model
    schema: dict[str, Any]  # schema.yaml as it was at training time: the serving contract
    features: list[str]  # feature names, in the order the pipeline takes them
    classes: list[Any] | None  # the class labels, as in the data (classification)
    train_rows: int

    @functools.cached_property
    def contract(self) -> Schema:
        return Schema.from_dict(self.schema, source="the model's schema")

    @functools.cached_property
    def feature_definitions(self) -> tuple[Feature, ...]:
        features = feature_set(self.contract)
        if names(features) != self.features:
            raise UserError(
                "the model was trained with other features than features.py defines now: "
                "run `make pipeline`"
            )
        return features
