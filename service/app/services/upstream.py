"""Calls to the OpenAI-compatible upstream, with this service's retry policy.

The SDK's own retries are off (``max_retries=0``): its policy retries 409 and waits out any
``Retry-After``, and its default timeout is ten minutes. Here:

* retry only 408, 429, 5xx, connection errors and timeouts, never another 4xx;
* wait out ``Retry-After`` only up to ``upstream_retry_after_max_seconds``;
* otherwise back off exponentially with full jitter;
* after the retries of one model, go to the next fallback model;
* one circuit breaker per model; an open one is skipped without a call;
* one deadline for all of it: past ``upstream_timeout_seconds`` the client gets 504.

A stream is retried only until its first chunk: after that, output has reached the client.
Exceptions raised from here are ``ServiceError``s whose messages are ours: upstream error
bodies and exception texts are never passed on (``from None`` also keeps them out of
tracebacks).

How the SDK is used: ``AsyncOpenAI`` on the SDK's aiohttp transport, and its public generic
``client.post("/chat/completions", cast_to=object, ...)``: the same request, auth, base URL,
timeouts, error classes and SSE decoding as ``client.chat.completions.create``, without the
two steps a proxy does not need: walking every parameter through the SDK's TypedDict
transformer (our parameters are plain JSON already) and building pydantic models of the
answer that we would turn straight back into JSON. Measured per call (p50, 2 cores,
loopback, uvloop, idle machine): a bare aiohttp request 0.78 ms, this path 2.2-2.4 ms,
``create`` 3.6-3.8 ms. The SDK is still most of the latency the service adds (see the
benchmark in the README). This path also passes vendor-specific fields of
OpenAI-compatible upstreams through untouched.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
import openai
from openai import AsyncOpenAI, AsyncStream, DefaultAioHttpClient

from app.core.config import Settings
from app.core.metrics import Metrics
from app.errors import (
    RateLimited,
    ServiceError,
    Unavailable,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamTimeout,
)
from app.services.breaker import BreakerState, CircuitBreaker

logger = logging.getLogger(__name__)

T = TypeVar("T")

PATH = "/chat/completions"

OTHER_MODEL = "other"
# For errors we raise ourselves about an answer that arrived but is unusable.
_NO_REQUEST = httpx2.Request("POST", "http://upstream" + PATH)


def model_label(model: str, known: frozenset[str]) -> str:
    """Model as a metric label: configured models by name, anything a client made up as 'other'."""
    return model if model in known else OTHER_MODEL


@dataclass(frozen=True, slots=True)
class _Failure:
    kind: str  # timeout | connection | server_error | rate_limited | rejected | auth | protocol
    status: int | None = None
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        return self.kind in {"timeout", "connection", "server_error", "rate_limited", "protocol"}

    @property
    def breaker_failure(self) -> bool:
        return self.kind in {"timeout", "connection", "server_error", "protocol"}


def parse_retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _timed_out(exc: BaseException) -> bool:
    """Did the innermost cause time out? The aiohttp transport maps some connection errors
    (refused, server disconnected) to ``ConnectTimeout``, so the SDK's class is not enough."""
    innermost = exc
    while innermost.__cause__ is not None:
        innermost = innermost.__cause__
    if innermost is exc:  # no cause recorded: trust the SDK
        return isinstance(exc, openai.APITimeoutError)
    return isinstance(innermost, TimeoutError | httpx2.TimeoutException)


def _classify(exc: openai.APIError) -> _Failure:
    if isinstance(exc, openai.APIConnectionError):
        return _Failure("timeout" if _timed_out(exc) else "connection")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return _Failure("rate_limited", status, parse_retry_after(exc.response.headers))
        if status >= 500 or status == 408:
            return _Failure("server_error", status)
        if status in (401, 403):
            return _Failure("auth", status)
        return _Failure("rejected", status)
    # An error event inside a stream, or an answer the SDK could not read.
    return _Failure("protocol")


