"""``POST /v1/generate`` (prompt or template) and the seed's ``POST /generate``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from app.api.deps import completions_of, record_of
from app.api.routes.chat import cache_header
from app.api.schemas import (
    GenerateRequest,
    GenerateResponse,
    LegacyGenerateRequest,
    LegacyGenerateResponse,
)
from app.api.sse import SSE_HEADERS, sse_stream
from app.core.request_context import RequestRecord
from app.errors import InvalidRequest
from app.services.completion import CompletionRequest, CompletionService
from app.services.templates import TemplateStore

router = APIRouter(tags=["completions"])


def _json(data: dict[str, Any]) -> Response:
    return Response(json.dumps(data, ensure_ascii=False).encode(), media_type="application/json")


def _text(completion: dict[str, Any]) -> tuple[str, str | None]:
    choices = completion.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return message.get("content") or "", choices[0].get("finish_reason")


def _usage(record: RequestRecord) -> dict[str, int]:
    return {
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "total_tokens": record.prompt_tokens + record.completion_tokens,
    }


def _build(
    body: GenerateRequest, service: CompletionService, templates: TemplateStore
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """Upstream parameters and extra cache-key scope for a /v1/generate body."""
    if (body.prompt is None) == (body.template is None):
        raise InvalidRequest("Send either 'prompt' or 'template', not both.", param="prompt")
    if body.prompt is not None:
        if body.variables:
            raise InvalidRequest("'variables' needs a 'template'.", param="variables")
        messages = [{"role": "user", "content": body.prompt}]
        if body.system is not None:
            messages.insert(0, {"role": "system", "content": body.system})
        params: dict[str, Any] = {"messages": messages}
        params["model"] = service.resolve_model(body.model)
        key_scope = None
    else:
        if body.system is not None:
            raise InvalidRequest("A template brings its own messages.", param="system")
        template = templates.get(body.template or "")
        params = {
            "messages": template.render(body.variables),
            **template.parameters.model_dump(exclude_none=True),
        }
        params["model"] = service.resolve_model(body.model, template.model)
        key_scope = {"template": template.name, "template_version": template.version}
    params.update(body.sampling())
    if body.response_format is not None:
        params["response_format"] = body.response_format
    service.apply_defaults(params)
    return params, key_scope


@router.post("/v1/generate", response_model=GenerateResponse)
async def generate(body: GenerateRequest, http: Request) -> Response:
    """Text for a prompt or a template. With ``stream: true``, server-sent events
    ``{"id", "text"}`` per piece, then one with ``"done": true`` and the usage, then
    ``[DONE]``."""
    service = completions_of(http)
    record = record_of()
    record.ledger = True
    params, key_scope = _build(body, service, http.app.state.templates)
    read, write = service.cache_policy(params, http.headers.get("cache-control"))
    request = CompletionRequest(
        params, cache_read=read, cache_write=write, key_scope=key_scope, include_usage=True
    )
    if body.stream:
        chunks = await service.stream(request, record)
        return StreamingResponse(
            sse_stream(_generate_events(chunks, record), record),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, "X-Cache": cache_header(read, record.cached)},
        )
    result = await service.complete(request, record)
    text, finish_reason = _text(result.completion)
    response = _json(
        {
            "id": record.request_id,
            "text": text,
            "model": result.model,
            "usage": _usage(record),
            "cached": result.cached,
            "finish_reason": finish_reason,
        }
    )
    response.headers["X-Cache"] = cache_header(read, result.cached)
    return response


async def _generate_events(
    chunks: AsyncIterator[dict[str, Any]], record: RequestRecord
) -> AsyncIterator[dict[str, Any]]:
    """The events of a streamed /v1/generate: the text as it comes, then one final event with
    the answer's facts. sse_stream turns them into SSE and handles failures and disconnects."""
    finish_reason: str | None = None
    async for chunk in chunks:
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield {"id": record.request_id, "text": text}
            finish_reason = choice.get("finish_reason") or finish_reason
    yield {
        "id": record.request_id,
        "text": "",
        "done": True,
        "model": record.model,
        "usage": _usage(record),
        "cached": record.cached,
        "finish_reason": finish_reason,
    }


@router.post("/generate", response_model=LegacyGenerateResponse, deprecated=True)
async def legacy_generate(body: LegacyGenerateRequest, http: Request) -> Response:
    """The seed's endpoint: ``{"prompt", "max_tokens"}`` in, ``{"response"}`` out."""
    service = completions_of(http)
    record = record_of()
    record.ledger = True
    params: dict[str, Any] = {
        "messages": [{"role": "user", "content": body.prompt}],
        "model": service.resolve_model(None),
    }
    if body.max_tokens is not None:
        params["max_tokens"] = body.max_tokens
    service.apply_defaults(params)
    read, write = service.cache_policy(params, http.headers.get("cache-control"))
    result = await service.complete(
        CompletionRequest(params, cache_read=read, cache_write=write), record
    )
    return _json({"response": _text(result.completion)[0]})
