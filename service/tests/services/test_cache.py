"""Cache keys, cache policy, coalescing of identical misses, and Redis outages."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import redis

from app.services.cache import cache_key
from tests.conftest import MakeService, RunningService, parse_sse, stream_text, user
from tests.fake_upstream import Behaviour, FakeUpstream
from tests.servers import RedisServer

SCOPE = {"service": "svc", "namespace": "v1"}


def key(params: dict[str, Any], scope: dict[str, str] = SCOPE) -> str:
    return cache_key(scope, params)


# --- the key -----------------------------------------------------------------------------


def test_key_ignores_json_key_order_at_every_depth() -> None:
    one = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"a": 1, "b": 2}],
    }
    two = {
        "tools": [{"b": 2, "a": 1}],
        "messages": [{"content": "x", "role": "user"}],
        "model": "m",
    }

    assert key(one) == key(two)


def test_key_treats_null_as_absent_and_a_single_stop_as_a_list() -> None:
    assert key({"model": "m", "seed": None}) == key({"model": "m"})
    assert key({"model": "m", "stop": "x"}) == key({"model": "m", "stop": ["x"]})


def test_key_ignores_delivery_and_caller_fields() -> None:
    base = {"model": "m", "messages": []}

    assert key(base) == key({**base, "stream": True, "stream_options": {"include_usage": True}})
    assert key(base) == key({**base, "user": "alice"})


@pytest.mark.parametrize(
    "change",
    [
        {"model": "other"},
        {"messages": [{"role": "user", "content": "y"}]},
        {"temperature": 0.5},
        {"top_p": 0.9},
        {"max_tokens": 5},
        {"stop": ["z"]},
        {"seed": 3},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"tool_choice": "none"},
        {"response_format": {"type": "json_object"}},
        {"logit_bias": {"42": 1}},
        {"n": 2},
        {"vendor_field": 1},
    ],
)
def test_key_changes_with_every_parameter_that_changes_the_answer(change: dict[str, Any]) -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0}

    assert key(base) != key({**base, **change})


def test_key_is_scoped_to_the_service_namespace_and_template_version() -> None:
    params = {"model": "m"}

    keys = {
        key(params),
        key(params, {"service": "other", "namespace": "v1"}),
        key(params, {"service": "svc", "namespace": "v2"}),
        key(params, {**SCOPE, "template": "t", "template_version": "1"}),
        key(params, {**SCOPE, "template": "t", "template_version": "2"}),
    }

    assert len(keys) == 5
    assert key(params).startswith("prompt-service:svc:v1:")


# --- policy --------------------------------------------------------------------------------


def test_default_policy_caches_only_temperature_zero(
    service: RunningService, upstream: FakeUpstream
) -> None:
    for _ in range(2):
        service.chat(model="model-a", messages=user("warm"), temperature=0.7)
        service.chat(model="model-a", messages=user("unset"))
        service.chat(model="model-a", messages=user("cold"), temperature=0)

    assert upstream.call_count == 5
    assert service.metric("prompt_service_cache_bypassed_total", reason="policy") == 4


@pytest.mark.parametrize(("mode", "calls"), [("always", 1), ("off", 2)])
def test_cache_mode_setting(
    make_service: MakeService, upstream: FakeUpstream, mode: str, calls: int
) -> None:
    service = make_service(cache_mode=mode)

    for _ in range(2):
        service.chat(
            model="model-a", messages=user("mode"), temperature=0.9 if mode == "always" else 0
        )

    assert upstream.call_count == calls


def test_no_store_neither_reads_nor_writes(service: RunningService, upstream: FakeUpstream) -> None:
    body: dict[str, Any] = {"model": "model-a", "messages": user("private"), "temperature": 0}

    service.chat(**body)  # stored
    bypass = service.chat(**body, headers={"Cache-Control": "no-store"})
    fresh: dict[str, Any] = {"model": "model-a", "messages": user("never stored"), "temperature": 0}
    service.chat(**fresh, headers={"Cache-Control": "no-store"})
    service.chat(**fresh)

    assert bypass.headers["x-cache"] == "BYPASS"
    assert upstream.call_count == 4


def test_no_cache_refreshes_the_entry(service: RunningService, upstream: FakeUpstream) -> None:
    upstream.push(Behaviour(reply="old answer"), Behaviour(reply="new answer"))
    body: dict[str, Any] = {"model": "model-a", "messages": user("refresh"), "temperature": 0}

    service.chat(**body)
    refreshed = service.chat(**body, headers={"Cache-Control": "no-cache"})
    later = service.chat(**body)

    assert refreshed.json()["choices"][0]["message"]["content"] == "new answer"
    assert later.json()["choices"][0]["message"]["content"] == "new answer"
    assert later.headers["x-cache"] == "HIT"
    assert upstream.call_count == 2


# --- coalescing ----------------------------------------------------------------------------


async def _burst(urls: list[str], body: dict[str, Any], count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(
            *(
                client.post(f"{urls[i % len(urls)]}/v1/chat/completions", json=body)
                for i in range(count)
            )
        )


def test_concurrent_identical_misses_make_one_upstream_call(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.default = Behaviour(delay=0.5, reply="shared answer")
    body = {"model": "model-a", "messages": user("stampede"), "temperature": 0}

    responses = asyncio.run(_burst([service.url], body, 8))

    assert [r.status_code for r in responses] == [200] * 8
    assert {r.json()["choices"][0]["message"]["content"] for r in responses} == {"shared answer"}
    assert upstream.call_count == 1
    assert service.metric("prompt_service_coalesced_requests_total") == 7


def test_concurrent_identical_streaming_misses_make_one_upstream_call(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.default = Behaviour(delay=0.5, reply="streamed to everyone")
    body = {
        "model": "model-a",
        "messages": user("stream stampede"),
        "temperature": 0,
        "stream": True,
    }

    responses = asyncio.run(_burst([service.url], body, 5))

    for response in responses:
        events, done = parse_sse(response.text)
        assert done
        assert stream_text(events) == "streamed to everyone"
    assert upstream.call_count == 1


def test_replicas_share_one_upstream_call_through_redis(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    name = "t-two-replicas"
    replicas = [make_service(service_name=name), make_service(service_name=name)]
    upstream.default = Behaviour(delay=0.5, reply="one call for the fleet")
    body = {"model": "model-a", "messages": user("fleet"), "temperature": 0}

    responses = asyncio.run(_burst([r.url for r in replicas], body, 6))

    assert [r.status_code for r in responses] == [200] * 6
    assert upstream.call_count == 1


def test_an_identical_request_waiting_on_a_failed_one_gets_its_error(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.default = Behaviour(kind="status", status=400, delay=0.3)
    body = {"model": "model-a", "messages": user("doomed"), "temperature": 0}

    responses = asyncio.run(_burst([service.url], body, 4))

    assert [r.status_code for r in responses] == [400] * 4
    assert upstream.call_count == 1


@pytest.mark.parametrize(
    "stored", [b"not json", b'{"answer": "of an older version"}', b'{"model": 1, "completion": []}']
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_cache_entry_of_another_shape_is_a_miss_not_a_failure(
    service: RunningService,
    upstream: FakeUpstream,
    redis_server: RedisServer,
    stored: bytes,
    stream: bool,
) -> None:
    body: dict[str, Any] = {"model": "model-a", "messages": user("shape"), "temperature": 0}
    assert service.chat(**body).headers["x-cache"] == "MISS"
    client = redis.Redis.from_url(redis_server.url)
    try:
        keys = [
            k
            for k in client.scan_iter(f"prompt-service:{service.settings.service_name}:*")
            if not k.endswith(b":lock")
        ]
        assert len(keys) == 1
        client.set(keys[0], stored)
    finally:
        client.close()

    response = service.chat(**body, stream=stream)

    assert response.status_code == 200
    assert response.headers["x-cache"] == "MISS"
    assert upstream.call_count == 2
    assert service.metric("prompt_service_cache_errors_total", operation="decode") == 1


# --- Redis outages -------------------------------------------------------------------------


def test_redis_stopped_mid_run_then_back(
    make_service: MakeService, upstream: FakeUpstream, redis_server: RedisServer
) -> None:
    service = make_service(redis_retry_seconds=0.2)
    body: dict[str, Any] = {"model": "model-a", "messages": user("outage"), "temperature": 0}
    assert service.chat(**body).headers["x-cache"] == "MISS"
    assert service.chat(**body).headers["x-cache"] == "HIT"

    redis_server.stop()
    try:
        during = [service.chat(**body) for _ in range(3)]
        during += [service.chat(model="model-a", messages=user("new"), temperature=0)]
        calls_during = upstream.call_count
    finally:
        redis_server.start()  # same port, empty (no persistence)
    time.sleep(0.3)  # past redis_retry_seconds
    after = [service.chat(model="model-a", messages=user("back"), temperature=0) for _ in range(3)]

    assert [r.status_code for r in during] == [200] * 4
    assert calls_during == 1 + 4  # every request during the outage went upstream
    assert service.metric("prompt_service_cache_errors_total") >= 1
    assert service.metric("prompt_service_cache_bypassed_total", reason="redis_unavailable") >= 1
    assert [r.headers["x-cache"] for r in after] == ["MISS", "HIT", "HIT"]
    assert upstream.call_count == calls_during + 1


def test_without_redis_from_the_start_requests_succeed(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(redis_url="redis://127.0.0.1:9/0")

    responses = [
        service.chat(model="model-a", messages=user("no redis"), temperature=0, stream=stream)
        for stream in (False, True, False)
    ]

    assert [r.status_code for r in responses] == [200] * 3
    assert parse_sse(responses[1].text)[1]
    assert upstream.call_count == 3