def _to_service_error(failure: _Failure) -> ServiceError:
    if failure.kind == "timeout":
        return UpstreamTimeout("The upstream did not answer in time.")
    if failure.kind == "rate_limited":
        return RateLimited(
            "The upstream is rate limiting requests; retry later.",
            retry_after=failure.retry_after if failure.retry_after is not None else 1.0,
        )
    if failure.kind == "rejected":
        return UpstreamRejected(
            f"The upstream rejected the request (HTTP {failure.status}).",
            status_code=failure.status or 400,
        )
    if failure.kind == "auth":
        return UpstreamFailed(
            "The service is not authorised by its upstream.", code="upstream_auth_error"
        )
    if failure.kind == "connection":
        return UpstreamFailed("The upstream could not be reached.", code="upstream_unreachable")
    return UpstreamFailed("The upstream failed to answer.")


@dataclass(slots=True)
class UpstreamAnswer:
    completion: dict[str, Any]
    model: str  # the model we asked for (the requested one or a fallback)


class UpstreamStream:
    """An upstream stream whose first chunk has arrived. Iterate it once, or close it."""

    def __init__(
        self,
        model: str,
        first: dict[str, Any],
        source: AsyncStream[dict[str, Any]],
        breaker: CircuitBreaker,
    ) -> None:
        self.model = model
        self._first = first
        self._source = source
        self._breaker = breaker

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        yield self._first
        try:
            async for chunk in self._source:
                yield chunk
        except (openai.APIError, ValueError) as exc:
            self._breaker.record_failure()
            kind = _classify(exc).kind if isinstance(exc, openai.APIError) else "protocol"
            logger.warning(
                "upstream stream broke off", extra={"model": self.model, "failure": kind}
            )
            raise UpstreamFailed(
                "The upstream stream broke off.", code="upstream_stream_interrupted"
            ) from None
        finally:
            await self._source.close()

    async def aclose(self) -> None:
        await self._source.close()


