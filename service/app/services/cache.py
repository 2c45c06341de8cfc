"""Answer cache in Redis.

Key: ``prompt-service:<service>:<namespace>:<sha256>`` where the hash covers a canonical
JSON form of everything that changes the answer: the service scope, the model, the messages
(after template rendering, with the template's name and version), every sampling field,
stop, seed, tools, response format and any other upstream parameter. Fields that only shape
the delivery (``stream``, ``stream_options``) or identify the caller (``user``) are left out.
Canonical means sorted keys, no whitespace, ``null`` equal to absent, ``stop: "x"`` equal to
``stop: ["x"]``: the JSON key order of a request never changes its key.

Redis failures never fail a request: the operation is counted in
``prompt_service_cache_errors_total`` and the cache is bypassed for ``redis_retry_seconds``
(``prompt_service_cache_bypassed_total{reason="redis_unavailable"}``), so a dead Redis costs
one failed call per interval, not one timeout per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.config import Settings
from app.core.metrics import Metrics

logger = logging.getLogger(__name__)

# Not part of the answer: how it is delivered, and who asked.
DELIVERY_FIELDS = frozenset({"stream", "stream_options", "user", "safety_identifier"})

_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def cache_key(scope: dict[str, str], params: dict[str, Any]) -> str:
    """Cache key for upstream ``params`` (model included) within ``scope``."""
    material = {k: v for k, v in params.items() if k not in DELIVERY_FIELDS}
    stop = material.get("stop")
    if isinstance(stop, str):
        material["stop"] = [stop]
    document = json.dumps(
        {"scope": scope, "request": _canonical(material)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256(document.encode()).hexdigest()
    return f"prompt-service:{scope['service']}:{scope['namespace']}:{digest}"


def make_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=30,
        # Retrying here would multiply the latency a dead Redis costs each request.
        retry_on_timeout=False,
        retry=None,
    )


class ResponseCache:
    def __init__(self, redis: Redis, settings: Settings, metrics: Metrics) -> None:
        self._redis = redis
        self._settings = settings
        self._metrics = metrics
        self._scope = {"service": settings.service_name, "namespace": settings.cache_namespace}
        self._skip_until = 0.0

    def key(self, params: dict[str, Any], extra_scope: dict[str, str] | None = None) -> str:
        scope = {**self._scope, **extra_scope} if extra_scope else self._scope
        return cache_key(scope, params)

    @property
    def available(self) -> bool:
        """False while Redis is being skipped after a failure."""
        return time.monotonic() >= self._skip_until

    def _failed(self, operation: str, exc: BaseException) -> None:
        self._metrics.cache_errors.labels(operation=operation).inc()
        if self.available:
            logger.warning(
                "redis unavailable, bypassing the cache",
                extra={"operation": operation, "error": type(exc).__name__},
            )
        self._skip_until = time.monotonic() + self._settings.redis_retry_seconds

    def bypass(self, reason: str) -> None:
        self._metrics.cache_bypassed.labels(reason=reason).inc()

    async def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer, or None on a miss or when Redis is unavailable."""
        if not self.available:
            self.bypass("redis_unavailable")
            return None
        try:
            raw = await self._redis.get(key)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("get", exc)
            return None
        if raw is None:
            self._metrics.cache_misses.inc()
            return None
        value = self._decode(raw)
        if value is not None:
            self._metrics.cache_hits.inc()
        return value

    def _decode(self, raw: bytes | str) -> dict[str, Any] | None:
        """A stored answer, or None (counted as a decode error) for anything else: an entry
        of an older version or a damaged one is a miss, never a failed request."""
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if (
            isinstance(value, dict)
            and isinstance(value.get("model"), str)
            and isinstance(value.get("completion"), dict)
            and isinstance(value["completion"].get("choices"), list)
        ):
            return value
        self._metrics.cache_errors.labels(operation="decode").inc()
        return None

    async def set(self, key: str, value: dict[str, Any]) -> None:
        if not self.available:
            return
        raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        if len(raw) > self._settings.cache_max_entry_bytes:
            return
        try:
            await self._redis.set(key, raw, ex=self._settings.cache_ttl_seconds)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("set", exc)

    async def try_lock(self, key: str) -> str | None:
        """Take the cross-replica fill lock of ``key``: a token when taken, None when not.

        When Redis is unavailable or locking is off, the caller proceeds as if it held the
        lock (returns an empty token): the cache must never block a request.
        """
        if self._settings.cache_lock_seconds <= 0 or not self.available:
            return ""
        token = secrets.token_hex(8)
        try:
            taken = await self._redis.set(
                f"{key}:lock", token, nx=True, px=int(self._settings.cache_lock_seconds * 1000)
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("lock", exc)
            return ""
        return token if taken else None

    async def unlock(self, key: str, token: str) -> None:
        if not token or not self.available:
            return
        try:
            await self._redis.eval(_RELEASE_LOCK, 1, f"{key}:lock", token)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("unlock", exc)

    async def wait_for(self, key: str, deadline: float) -> tuple[dict[str, Any] | None, str]:
        """Wait while another replica fills ``key``.

        Returns the answer once it appears, or a lock token once the other replica gave up
        (its lock expired or was released) and this one should call the upstream itself.
        """
        delay = 0.02
        lock_ends = time.monotonic() + self._settings.cache_lock_seconds
        while time.monotonic() < min(deadline, lock_ends):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
            if not self.available:
                return None, ""
            try:
                raw = await self._redis.get(key)
            except (RedisError, OSError, TimeoutError) as exc:
                self._failed("get", exc)
                return None, ""
            if raw is not None:
                value = self._decode(raw)
                if value is not None:
                    self._metrics.cache_hits.inc()
                    return value, ""
            token = await self.try_lock(key)
            if token is not None:
                return None, token
        return None, ""

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False
