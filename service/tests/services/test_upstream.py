"""Retry policy, Retry-After, fallback models and circuit breakers, against the fake upstream."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import httpx2
import pytest

from app.services.upstream import parse_retry_after
from tests.conftest import MakeService, RunningService, user
from tests.fake_upstream import Behaviour, FakeUpstream


def ask(service: RunningService, text: str = "q", **extra: Any) -> httpx.Response:
    return service.chat(model="model-a", messages=user(text), **extra)


def test_429_with_retry_after_is_waited_out_and_retried(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.push(Behaviour(kind="status", status=429, retry_after="1"))

    started = time.monotonic()
    response = ask(service)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert upstream.call_count == 2
    assert upstream.calls[1].at - upstream.calls[0].at >= 0.95  # Retry-After honoured
    assert elapsed < 5
    assert service.metric("prompt_service_upstream_retries_total", reason="rate_limited") == 1


def test_retry_after_beyond_the_bound_goes_back_to_the_client_as_429(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(upstream_retry_after_max_seconds=2)
    upstream.push(Behaviour(kind="status", status=429, retry_after="30"))

    response = service.chat(model="model-a", messages=user("busy"))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert upstream.call_count == 1


def test_persistent_429_without_retry_after_gives_429_with_retry_after(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.default = Behaviour(kind="status", status=429)

    response = ask(service)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert upstream.call_count == 3  # one call and two retries


def test_5xx_is_retried_then_gives_502_without_upstream_text(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.default = Behaviour(kind="status", status=503)

    response = ask(service)

    assert response.status_code == 502
    assert response.json() == {
        "error": {
            "message": "The upstream failed to answer.",
            "type": "upstream_error",
            "code": "upstream_error",
            "param": None,
        }
    }
    assert upstream.call_count == 3
    assert service.metric("prompt_service_upstream_retries_total", reason="server_error") == 2


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_4xx_are_never_retried(
    service: RunningService, upstream: FakeUpstream, status: int
) -> None:
    upstream.default = Behaviour(kind="status", status=status)

    response = ask(service)

    assert response.status_code == status
    assert upstream.call_count == 1


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_that_is_not_json_gives_502(
    service: RunningService, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.default = Behaviour(kind="garbage")

    response = ask(service, stream=stream)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    assert upstream.call_count == 3


def test_unreachable_upstream_gives_502(make_service: MakeService) -> None:
    service = make_service(upstream_base_url="http://127.0.0.1:9/v1")

    response = service.chat(model="model-a", messages=user("anyone?"))

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"
    assert service.metric("prompt_service_upstream_retries_total", reason="connection") == 2


def test_a_rejected_service_key_upstream_is_502_and_never_echoed(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(upstream_api_key="sk-test-wrong-key-abcdef")

    response = service.chat(model="model-a", messages=user("auth"))

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_auth_error"
    assert "wrong-key" not in response.text
    assert upstream.call_count == 0  # the fake refused before counting


def test_fallback_models_are_tried_in_order(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(fallback_models="model-b,model-c", upstream_max_retries=1)
    upstream.push(*[Behaviour(kind="status", status=500)] * 4)  # model-a twice, model-b twice

    response = service.client.post("/v1/generate", json={"prompt": "fall back", "temperature": 0})
    again = service.client.post("/v1/generate", json={"prompt": "fall back", "temperature": 0})

    assert response.status_code == 200
    assert response.json()["model"] == "model-c"
    assert [c.model for c in upstream.calls[:5]] == [
        "model-a",
        "model-a",
        "model-b",
        "model-b",
        "model-c",
    ]
    assert (
        service.metric(
            "prompt_service_upstream_fallbacks_total", from_model="model-a", to_model="model-b"
        )
        == 1
    )
    assert (
        service.metric(
            "prompt_service_upstream_fallbacks_total", from_model="model-b", to_model="model-c"
        )
        == 1
    )
    # A fallback's answer is not cached: the next request tries model-a again.
    assert again.json()["model"] == "model-a"
    assert again.json()["cached"] is False


def test_no_fallback_after_a_client_error(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(fallback_models="model-b")
    upstream.push(Behaviour(kind="status", status=400))

    assert service.chat(model="model-a", messages=user("x")).status_code == 400
    assert upstream.call_count == 1


def test_circuit_breaker_opens_skips_the_upstream_and_recovers(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(
        upstream_max_retries=0, breaker_failure_threshold=2, breaker_open_seconds=1.0
    )
    upstream.push(*[Behaviour(kind="status", status=500)] * 2)

    failures = [service.chat(model="model-a", messages=user(f"b{i}")) for i in range(2)]
    rejected = service.chat(model="model-a", messages=user("b2"))

    assert [r.status_code for r in failures] == [502, 502]
    assert rejected.status_code == 503
    assert rejected.json()["error"]["code"] == "upstream_circuit_open"
    assert 1 <= int(rejected.headers["retry-after"]) <= 1
    assert upstream.call_count == 2  # the open breaker kept the third call away
    assert service.metric("prompt_service_circuit_breaker_state", model="model-a") == 2
    assert service.client.get("/ready").json()["checks"]["circuit_breakers"] == {"model-a": "open"}

    time.sleep(1.1)
    probe = service.chat(model="model-a", messages=user("b3"))

    assert probe.status_code == 200
    assert service.metric("prompt_service_circuit_breaker_state", model="model-a") == 0


def test_an_open_breaker_sends_requests_to_the_fallback(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(
        upstream_max_retries=0,
        breaker_failure_threshold=1,
        breaker_open_seconds=30,
        fallback_models="model-b",
    )
    upstream.push(Behaviour(kind="status", status=500))

    first = service.chat(model="model-a", messages=user("x"))  # model-a fails, model-b answers
    second = service.chat(model="model-a", messages=user("y"))  # model-a skipped

    assert first.status_code == second.status_code == 200
    assert [c.model for c in upstream.calls] == ["model-a", "model-b", "model-b"]


def test_parse_retry_after_accepts_seconds_dates_and_milliseconds() -> None:
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)

    assert parse_retry_after(httpx2.Headers({"retry-after": "7"})) == 7
    assert parse_retry_after(httpx2.Headers({"retry-after-ms": "1500"})) == 1.5
    assert 8 <= (parse_retry_after(httpx2.Headers({"retry-after": in_ten})) or 0) <= 10
    assert parse_retry_after(httpx2.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx2.Headers()) is None
