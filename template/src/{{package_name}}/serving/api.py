"""The HTTP API's models, built from the model's contract (the schema in its header).

A request is ``{"records": [...]}``: every column but the target is a field under its own
name (``"Bill Length (mm)"`` stays ``"Bill Length (mm)"`` on the wire); the ones the features
read are required (the feature columns, and the timestamp when a feature reads it), the others
optional; the id is carried through to the prediction. A missing field, a wrong type, an
unknown field or a value outside a constraint written in the schema's ``checks`` is a 400
naming the field. The OpenAPI document declares every answer (``openapi_document``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    model_validator,
)

from ..contract.schema import Column, Schema, pandera_checks
from ..pipeline.features import Feature, raw_columns
from .config import FLOAT_LIMIT, INT_LIMIT, MAX_BATCH_SIZE, MAX_TEXT_LENGTH

_PYTHON_TYPES: dict[str, Any] = {
    "integer": int,
    "float": float,
    "boolean": bool,
    "category": str,
    "text": str,
    "timestamp": dt.datetime,
}


# pandera checks that have a pydantic equivalent: enforced per request, before batching.
_BOUNDS = {
    "greater_than_or_equal_to": "ge",
    "greater_than": "gt",
    "less_than_or_equal_to": "le",
    "less_than": "lt",
}


_COVERED = {"isin", "in_range", "str_matches", *_BOUNDS}


def _check_values(column: Column) -> AfterValidator:
    """Any other pandera check of the column, applied to each value of a request."""
    checks = [c for c in pandera_checks(column) if c.name not in _COVERED]

    def check(value: Any) -> Any:
        if value is not None:
            for each in checks:
                passed = each(pd.Series([value])).check_output
                if not bool(passed.all() if hasattr(passed, "all") else passed):
                    raise ValueError(f"fails the check {each.name} of schema.yaml")
        return value

    return AfterValidator(check)


def _not_a_boolean(value: Any) -> Any:
    # pydantic takes true and false for 1 and 0; in JSON they are not numbers.
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _field(column: Column, required: bool) -> tuple[Any, Any]:
    annotation: Any = _PYTHON_TYPES[column.kind]
    constraints: dict[str, Any] = {}
    checks = dict(column.checks)
    if "isin" in checks:
        annotation = Literal[tuple(checks["isin"])]  # type: ignore[valid-type]
    for check, keyword in _BOUNDS.items():
        if check in checks:
            constraints[keyword] = checks[check]
    if "in_range" in checks:
        bounds = checks["in_range"]
        constraints["ge" if bounds.get("include_min", True) else "gt"] = bounds["min_value"]
        constraints["le" if bounds.get("include_max", True) else "lt"] = bounds["max_value"]
    if column.kind == "integer" and "isin" not in checks:
        # What the batch CLI accepts (tables._convert reads integers as float64, |x| < 2**63).
        constraints["ge"] = max(constraints.get("ge", -INT_LIMIT), -INT_LIMIT)
        constraints["le"] = min(constraints.get("le", INT_LIMIT), INT_LIMIT)
    if "str_matches" in checks:
        constraints["pattern"] = checks["str_matches"]
    if column.kind == "float":
        constraints["allow_inf_nan"] = False  # NaN is not "unknown": null is
    if column.kind == "float":
        constraints.setdefault("ge", -FLOAT_LIMIT)
        constraints.setdefault("le", FLOAT_LIMIT)
    if column.kind in {"category", "text"}:
        constraints["max_length"] = MAX_TEXT_LENGTH
    if set(checks) - _COVERED:
        annotation = Annotated[annotation, _check_values(column)]
    if column.kind in {"integer", "float"}:
        annotation = Annotated[annotation, BeforeValidator(_not_a_boolean)]
    if column.nullable or not required:
        annotation = annotation | None  # a required key may still be null: "unknown"
    return annotation, Field(
        ... if required else None,
        alias=column.name,
        description=column.description or f"{column.kind} ({column.role})",
        **constraints,
    )


def request_model(
    schema: Schema, features: Iterable[Feature] | None = None, looked_up: Iterable[str] = ()
) -> type[BaseModel]:
    """One record of a request: the columns the features read required, the rest optional
    (and ``looked_up``, the ones a feature store fills in by the record's id)."""
    read = {column.name for column in raw_columns(schema, features)} - set(looked_up)
    fields = {}
    for position, column in enumerate(schema.columns):
        if column.role != "target":
            fields[f"c{position}"] = _field(column, required=column.name in read)
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Record",
        # A misspelt field is an error, not silently ignored; numbers are accepted as text
        # for categories such as postcodes.
        __config__=ConfigDict(extra="forbid", coerce_numbers_to_str=True),
        **fields,
    )


