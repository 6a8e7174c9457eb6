"""The service's ASGI middleware: what every request passes before BentoML parses it.

``RequestGuard`` refuses, unread, what no prediction can come from (too big, not JSON,
stalled, or no model yet); ``RequestLog`` gives each answer an ``X-Request-ID`` and hands each
answered prediction to the prediction log; ``OpenAPIDocument`` serves ``/docs.json`` with
every answer declared.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from .api import SERVER_FAULTS, TYPED_RECORDS, openapi_document
from .loading import ModelState
from .prediction_log import PredictionLog


class RequestGuard:
    """Rejects, before anything is parsed, a POST body over ``max_bytes`` (413, counted as it
    arrives, whatever Content-Length says), one that is not JSON (415), or one that stalls
    (408: no part of it for ``body_timeout`` s); a prediction while there is no model
    (503, with the reason; a model still loading is waited for), or one a validator found the
    server cannot serve (503 with the reason, in place of its 400: ``SERVER_FAULTS``). Only
    the API's ``paths``:
    a POST elsewhere is the router's (405 where only GET is served).

    Written here: the one ASGI package for it on PyPI (content-size-limit-asgi, 2020) raises
    inside ``receive()``, which the framework's handler turns into a 500.
    """

    def __init__(
        self,
        app: Any,
        max_bytes: int,
        body_timeout: float = 10.0,
        paths: tuple[str, ...] = ("/predict",),
        model: ModelState | None = None,
        model_wait: float = 5.0,
    ) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.body_timeout, self.paths = body_timeout, paths
        self.model, self.model_wait = model, model_wait

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type != b"application/json":
            await _answer(send, 415, "the body must be JSON (Content-Type: application/json)")
            return
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            await _answer(send, 413, f"the body is over {self.max_bytes} bytes")
            return
        model = self.model
        if (
            model is not None
            and model.bundle is None
            and scope["path"] == "/predict"
            and not await model.wait(self.model_wait)
        ):
            await _answer(send, 503, model.not_ready(), [(b"retry-after", b"1")])
            return
        received, complete = 0, False
        refusal: tuple[int, str] | None = None
        faults: list[str] = []

        async def counted_receive() -> Any:
            nonlocal received, complete, refusal
            if complete:  # the body is in: what follows is the wait for a disconnect
                return await receive()
            try:
                async with asyncio.timeout(self.body_timeout):
                    message = await receive()
            except TimeoutError:
                refusal = (408, f"the body stalled: no part of it for {self.body_timeout:g} s")
                return {"type": "http.disconnect"}  # the app stops reading
            received += len(message.get("body", b""))
            complete = not message.get("more_body", False)
            if received > self.max_bytes:
                refusal = (413, f"the body is over {self.max_bytes} bytes")
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Any) -> None:
            if refusal is None and not faults:
                await send(message)
            elif message["type"] == "http.response.start" and refusal is not None:
                await _answer(send, *refusal, [(b"connection", b"close")])  # body not read
            elif message["type"] == "http.response.start":
                await _answer(send, 503, faults[0], [(b"retry-after", b"30")])

        handed = SERVER_FAULTS.set(faults)
        try:
            await self.app(scope, counted_receive, guarded_send)
        finally:
            SERVER_FAULTS.reset(handed)


async def _answer(
    send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class OpenAPIDocument:
    """Serves ``/docs.json`` as ``openapi_document`` completes it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/docs.json":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body: list[bytes] = []

        async def kept(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.append(message.get("body", b""))

        await self.app(scope, receive, kept)
        content = b"".join(body)
        if start.get("status") == 200:
            content = json.dumps(openapi_document(json.loads(content))).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", b"%d" % len(content)))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _plausible_id(sent: bytes | None) -> str | None:
    if sent and len(sent) <= 128 and sent.isascii() and sent.decode().isprintable():
        return sent.decode()
    return None


class RequestLog:
    """Answers every request with an ``X-Request-ID`` header (the client's when plausible,
    else BentoML's own request id, the one its log lines show), and hands each answered
    ``POST /predict`` to the prediction log: its records as the request model typed them for
    the model (``PredictRequest`` hands them over), and the response's body. No parsing, no
    writing, no waiting on the request path (prediction_log.PredictionLog.submit)."""

    def __init__(
        self, app: Any, prediction_log: PredictionLog | None = None, path: str = "/predict"
    ) -> None:
        self.app, self.path, self.prediction_log = app, path, prediction_log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _plausible_id(dict(scope["headers"]).get(b"x-request-id"))
        target = self.prediction_log
        logged = target is not None and scope["method"] == "POST" and scope["path"] == self.path
        request: list[bytes] = []
        response: list[bytes] = []
        typed: list[Any] = []
        status = 0

        async def logged_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                request.append(message.get("body", b""))
            return message

        async def tagged_send(message: Any) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                if request_id is None:
                    own = dict((k.lower(), v) for k, v in headers).get(b"x-bentoml-request-id")
                    request_id = _plausible_id(own) or uuid.uuid4().hex
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            elif logged and status == 200 and message["type"] == "http.response.body":
                response.append(message.get("body", b""))
            await send(message)

        handed = TYPED_RECORDS.set(typed) if logged else None
        try:
            await self.app(scope, logged_receive if logged else receive, tagged_send)
        finally:
            if handed is not None:
                TYPED_RECORDS.reset(handed)
        if logged and status == 200 and target is not None and request_id is not None:
            records = typed[0] if typed else None
            target.submit(b"".join(request), b"".join(response), request_id, None, records)