class UpstreamClient:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._sleep = sleep
        self._known = settings.known_models
        self._breakers: dict[str, CircuitBreaker] = {}
        timeout = httpx2.Timeout(
            connect=settings.upstream_connect_timeout_seconds,
            read=settings.upstream_read_timeout_seconds,
            write=settings.upstream_read_timeout_seconds,
            pool=settings.upstream_connect_timeout_seconds,
        )
        limits = httpx2.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
            keepalive_expiry=30.0,
        )
        self._client = AsyncOpenAI(
            api_key=settings.upstream_api_key.get_secret_value(),
            base_url=settings.upstream_base_url,
            timeout=timeout,
            max_retries=0,
            http_client=DefaultAioHttpClient(timeout=timeout, limits=limits),
        )

    async def aclose(self) -> None:
        await self._client.close()

    def breaker_states(self) -> dict[str, str]:
        return {model: b.state.name.lower() for model, b in self._breakers.items()}

    def _breaker(self, model: str) -> CircuitBreaker:
        label = model_label(model, self._known)
        breaker = self._breakers.get(label)
        if breaker is None:
            gauge = self._metrics.breaker_state.labels(model=label)
            gauge.set(BreakerState.CLOSED)
            breaker = CircuitBreaker(
                self._settings.breaker_failure_threshold,
                self._settings.breaker_open_seconds,
                on_change=gauge.set,
            )
            self._breakers[label] = breaker
        return breaker

    def _models(self, requested: str) -> list[str]:
        return [requested, *(m for m in self._settings.fallback_models if m != requested)]

    async def complete(self, params: dict[str, Any], deadline: float) -> UpstreamAnswer:
        async def attempt(model: str) -> UpstreamAnswer:
            try:
                completion = await self._client.post(
                    PATH, body={**params, "model": model}, cast_to=object
                )
            except ValueError:  # a 200 whose body is not JSON
                raise openai.APIError("answer is not JSON", _NO_REQUEST, body=None) from None
            if not isinstance(completion, dict) or not completion.get("choices"):
                raise openai.APIError("not a chat completion", _NO_REQUEST, body=None)
            return UpstreamAnswer(completion, model)

        return await self._run(params["model"], deadline, attempt)

    async def stream(self, params: dict[str, Any], deadline: float) -> UpstreamStream:
        async def attempt(model: str) -> UpstreamStream:
            source = await self._client.post(
                PATH,
                body={
                    **params,
                    "model": model,
                    "stream": True,
                    # Always: the ledger counts the upstream's final usage, never chunks.
                    "stream_options": {"include_usage": True},
                },
                cast_to=object,
                stream=True,
                stream_cls=AsyncStream[dict[str, Any]],
            )
            try:
                first = await source.__anext__()
                if not isinstance(first, dict):
                    raise ValueError("chunk is not an object")
            except ValueError:
                await source.close()
                raise openai.APIError("chunk is not JSON", _NO_REQUEST, body=None) from None
            except StopAsyncIteration:
                await source.close()
                raise openai.APIError("empty stream", _NO_REQUEST, body=None) from None
            except BaseException:
                await source.close()
                raise
            return UpstreamStream(model, first, source, self._breaker(model))

        return await self._run(params["model"], deadline, attempt)

    async def _run(
        self, requested: str, deadline: float, attempt: Callable[[str], Awaitable[T]]
    ) -> T:
        settings = self._settings
        models = self._models(requested)
        last_failure: _Failure | None = None
        earliest_probe: float | None = None
        for index, model in enumerate(models):
            label = model_label(model, self._known)
            if index > 0:
                self._metrics.fallbacks.labels(
                    from_model=model_label(models[index - 1], self._known), to_model=label
                ).inc()
            breaker = self._breaker(model)
            for retry in range(settings.upstream_max_retries + 1):
                if not breaker.allow():
                    wait = breaker.retry_after()
                    earliest_probe = wait if earliest_probe is None else min(earliest_probe, wait)
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    breaker.release()
                    raise UpstreamTimeout("The upstream did not answer in time.")
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(remaining):
                        result = await attempt(model)
                except TimeoutError:
                    breaker.record_failure()
                    self._observe(label, "deadline", started)
                    logger.warning("upstream deadline exceeded", extra={"model": model})
                    raise UpstreamTimeout("The upstream did not answer in time.") from None
                except openai.APIError as exc:
                    failure = _classify(exc)
                    self._observe(label, failure.kind, started)
                    if failure.breaker_failure:
                        breaker.record_failure()
                    else:
                        breaker.record_success()
                    logger.warning(
                        "upstream attempt failed",
                        extra={
                            "model": model,
                            "failure": failure.kind,
                            "upstream_status": failure.status,
                            "attempt": retry + 1,
                        },
                    )
                    if not failure.retryable:
                        raise _to_service_error(failure) from None
                    last_failure = failure
                    delay = self._delay(failure, retry)
                except BaseException:
                    breaker.release()
                    raise
                else:
                    breaker.record_success()
                    self._observe(label, "ok", started)
                    return result

                if (
                    retry == settings.upstream_max_retries
                    or delay is None
                    or time.monotonic() + delay >= deadline
                ):
                    break
                self._metrics.retries.labels(model=label, reason=last_failure.kind).inc()
                await self._sleep(delay)

        if last_failure is not None:
            raise _to_service_error(last_failure)
        raise Unavailable(
            "The upstream is failing; its circuit breaker is open.",
            code="upstream_circuit_open",
            retry_after=earliest_probe if earliest_probe else 1.0,
        )

    def _delay(self, failure: _Failure, retry: int) -> float | None:
        """Seconds to wait before retrying, or None when this model should not be retried."""
        settings = self._settings
        if failure.kind == "rate_limited" and failure.retry_after is not None:
            if failure.retry_after > settings.upstream_retry_after_max_seconds:
                return None
            return failure.retry_after
        ceiling = min(
            settings.upstream_retry_backoff_max_seconds,
            settings.upstream_retry_backoff_seconds * (2**retry),
        )
        return random.uniform(0, ceiling)  # noqa: S311  # jitter, not cryptography

    def _observe(self, model: str, outcome: str, started: float) -> None:
        self._metrics.upstream_duration.labels(model=model, outcome=outcome).observe(
            time.perf_counter() - started
        )
