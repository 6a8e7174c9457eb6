"""The model bundle: what the train stage writes to ``models/model.joblib``, and how it is
read and how it predicts.

The file holds two parts, one after the other: a small header (the task, the model's name,
the schema it was trained on, its features, classes and rows: plain values, read without
running any code of the file), then the fitted scikit-learn pipeline (joblib). The service
builds its request model from the header at once, while the pipeline, which can be large,
loads in the background; the batch CLI, the evaluation and the monitor load both. The schema
in the header is the serving contract: nothing that predicts reads ``schema.yaml``.

``predict_frame`` is the one way a model predicts: the service, the batch CLI, the
evaluation and the monitor all call it.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import scipy.sparse
import sklearn
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from .contract.schema import Schema
from .pipeline.features import Feature, feature_set, names
from .settings import UserError

DEFAULT_MODEL_PATH = Path("models/model.joblib")
FORMAT = "model bundle"  # the header's first key: what tells this file from any other
VERSION = 1
NOT_A_MODEL = "is not a model written by the train stage"


@dataclass
class ModelHeader:
    """What a model is, without the model: its contract and its features."""

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
        """The features, as pipeline/features.py computes them (once per process)."""
        features = feature_set(self.contract)
        if names(features) != self.features:
            raise UserError(
                "the model was trained with other features than pipeline/features.py defines "
                "now: run `make pipeline`"
            )
        return features


@dataclass
class ModelBundle(ModelHeader):
    """What the train stage writes to ``models/model.joblib``: the header and the pipeline."""

    pipeline: Any  # the fitted scikit-learn Pipeline: preprocessing and the estimator

    @property
    def header(self) -> ModelHeader:
        return ModelHeader(**{f.name: getattr(self, f.name) for f in fields(ModelHeader)})


def model_path() -> Path:
    """Where the model is: ``MODEL_PATH``, else the train stage's output."""
    return Path(os.environ.get("MODEL_PATH", DEFAULT_MODEL_PATH))


def save_model(bundle: ModelBundle, path: Path) -> None:
    """Write the header, then the pipeline, into one file."""
    header = {"format": FORMAT, "version": VERSION, **asdict(bundle.header)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        pickle.dump(header, file, protocol=pickle.HIGHEST_PROTOCOL)
        joblib.dump(bundle.pipeline, file)


class _PlainValues(pickle.Unpickler):
    """Unpickles plain values only (dicts, lists, text, numbers, dates): reading a header
    never runs code from the file."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "datetime" and name in {"date", "datetime", "time", "timezone", "timedelta"}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} in a model's header")


def _read_header(file: io.BufferedReader, path: Path) -> ModelHeader:
    try:
        header = _PlainValues(file).load()
    except Exception:  # a file of anything else fails in many ways
        raise UserError(f"{path} {NOT_A_MODEL}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UserError(f"{path} {NOT_A_MODEL} (or by an older version): run `make pipeline`")
    if header.get("version") != VERSION:
        raise UserError(
            f"{path}: a model bundle of version {header.get('version')}, not "
            f"{VERSION}: run `make pipeline`"
        )
    try:
        return ModelHeader(**{f.name: header[f.name] for f in fields(ModelHeader)})
    except KeyError as missing:
        raise UserError(f"{path} {NOT_A_MODEL}: its header lacks {missing}") from None


def _opened(path: Path) -> io.BufferedReader:
    if not path.exists():
        raise UserError(
            f"no model at {path}: run `make pipeline` (or `dvc pull`) first, or set MODEL_PATH"
        )
    return path.open("rb")


def read_header(path: Path | None = None) -> ModelHeader:
    """The model's header alone: its contract, fast whatever the model's size."""
    path = path or model_path()
    with _opened(path) as file:
        return _read_header(file, path)


def load_model(path: Path | None = None) -> ModelBundle:
    """Load the bundle written by the train stage: its header, then its pipeline."""
    path = path or model_path()
    with _opened(path) as file:
        header = _read_header(file, path)
        try:
            pipeline = joblib.load(file)
        except Exception:  # a truncated or foreign pipeline fails in many ways
            raise UserError(f"{path} {NOT_A_MODEL}: its pipeline cannot be read") from None
    values = {f.name: getattr(header, f.name) for f in fields(ModelHeader)}
    return ModelBundle(**values, pipeline=pipeline)


def probability_column(label: Any) -> str:
    return f"probability_{label}"


def predict_frame(bundle: ModelBundle, features: pd.DataFrame, threads: int = 1) -> pd.DataFrame:
    """Predict from a features frame: a ``prediction`` column, plus class probabilities.

    ``threads`` > 1 splits a forest's rows between threads (the batch CLI: its trees release
    the GIL); each row's sum is the same, in the same order."""
    inputs = features[bundle.features]
    # compute_features leaves no infinity (NaN is imputed): skip scikit-learn's finiteness
    # checks, a third of the time of a one-record prediction.
    with sklearn.config_context(assume_finite=True):
        x = bundle.pipeline[:-1].transform(inputs)
        model = bundle.pipeline[-1]
        if bundle.classes is None:
            predictions = _forest_mean(model, x, "predict", threads)
            return pd.DataFrame({"prediction": predictions}, index=inputs.index)
        probabilities = _forest_mean(model, x, "predict_proba", threads)
    result = {"prediction": [bundle.classes[i] for i in probabilities.argmax(axis=1)]}
    for position, label in enumerate(bundle.classes):
        result[probability_column(label)] = probabilities[:, position]
    return pd.DataFrame(result, index=inputs.index)


def _forest_mean(model: Any, x: Any, method: str, threads: int = 1) -> Any:
    """``model.<method>(x)``; for a random forest, the same sum in the same order without
    joblib's dispatch around each tree, which is most of a one-record prediction (2.9 ms
    of 3.5 for 100 trees, measured). tests/test_model.py checks the result is identical."""
    forest = isinstance(model, RandomForestClassifier | RandomForestRegressor)
    if not forest or scipy.sparse.issparse(x):
        return getattr(model, method)(x)
    x = np.ascontiguousarray(x, dtype=np.float32)  # what the forest's own input check makes
    if threads > 1 and len(x) >= 1000 * threads:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="trees") as pool:
            blocks = np.array_split(x, threads)
            return np.concatenate(list(pool.map(lambda b: _forest_mean(model, b, method), blocks)))
    total = getattr(model.estimators_[0], method)(x, check_input=False).astype(np.float64)
    for tree in model.estimators_[1:]:
        total += getattr(tree, method)(x, check_input=False)
    total /= len(model.estimators_)
    return total
