"""``POST /v1/chat/completions``: OpenAI-compatible, so any OpenAI SDK can use the service
as its base URL."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from app.api.deps import completions_of, record_of
from app.api.schemas import ChatCompletionRequest
from app.api.sse import SSE_HEADERS, sse_stream
from app.services.completion import CompletionRequest

router = APIRouter(tags=["completions"])


def cache_header(read: bool, cached: bool) -> str:
    if not read:
        return "BYPASS"
    return "HIT" if cached else "MISS"


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, http: Request) -> Response:
    service = completions_of(http)
    record = record_of()
    record.ledger = True
    cache_control = http.headers.get("cache-control")
    params = body.upstream_params()
    params["model"] = service.resolve_model(body.model)
    service.apply_defaults(params)
    read, write = service.cache_policy(params, cache_control)
    request = CompletionRequest(
        params,
        cache_read=read,
        cache_write=write,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
    )
    if body.stream:
        chunks = await service.stream(request, record)
        return StreamingResponse(
            sse_stream(chunks, record),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, "X-Cache": cache_header(read, record.cached)},
        )
    result = await service.complete(request, record)
    return Response(
        json.dumps(result.completion, ensure_ascii=False).encode(),
        media_type="application/json",
        headers={"X-Cache": cache_header(read, result.cached)},
    )