def prediction_model(schema: Schema) -> type[BaseModel]:
    """One prediction: the id (when the schema has one), the prediction, the probabilities."""
    target = schema.target
    fields: dict[str, Any] = {}
    if schema.id is not None:
        fields["record_id"] = (
            _PYTHON_TYPES[schema.id.kind] | None,
            Field(None, alias=schema.id.name, description="The record's id, as sent"),
        )
    if schema.task == "classification":
        fields["prediction"] = (
            _PYTHON_TYPES[target.kind],
            Field(description=f"Predicted class of '{target.name}'"),
        )
        fields["probabilities"] = (
            dict[str, float],
            Field(description="Probability of each class, keyed by the class label"),
        )
    else:
        fields["prediction"] = (float, Field(description=f"Predicted '{target.name}'"))
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Prediction",
        __config__=ConfigDict(serialize_by_alias=True, populate_by_name=True),
        **fields,
    )


def record_values(record: BaseModel) -> dict[str, Any]:
    """A typed record's values by column name: what the model is given, and what the
    prediction log stores (the one conversion of a request's values is its validation)."""
    return record.model_dump(by_alias=True)


def unknown_contract_models() -> tuple[type[BaseModel], type[BaseModel]]:
    """A record and a prediction of any shape: the API of a service whose model cannot be
    read (every prediction is then a 503 saying why, before a body is parsed)."""
    record = create_model("Record", __config__=ConfigDict(extra="allow"))
    prediction = create_model("Prediction", __config__=ConfigDict(extra="allow"))
    return record, prediction


# Where the records of the request being served are handed to the prediction log (RequestLog
# sets it): the very objects the model is given, typed once.
TYPED_RECORDS: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "typed_records", default=None
)


# Why a record of the request being served cannot be served through no fault of the client's
# (RequestGuard sets it; e.g. the feature store could not be opened): a validator adds the
# reason and raises, and RequestGuard answers 503 with it in place of the 400.
SERVER_FAULTS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "server_faults", default=None
)


def predict_request_model(record: type[BaseModel]) -> type[BaseModel]:
    """The body of POST /predict: the records, and nothing else (an unknown key is a 400)."""

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        records: list[record] = Field(min_length=1, max_length=MAX_BATCH_SIZE)  # type: ignore[valid-type]

        @model_validator(mode="after")
        def _hand_to_the_log(self) -> PredictRequest:
            holder = TYPED_RECORDS.get()
            if holder is not None:
                holder[:] = [self.records]
            return self

    return PredictRequest


# What /predict answers besides 200, and the bodies it answers with: BentoML's own document
# leaves out 408, 413, 415 and 503, and declares a 400's ``detail`` as text.
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "title": "Message"}},
}


_INVALID = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "title": "Message"},
        "detail": {
            "type": "array",
            "title": "What is wrong, field by field",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


_REFUSALS = {
    "408": "Request Timeout: the body stalled",
    "413": "Content Too Large: the body is over MAX_BODY_BYTES",
    "415": "Unsupported Media Type: the body is not JSON",
    "503": "Service Unavailable: the model is loading (Retry-After) or cannot be loaded",
}


def openapi_document(document: dict[str, Any], paths: tuple[str, ...] = ("/predict",)) -> dict:
    """BentoML's OpenAPI document with every answer of the API's ``paths`` declared."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"], schemas["InvalidRequest"] = _ERROR, _INVALID
    for path in paths:
        responses = document.get("paths", {}).get(path, {}).get("post", {}).get("responses")
        if responses is None:
            continue
        invalid = {"$ref": "#/components/schemas/InvalidRequest"}
        responses["400"] = {
            "description": "Bad Request: the body is not valid JSON or breaks the schema",
            "content": {"application/json": {"schema": invalid}},
        }
        for status, description in _REFUSALS.items():
            error = {"$ref": "#/components/schemas/Error"}
            responses[status] = {
                "description": description,
                "content": {"application/json": {"schema": error}},
            }
    return document
