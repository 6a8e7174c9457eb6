"""The model of a worker process, loaded in the background so that the service answers from
the start (``/readyz`` says when it is in)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from ..model import ModelBundle, ModelHeader, load_model
from ..settings import UserError

log = logging.getLogger(__name__)


class ModelState:
    """The model of this worker process, loaded in a thread so that the server answers from
    the start: /readyz says 503 until the model is in (a load balancer or Kubernetes sends
    no traffic yet), 200 after. A model that cannot be loaded is said once
    in the log (one line when it is the user's to fix), and on every request: /readyz,
    /livez (an orchestrator restarts the service) and /predict answer 503 with the reason.
    Each worker loads its own copy, all at the same time when the service starts, and
    /readyz is answered by whichever worker takes the probe: a prediction that reaches a
    worker still loading waits for its model (up to ``MODEL_WAIT_SECONDS``, seen: a second
    behind the first worker under load) before the 503 with ``Retry-After: 1``.

    ``header`` is what the service read from the model file when it started (its API is
    built from it): the model loaded must be that one. Without it (the header could not be
    read), ``failure`` says why from the start and nothing loads."""

    def __init__(self, header: ModelHeader | None, failure: str | None = None) -> None:
        self.header = header
        self.bundle: ModelBundle | None = None
        self.failure: str | None = failure

    def load_in_background(self) -> None:
        if self.header is None:
            return  # the reason is in ``failure``, and was logged at import
        self.bundle, self.failure = None, None
        threading.Thread(target=self._load, name="load-model", daemon=True).start()

    async def wait(self, seconds: float) -> bool:
        """Whether the model is in, waiting up to ``seconds`` while it loads."""
        deadline = time.monotonic() + seconds
        while self.bundle is None and self.failure is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.bundle is not None

    def not_ready(self) -> str:
        if self.failure is not None:
            return f"the model could not be loaded: {self.failure}"
        return "the model is still loading: retry in a moment (GET /readyz says when)"

    def _load(self) -> None:
        started = time.monotonic()
        try:
            bundle = load_model()
            if bundle.header != self.header:
                raise UserError(
                    "the model file changed since the service started (its API was built from "
                    "the model then): restart the service"
                )
        except UserError as error:
            self.failure = str(error)
            log.error("the model cannot be served: %s", error)
        except Exception as error:
            self.failure = f"{type(error).__name__}: {error}"
            log.exception("the model cannot be served")
        else:
            self.bundle = bundle
            log.info(
                "loaded %s model (%s) in %.1f s: ready",
                bundle.model,
                bundle.task,
                time.monotonic() - started,
            )
