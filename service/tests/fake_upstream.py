"""TEST FIXTURE: a fake OpenAI-compatible upstream that misbehaves on demand.

Not part of the service. It speaks ``POST /v1/chat/completions`` (JSON and server-sent
events, with the final usage chunk when ``stream_options.include_usage`` is set), counts its
calls, and follows a queue of ``Behaviour``s set by the tests: errors with or without
``Retry-After``, hanging forever, streams cut off mid-way, text split across chunks and
across UTF-8 byte boundaries.

Its error bodies deliberately repeat the API key it was given (as real upstreams sometimes
do in 401 messages), so the suite proves the service never passes them on.

Used in-process by the tests, and as a program by the benchmark and the image smoke test::

    python tests/fake_upstream.py --port 8081 [--api-key sk-test-...] [--delay-ms 0]

It needs only uvicorn (no FastAPI), so it also runs inside the service image.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["ok", "status", "hang", "cut", "eof", "truncated", "garbage"]

DEFAULT_API_KEY = "sk-test-fake-upstream-key-0123456789"


@dataclass(frozen=True)
class Behaviour:
    """What the fake does for one call.

    kind:
      ok      answer normally (JSON, or a stream when the request asks for one)
      status  answer ``status`` with an OpenAI error body (and ``retry_after`` if set)
      hang    accept the request and never answer
      cut     stream ``cut_after`` content chunks, then drop the connection mid-body
      eof     stream ``cut_after`` content chunks, then end the body cleanly, with no
              finish reason, no usage and no ``[DONE]``
      truncated  stream every content chunk and the finish reason, then end the body
              cleanly before the usage chunk and ``[DONE]``
      garbage answer 200 with a body that is not JSON (or an event that is not)
    """

    kind: Kind = "ok"
    reply: str | None = None
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    chunk_chars: int = 4
    split_bytes: int | None = None  # write the SSE body in pieces of this many bytes
    chunk_delay: float = 0.0  # stream: pause between two events
    cut_after: int = 2
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens
    finish_reason: str = "stop"
    send_usage: bool = True  # False: ignore stream_options.include_usage, as some upstreams do


@dataclass
class Call:
    body: dict[str, Any]
    authorization: str
    at: float = field(default_factory=time.monotonic)

    @property
    def model(self) -> str:
        return str(self.body.get("model"))

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


class _SimulatedCut(Exception):
    """Raised inside the ASGI app so uvicorn drops the connection mid-body."""


class FakeUpstream:
    def __init__(self, api_key: str = DEFAULT_API_KEY, default: Behaviour | None = None) -> None:
        self.api_key = api_key
        self.default = default or Behaviour()
        self.calls: list[Call] = []
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._counter = 0

    # --- control, from the tests' thread --------------------------------------------------

    def push(self, *behaviours: Behaviour) -> None:
        """Behaviours for the next calls, in order; afterwards ``default`` applies."""
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.calls.clear()
            self.default = Behaviour()

    @property
    def call_count(self) -> int:
        return len(self.calls)

    # --- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        if scope["method"] == "GET" and path.endswith("/models"):
            await _send_json(send, 200, {"object": "list", "data": [{"id": "fake-model"}]})
            return
        if scope["method"] != "POST" or not path.endswith("/chat/completions"):
            await _send_json(send, 404, _error("Unknown path.", "invalid_request_error"))
            return
        authorization = headers.get("authorization", "")
        if authorization != f"Bearer {self.api_key}":
            presented = authorization.removeprefix("Bearer ")
            await _send_json(
                send,
                401,
                _error(f"Incorrect API key provided: {presented}.", "invalid_api_key"),
            )
            return
        try:
            request = json.loads(body)
        except ValueError:
            await _send_json(send, 400, _error("Body is not JSON.", "invalid_request_error"))
            return
        with self._lock:
            self.calls.append(Call(request, authorization))
            behaviour = self._queue.popleft() if self._queue else self.default
            self._counter += 1
            number = self._counter
        await self._answer(behaviour, request, number, receive, send)

    async def _answer(
        self, b: Behaviour, request: dict[str, Any], number: int, receive: Any, send: Any
    ) -> None:
        if b.delay:
            await asyncio.sleep(b.delay)
        if b.kind == "hang":
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        if b.kind == "status":
            extra = [(b"retry-after", b.retry_after.encode())] if b.retry_after else []
            # The message repeats the key on purpose: the service must never echo it.
            error = _error(
                f"Simulated {b.status} for key {self.api_key}: internal detail db-7.corp",
                "server_error" if b.status >= 500 else "invalid_request_error",
            )
            await _send_json(send, b.status, error, extra)
            return
        if b.kind == "garbage":
            stream = bool(request.get("stream"))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream" if stream else b"application/json")
                    ],
                }
            )
            await send(
                {"type": "http.response.body", "body": b"data: {oops\n\n" if stream else b"{oops"}
            )
            return
        reply = b.reply if b.reply is not None else _echo(request)
        model = str(request.get("model"))
        usage = _usage(request, reply, b.usage)
        completion_id = f"chatcmpl-fake-{number}"
        if not request.get("stream"):
            await _send_json(
                send,
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": 1_700_000_000,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply, "refusal": None},
                            "logprobs": None,
                            "finish_reason": b.finish_reason,
                        }
                    ],
                    "usage": {
                        **usage,
                        "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
                    },
                },
            )
            return
        await self._stream(
            b,
            request,
            reply=reply,
            model=model,
            usage=usage,
            completion_id=completion_id,
            send=send,
        )

    async def _stream(
        self,
        b: Behaviour,
        request: dict[str, Any],
        *,
        reply: str,
        model: str,
        usage: dict[str, int],
        completion_id: str,
        send: Any,
    ) -> None:
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        base: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        if include_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            return _event(data)

        pieces = [reply[i : i + b.chunk_chars] for i in range(0, len(reply), b.chunk_chars)]
        events = [chunk({"role": "assistant", "content": ""})]
        if b.kind in ("cut", "eof"):
            events += [chunk({"content": p}) for p in pieces[: b.cut_after]]
        else:
            events += [chunk({"content": p}) for p in pieces]
            events.append(chunk({}, b.finish_reason))
            if b.kind == "truncated":
                pass
            elif include_usage and b.send_usage:
                total = usage["prompt_tokens"] + usage["completion_tokens"]
                events.append(
                    _event({**base, "choices": [], "usage": {**usage, "total_tokens": total}})
                )
            if b.kind != "truncated":
                events.append(b"data: [DONE]\n\n")

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        if b.split_bytes:
            raw = b"".join(events)
            events = [raw[i : i + b.split_bytes] for i in range(0, len(raw), b.split_bytes)]
        for piece in events:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            if b.chunk_delay:
                await asyncio.sleep(b.chunk_delay)
            elif b.split_bytes:
                await asyncio.sleep(0)  # separate writes, so the pieces reach the socket apart
        if b.kind == "cut":
            await asyncio.sleep(0.05)
            raise _SimulatedCut("connection dropped on purpose by the test upstream")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "param": None, "code": code}}


def _echo(request: dict[str, Any]) -> str:
    messages = request.get("messages") or [{}]
    content = messages[-1].get("content")
    return f"echo: {content}" if isinstance(content, str) else "echo"


def _usage(request: dict[str, Any], reply: str, fixed: tuple[int, int] | None) -> dict[str, int]:
    if fixed is not None:
        return {"prompt_tokens": fixed[0], "completion_tokens": fixed[1]}
    prompt_chars = sum(len(str(m.get("content", ""))) for m in request.get("messages") or [])
    return {"prompt_tokens": 7 + prompt_chars // 4, "completion_tokens": 3 + len(reply) // 4}


async def _send_json(
    send: Any, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay of every answer")
    parser.add_argument("--reply", default=None, help="fixed reply text (default: an echo)")
    args = parser.parse_args()
    fake = FakeUpstream(args.api_key, Behaviour(delay=args.delay_ms / 1000, reply=args.reply))
    uvicorn.run(
        fake,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
