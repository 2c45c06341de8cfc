"""``GET /health`` (liveness, no dependencies) and ``GET /ready`` (readiness).

Readiness does not depend on Redis, PostgreSQL or the upstream: requests still succeed
without the first two, and every replica shares the upstream, so taking pods out of the
Service would turn a degraded fleet into a dead one. ``/ready`` reports their state in its
body for humans and dashboards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from app.api.deps import get_cache, get_ledger, get_upstream
from app.services.cache import ResponseCache
from app.services.ledger import UsageLedger
from app.services.upstream import UpstreamClient

router = APIRouter(tags=["probes"])

_CHECK_TIMEOUT = 0.5


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _check(probe: Awaitable[bool]) -> str:
    try:
        return "ok" if await asyncio.wait_for(probe, timeout=_CHECK_TIMEOUT) else "unavailable"
    except TimeoutError:
        return "unavailable"


@router.get("/ready")
async def ready(
    cache: Annotated[ResponseCache, Depends(get_cache)],
    ledger: Annotated[UsageLedger, Depends(get_ledger)],
    upstream: Annotated[UpstreamClient, Depends(get_upstream)],
) -> dict[str, Any]:
    redis, database = await asyncio.gather(_check(cache.ping()), _check(ledger.ping()))
    return {
        "status": "ready",
        "checks": {
            "redis": redis,
            "database": database,
            "ledger_pending_rows": ledger.pending,
            "circuit_breakers": upstream.breaker_states(),
        },
    }
