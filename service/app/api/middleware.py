"""The one middleware: request id, service keys, body limit, load shedding, metrics,
access log and ledger rows.

Pure ASGI (not ``BaseHTTPMiddleware``) so streams pass through untouched and the cost per
request stays a few microseconds. It measures a request until its last body byte, which for
a stream is the end of the stream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.request_context import RequestRecord, current_request, new_request_id
from app.errors import AuthenticationFailed, PayloadTooLarge, ServiceError, Unavailable
from app.services.ledger import LedgerRow
from app.services.upstream import model_label

if TYPE_CHECKING:
    from app.core.config import Settings
    from app.core.metrics import Metrics
    from app.services.ledger import UsageLedger

logger = logging.getLogger("app.access")

PROBE_PATHS = frozenset({"/health", "/ready", "/metrics"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings: Settings = state.settings
        metrics: Metrics = state.metrics

        request_id_header: str | None = None
        content_length: str | None = None
        authorization = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id_header = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value
        record = RequestRecord(new_request_id(request_id_header))
        token = current_request.set(record)
        request_id_bytes = record.request_id.encode()
        probe = scope["path"] in PROBE_PATHS
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id_bytes),
                ]
            await send(message)

        counted = False
        try:
            if not probe:
                # Before the body is read: unauthenticated clients get nothing parsed.
                _check_service_key(authorization, state.service_keys)
            if not probe and self._in_flight >= settings.max_in_flight:
                raise Unavailable(
                    "The service is overloaded; retry shortly.", code="overloaded", retry_after=1
                )
            # Counted before the first await, or a burst would pass the check together.
            self._in_flight += 1
            metrics.in_flight.inc()
            counted = True
            if scope["method"] in _BODY_METHODS:
                limit = settings.max_body_bytes
                declared = int(content_length) if content_length and content_length.isdigit() else 0
                if declared > limit:
                    raise _too_large(limit)
                receive = await _buffer_body(receive, limit)
            await self.app(scope, receive, send_with_id)
        except ServiceError as exc:
            if response_started:
                raise
            record.error_code = exc.code
            await _send_error(send_with_id, exc)
        except asyncio.CancelledError:
            record.error_code = record.error_code or "client_disconnected"
            status = 499 if not response_started else status
            raise
        except Exception:
            logger.exception("unhandled error")
            record.error_code = record.error_code or "internal_error"
            if response_started:
                raise
            await _send_error(send_with_id, ServiceError("Internal error."))
        finally:
            if counted:
                self._in_flight -= 1
                metrics.in_flight.dec()
            try:
                _finish(scope, record, status, state, probe=probe)
            finally:
                current_request.reset(token)


def _check_service_key(authorization: bytes, keys: tuple[bytes, ...]) -> None:
    """401 unless the request carries one of the configured service keys (if any)."""
    if not keys:
        return
    scheme, _, token = authorization.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        raise AuthenticationFailed("Missing service key: send 'Authorization: Bearer <key>'.")
    # Compare with every key, so the time taken does not tell which one nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(token, key)
    if not matched:
        raise AuthenticationFailed("Invalid service key.")


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {limit} bytes.")


async def _buffer_body(receive: Receive, limit: int) -> Receive:
    """Read the whole body (bounded), then hand it to the app as one message.

    Content-Length alone cannot enforce the limit: a chunked body has none.
    """
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the app will see the disconnect
        body: bytes = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise _too_large(limit)
        parts.append(body)
        if not message.get("more_body", False):
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": b"".join(parts), "more_body": False}
        return await receive()

    return replay


async def _send_error(send: Send, error: ServiceError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers().items()),
    ]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _finish(scope: Scope, record: RequestRecord, status: int, state: Any, *, probe: bool) -> None:
    settings: Settings = state.settings
    metrics: Metrics = state.metrics
    ledger: UsageLedger | None = getattr(state, "ledger", None)
    elapsed = time.perf_counter() - record.started
    route: Any = scope.get("route")
    route_label = getattr(route, "path", None) or "unmatched"
    model = model_label(record.model, settings.known_models) if record.model else ""
    metrics.requests.labels(route=route_label, model=model, status=str(status)).inc()
    metrics.request_duration.labels(route=route_label).observe(elapsed)
    failed = status >= 400 or record.error_code is not None
    outcome = (record.error_code or f"http_{status}") if failed else "ok"
    if not probe or failed:
        logger.info(
            "request",
            extra={
                "request_id": record.request_id,
                "method": scope["method"],
                "path": route_label,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "model": record.model or None,
                "cached": record.cached,
                "stream": record.stream,
                "outcome": outcome,
            },
        )
    if record.ledger and ledger is not None:
        ledger.record(
            LedgerRow(
                ts=dt.datetime.now(dt.UTC),
                request_id=record.request_id,
                service=settings.service_name,
                route=route_label,
                model=record.model or "unknown",
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.completion_tokens,
                latency_ms=round(elapsed * 1000, 3),
                cached=record.cached,
                stream=record.stream,
                status=outcome,
                http_status=status,
            )
        )
