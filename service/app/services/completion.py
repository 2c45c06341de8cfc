"""Answering one completion request: cache, coalescing, upstream, token accounting.

Cache policy (documented in the README):

* ``cache_mode=deterministic`` (default): requests with ``temperature`` 0 are cached;
  any other temperature (or none, which upstreams treat as 1) asks for a fresh sample.
* ``cache_mode=always``: every request is cached. ``off``: nothing is.
* ``Cache-Control: no-cache``: do not answer from the cache, but store the fresh answer
  (if policy allows). ``Cache-Control: no-store``: neither read nor write.
* Only complete answers of the requested model are stored: no errors, no answers cut short
  or filtered, no answers of a fallback model (a degraded answer must not outlive the
  outage).

Identical concurrent misses share one upstream call: within a replica through an in-memory
future, across replicas through a short Redis lock (``cache_lock_seconds``) while the others
poll the cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.core.config import CacheMode, Settings
from app.core.metrics import Metrics
from app.core.request_context import RequestRecord
from app.errors import InvalidRequest, ServiceError, UpstreamFailed
from app.services.cache import ResponseCache
from app.services.streaming import StreamAssembler, is_cacheable, replay_chunks, usage_tokens
from app.services.upstream import UpstreamClient, UpstreamStream, model_label

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class CompletionRequest:
    params: dict[str, Any]  # upstream parameters, ``model`` resolved, no ``stream`` fields
    cache_read: bool
    cache_write: bool
    # Extra key material: the template's name and version, when one was rendered.
    key_scope: dict[str, str] | None = None
    include_usage: bool = False  # a stream: the client asked for the usage chunk

    @property
    def model(self) -> str:
        model: str = self.params["model"]
        return model


@dataclass(slots=True)
class CompletionResult:
    completion: dict[str, Any]
    model: str  # the model that answered: requested or fallback
    cached: bool


@dataclass(slots=True)
class _Stored:
    completion: dict[str, Any]
    model: str


class _LeaderGone(Exception):
    """The request we were waiting on ended without an answer (e.g. its client left)."""


class _Flights:
    """In-replica coalescing of identical cache misses."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[_Stored]] = {}

    def join(self, key: str) -> asyncio.Future[_Stored] | None:
        """None: the caller leads and must ``land`` the key. Else: the leader's future."""
        future = self._futures.get(key)
        if future is None:
            self._futures[key] = asyncio.get_running_loop().create_future()
        return future

    async def wait(
        self, key: str, future: asyncio.Future[_Stored], deadline: float
    ) -> _Stored | None:
        """The leader's answer; None when the caller should answer by itself. The leader's
        ServiceError is raised. Bounded by ``deadline``: a leader whose stream was never
        consumed (its client left before the first byte) must not hold the others."""
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                return await asyncio.shield(future)
        except _LeaderGone:
            return None
        except TimeoutError:
            if self._futures.get(key) is future:
                del self._futures[key]
            return None

    def land(self, key: str, result: _Stored | BaseException) -> None:
        future = self._futures.pop(key, None)
        if future is None or future.done():
            return
        if isinstance(result, _Stored):
            future.set_result(result)
        else:
            error = result if isinstance(result, ServiceError) else _LeaderGone()
            future.set_exception(error)
            # Nobody may be waiting: mark the exception as retrieved to keep the log quiet.
            future.exception()


