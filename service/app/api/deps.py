"""What routes take from the app: everything lives on ``app.state``, set up by the lifespan.

The completion routes read ``app.state`` directly (``completions_of``) rather than through
``Depends``: FastAPI's dependency resolution costs tens of microseconds per dependency, and
those routes have a one-millisecond budget. The other routes use ``Depends``.
"""

from __future__ import annotations

from fastapi import Request

from app.core.config import Settings
from app.core.request_context import RequestRecord, current_request, new_request_id
from app.services.cache import ResponseCache
from app.services.completion import CompletionService
from app.services.ledger import UsageLedger
from app.services.upstream import UpstreamClient


def completions_of(request: Request) -> CompletionService:
    service: CompletionService = request.app.state.completions
    return service


def record_of() -> RequestRecord:
    """The record the middleware opened for this request."""
    record = current_request.get()
    if record is None:  # only when the app runs without its middleware
        record = RequestRecord(new_request_id())
        current_request.set(record)
    return record


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_ledger(request: Request) -> UsageLedger:
    ledger: UsageLedger = request.app.state.ledger
    return ledger


async def get_cache(request: Request) -> ResponseCache:
    cache: ResponseCache = request.app.state.cache
    return cache


async def get_upstream(request: Request) -> UpstreamClient:
    upstream: UpstreamClient = request.app.state.upstream
    return upstream
