"""The one error shape of the service, OpenAI style.

Every failure, whatever raised it, reaches the client as::

    {"error": {"message": "...", "type": "...", "code": "...", "param": null}}

Messages are written here, never copied from an upstream body or an exception: upstream
error text can carry keys, prompts or internal hostnames.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.core.request_context import current_request

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A failure with a status code and a message that is safe to show the client."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.param = param
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.code, self.param)

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class InvalidRequest(ServiceError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationFailed(ServiceError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class NotFound(ServiceError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class PayloadTooLarge(ServiceError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(ServiceError):
    """The upstream is rate limiting us; the client should come back after ``Retry-After``."""

    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamRejected(ServiceError):
    """The upstream refused the request itself (a 4xx other than 401/403/408/429)."""

    error_type = "invalid_request_error"
    code = "upstream_rejected_request"


class UpstreamFailed(ServiceError):
    """5xx, connection failure, broken stream or an upstream misconfiguration."""

    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"


class UpstreamTimeout(ServiceError):
    status_code = 504
    error_type = "upstream_error"
    code = "upstream_timeout"


class Unavailable(ServiceError):
    """The service cannot take this request now: breakers open, overloaded, ledger down."""

    status_code = 503
    error_type = "service_unavailable"
    code = "unavailable"


def error_body(
    message: str, error_type: str, code: str, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "code": code, "param": param}}


def error_response(error: ServiceError) -> Response:
    record = current_request.get()
    if record is not None:
        record.error_code = error.code
    return Response(
        content=json.dumps(error.body()).encode(),
        status_code=error.status_code,
        headers=error.headers(),
        media_type="application/json",
    )


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "header", "path")]
    return ".".join(parts)


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    """400 naming the first offending field; the submitted value is never repeated."""
    errors = exc.errors()
    if not errors:
        return InvalidRequest("The request is invalid.")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return InvalidRequest("The request body is not valid JSON.", code="invalid_json")
    param = _field_path(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid value"))
    if not param:
        return InvalidRequest(f"Invalid request body: {message}.")
    return InvalidRequest(f"Invalid value for '{param}': {message}.", param=param)


async def _service_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)  # noqa: S101  # registered for ServiceError only
    return error_response(exc)


async def _validation_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    return error_response(validation_error(exc))


async def _http_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    if exc.status_code == 404:
        error: ServiceError = NotFound("No such route.")
    elif exc.status_code == 405:
        error = InvalidRequest("Method not allowed.", code="method_not_allowed", status_code=405)
    elif exc.status_code < 500:
        error = InvalidRequest("The request is invalid.", status_code=exc.status_code)
    else:
        error = ServiceError("Internal error.", status_code=exc.status_code)
    return error_response(error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
