"""The record of the request being handled, shared by middleware, routes and services.

The middleware creates one ``RequestRecord`` per HTTP request and puts it in a context
variable; routes and services fill in what they learn (model, tokens, cache). When the
response has been sent, the middleware turns the record into metrics, one access log line
and, for completion routes, one ledger row.
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id(client_value: str | None = None) -> str:
    """Keep a well-formed ``X-Request-ID`` from the client, otherwise make one."""
    if client_value and _CLIENT_REQUEST_ID.match(client_value):
        return client_value
    return uuid.uuid4().hex


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    route: str = ""
    model: str = ""
    stream: bool = False
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error_code: str | None = None
    # Set by completion routes: the request gets a usage ledger row.
    ledger: bool = False


current_request: ContextVar[RequestRecord | None] = ContextVar("current_request", default=None)


def current_request_id() -> str | None:
    record = current_request.get()
    return record.request_id if record else None
