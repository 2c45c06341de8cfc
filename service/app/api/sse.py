"""Server-sent events as OpenAI sends them: ``data: <json>`` events, then ``data: [DONE]``.

A failure after the stream has started cannot change the status code any more; it is sent
as an event ``data: {"error": {...}}`` (which OpenAI's SDKs raise as an error), without
``[DONE]``, so no client mistakes a broken answer for a complete one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from app.core.request_context import RequestRecord
from app.errors import ServiceError

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return b"data: " + payload + b"\n\n"


async def sse_stream(
    chunks: AsyncIterator[dict[str, Any]], record: RequestRecord
) -> AsyncIterator[bytes]:
    ended = False
    try:
        async for chunk in chunks:
            yield sse_event(chunk)
        ended = True
    except ServiceError as exc:
        ended = True
        record.error_code = exc.code
        yield sse_event(exc.body())
        return
    finally:
        if not ended:  # closed or cancelled from outside: the client went away
            record.error_code = record.error_code or "client_disconnected"
            # Close the source now (and with it the upstream stream), not whenever it is collected.
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
    yield DONE
