"""How the monitor runs: the ``monitor`` section of params.yaml, checked, and its steps (a
failure inside a library is a failed step, exit 3, never a verdict)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..settings import UserError, load_params, param

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step failed inside a library (or in this code): exit 3, the step named."""


@contextmanager
def step(name: str) -> Iterator[None]:
    """Run one step of the monitor. Its libraries' warnings are not printed (scikit-learn's
    UndefinedMetricWarning, from inside Evidently, filled the output: what they would say is
    in the summary); an unexpected error becomes StepFailed("<name> failed: ...")."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except (UserError, StepFailed):
        raise
    except Exception as error:
        log.debug("%s failed", name, exc_info=True)
        detail = str(error).splitlines()[0] if str(error) else ""
        raise StepFailed(f"{name} failed: {type(error).__name__}: {detail}") from error


@dataclass(frozen=True)
class Settings:
    """The ``monitor`` section of params.yaml, checked (``--min-rows`` overrides min_rows)."""

    drift_share: float
    window_days: int
    min_rows: int
    tolerance: float
    label_days: int


def load_settings(min_rows: int | None = None) -> Settings:
    params = load_params("monitor")
    settings = Settings(
        drift_share=param(params, "drift_share", float),
        window_days=param(params, "window_days", int),
        min_rows=param(params, "min_rows", int) if min_rows is None else min_rows,
        tolerance=param(params, "quality_tolerance", float)
        if "quality_tolerance" in params
        else 0.1,
        label_days=param(params, "label_window_days", int)
        if "label_window_days" in params
        else 180,
    )
    if not 0 < settings.drift_share <= 1:
        raise UserError(f"monitor.drift_share must be in (0, 1], got {settings.drift_share}")
    if settings.window_days < 1 or settings.min_rows < 1 or settings.label_days < 1:
        raise UserError(
            "monitor.window_days, monitor.label_window_days and monitor.min_rows (--min-rows) "
            "must be at least 1"
        )
    if settings.tolerance < 0:
        raise UserError(f"monitor.quality_tolerance must be at least 0, got {settings.tolerance}")
    return settings
