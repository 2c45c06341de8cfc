"""``GET /metrics``: Prometheus exposition of this app's registry."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.core.metrics import Metrics

router = APIRouter(tags=["probes"])


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    body, content_type = registry.exposition()
    return Response(body, media_type=content_type)