async def _iterate(chunks: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for chunk in chunks:
        yield chunk


def parse_cache_control(header: str | None) -> frozenset[str]:
    if not header:
        return frozenset()
    return frozenset(part.strip().split("=", 1)[0].lower() for part in header.split(","))


class CompletionService:
    def __init__(
        self,
        settings: Settings,
        upstream: UpstreamClient,
        cache: ResponseCache,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._upstream = upstream
        self._cache = cache
        self._metrics = metrics
        self._flights = _Flights()
        self._known = settings.known_models
        self._background: set[asyncio.Task[None]] = set()

    def resolve_model(self, requested: str | None, template_model: str | None = None) -> str:
        model = requested or template_model or self._settings.default_model
        allowed = self._settings.allowed_models
        if allowed and model not in allowed:
            raise InvalidRequest(
                "This model is not available on this service.",
                param="model",
                code="model_not_allowed",
            )
        return model

    def apply_defaults(self, params: dict[str, Any]) -> None:
        """The service's sampling defaults, for requests that set none."""
        settings = self._settings
        if (
            settings.default_max_tokens is not None
            and "max_tokens" not in params
            and "max_completion_tokens" not in params
        ):
            params["max_tokens"] = settings.default_max_tokens
        if settings.default_temperature is not None and "temperature" not in params:
            params["temperature"] = settings.default_temperature

    def cache_policy(self, params: dict[str, Any], cache_control: str | None) -> tuple[bool, bool]:
        """(read, write) for this request; counts the bypass when the cache is skipped."""
        mode = self._settings.cache_mode
        by_policy = mode is CacheMode.ALWAYS or (
            mode is CacheMode.DETERMINISTIC and params.get("temperature") == 0
        )
        directives = parse_cache_control(cache_control)
        if "no-store" in directives:
            self._cache.bypass("no-store")
            return False, False
        if not by_policy:
            self._cache.bypass("policy")
            return False, False
        if "no-cache" in directives:
            self._cache.bypass("no-cache")
            return False, True
        return True, True

    # --- non-streaming ---------------------------------------------------------------------

    async def complete(self, request: CompletionRequest, record: RequestRecord) -> CompletionResult:
        record.model = request.model
        deadline = time.monotonic() + self._settings.upstream_timeout_seconds
        if not (request.cache_read or request.cache_write):
            return self._account(await self._call(request, deadline), record, cached=False)
        key = self._cache.key(request.params, request.key_scope)
        if not request.cache_read:
            stored = await self._call(request, deadline)
            await self._store(key, request, stored)
            return self._account(stored, record, cached=False)

        hit = await self._lookup(key)
        if hit is not None:
            return self._account(hit, record, cached=True)
        leader = self._flights.join(key)
        if leader is not None:
            shared = await self._flights.wait(key, leader, deadline)
            if shared is not None:
                self._metrics.coalesced.inc()
                return self._account(shared, record, cached=True)
            stored = await self._call(request, deadline)
            await self._store(key, request, stored)
            return self._account(stored, record, cached=False)
        try:
            stored, cached = await self._fill(key, request, deadline)
        except BaseException as exc:
            self._flights.land(key, exc)
            raise
        self._flights.land(key, stored)
        return self._account(stored, record, cached=cached)

    async def _fill(
        self, key: str, request: CompletionRequest, deadline: float
    ) -> tuple[_Stored, bool]:
        token = await self._cache.try_lock(key)
        if token is None:  # another replica is calling the upstream for this key
            value, token = await self._cache.wait_for(key, deadline)
            if value is not None:
                self._metrics.coalesced.inc()
                return _Stored(value["completion"], value["model"]), True
        try:
            stored = await self._call(request, deadline)
            await self._store(key, request, stored)
        finally:
            if token:
                await self._cache.unlock(key, token)
        return stored, False

    async def _call(self, request: CompletionRequest, deadline: float) -> _Stored:
        answer = await self._upstream.complete(request.params, deadline)
        self._count_tokens(answer.model, answer.completion)
        return _Stored(answer.completion, answer.model)

    # --- streaming -------------------------------------------------------------------------

    async def stream(
        self, request: CompletionRequest, record: RequestRecord
    ) -> AsyncIterator[dict[str, Any]]:
        """Chunks of the answer. Failures before the first chunk raise here, so the route can
        still answer with an HTTP error; later ones are raised while iterating."""
        record.model = request.model
        record.stream = True
        deadline = time.monotonic() + self._settings.upstream_timeout_seconds
        if not (request.cache_read or request.cache_write):
            upstream = await self._upstream.stream(request.params, deadline)
            return self._relay(upstream, request, record, key=None, token="")
        key = self._cache.key(request.params, request.key_scope)
        if not request.cache_read:
            upstream = await self._upstream.stream(request.params, deadline)
            return self._relay(upstream, request, record, key=key, token="")

        hit = await self._lookup(key)
        if hit is not None:
            return self._replay(hit, request, record)
        leader = self._flights.join(key)
        if leader is not None:
            shared = await self._flights.wait(key, leader, deadline)
            if shared is not None:
                self._metrics.coalesced.inc()
                return self._replay(shared, request, record)
            upstream = await self._upstream.stream(request.params, deadline)
            return self._relay(upstream, request, record, key=key, token="")
        try:
            token = await self._cache.try_lock(key)
            if token is None:
                value, token = await self._cache.wait_for(key, deadline)
                if value is not None:
                    self._metrics.coalesced.inc()
                    stored = _Stored(value["completion"], value["model"])
                    self._flights.land(key, stored)
                    return self._replay(stored, request, record)
            try:
                upstream = await self._upstream.stream(request.params, deadline)
            except BaseException:
                if token:
                    await self._cache.unlock(key, token)
                raise
        except BaseException as exc:
            self._flights.land(key, exc)
            raise
        return self._relay(upstream, request, record, key=key, token=token, leader=True)

    def _replay(
        self, stored: _Stored, request: CompletionRequest, record: RequestRecord
    ) -> AsyncIterator[dict[str, Any]]:
        self._account(stored, record, cached=True)
        return _iterate(replay_chunks(stored.completion, include_usage=request.include_usage))

    async def _relay(
        self,
        upstream: UpstreamStream,
        request: CompletionRequest,
        record: RequestRecord,
        *,
        key: str | None,
        token: str,
        leader: bool = False,
    ) -> AsyncIterator[dict[str, Any]]:
        record.model = upstream.model
        assembler = StreamAssembler()
        outcome: _Stored | BaseException = _LeaderGone()
        try:
            async for chunk in upstream.chunks():
                assembler.add(chunk)
                if not request.include_usage:
                    if not chunk.get("choices") and chunk.get("usage"):
                        continue  # we asked for usage for the ledger, the client did not
                    chunk.pop("usage", None)
                yield chunk
            # The SDK ends a stream at [DONE] and at a clean end of the body alike; the usage
            # chunk, which comes last and which the service always asks for, tells them apart.
            complete = assembler.finished and (
                assembler.usage is not None or not self._settings.upstream_stream_usage_required
            )
            if not complete:
                logger.warning("upstream stream ended early", extra={"model": upstream.model})
                raise UpstreamFailed(
                    "The upstream stream ended before the answer was complete.",
                    code="upstream_stream_interrupted",
                )
            completion = assembler.completion()
            stored = _Stored(completion, upstream.model)
            # Tokens come from the upstream's final usage chunk, never from counting chunks.
            self._count_tokens(upstream.model, completion)
            self._account(stored, record, cached=False)
            if key is not None and request.cache_write:
                await self._store(key, request, stored)
            outcome = stored
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            if leader and key is not None:
                self._flights.land(key, outcome)
            if token and key is not None:
                self._spawn(self._cache.unlock(key, token))
            await upstream.aclose()

    # --- shared ----------------------------------------------------------------------------

    async def _lookup(self, key: str) -> _Stored | None:
        value = await self._cache.get(key)
        if value is None:
            return None
        return _Stored(value["completion"], value["model"])

    async def _store(self, key: str, request: CompletionRequest, stored: _Stored) -> None:
        if (
            request.cache_write
            and stored.model == request.model
            and is_cacheable(stored.completion)
        ):
            await self._cache.set(key, {"completion": stored.completion, "model": stored.model})

    def _count_tokens(self, model: str, completion: dict[str, Any]) -> None:
        label = model_label(model, self._known)
        tokens = usage_tokens(completion)
        if tokens is None:
            self._metrics.usage_missing.labels(model=label).inc()
            return
        self._metrics.tokens.labels(model=label, kind="prompt").inc(tokens[0])
        self._metrics.tokens.labels(model=label, kind="completion").inc(tokens[1])

    def _account(self, stored: _Stored, record: RequestRecord, *, cached: bool) -> CompletionResult:
        record.model = stored.model
        record.cached = cached
        tokens = usage_tokens(stored.completion)
        if tokens is not None:
            record.prompt_tokens, record.completion_tokens = tokens
        return CompletionResult(stored.completion, stored.model, cached)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
