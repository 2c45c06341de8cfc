"""Service keys, body limit, load shedding, request ids and the error envelope."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.core.logging import JsonFormatter
from tests.conftest import MakeService, RunningService, user
from tests.fake_upstream import Behaviour, FakeUpstream

ENVELOPE_KEYS = {"message", "type", "code", "param"}


@pytest.fixture
def keyed(make_service: MakeService) -> RunningService:
    return make_service(service_api_keys="svc-key-one, svc-key-two")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing service key: send 'Authorization: Bearer <key>'."),
        ({"Authorization": "Bearer"}, "Missing service key: send 'Authorization: Bearer <key>'."),
        (
            {"Authorization": "Basic svc-key-one"},
            "Missing service key: send 'Authorization: Bearer <key>'.",
        ),
        ({"Authorization": "Bearer svc-key-three"}, "Invalid service key."),
    ],
)
def test_missing_or_wrong_service_key_gets_401(
    keyed: RunningService, upstream: FakeUpstream, headers: dict[str, str], message: str
) -> None:
    for path in ("/v1/chat/completions", "/v1/generate", "/generate"):
        response = keyed.client.post(path, json={"prompt": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "message": message,
                "type": "authentication_error",
                "code": "invalid_api_key",
                "param": None,
            }
        }
    for path in ("/v1/templates", "/v1/usage"):
        assert keyed.client.get(path, headers=headers).status_code == 401
    assert upstream.call_count == 0


def test_configured_service_keys_are_accepted(keyed: RunningService) -> None:
    for key in ("svc-key-one", "svc-key-two"):
        response = keyed.chat(
            model="model-a", messages=user("k"), headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200


def test_probes_need_no_key(keyed: RunningService) -> None:
    for path in ("/health", "/ready", "/metrics"):
        assert keyed.client.get(path).status_code == 200


def test_without_configured_keys_no_key_is_needed(service: RunningService) -> None:
    assert service.chat(model="model-a", messages=user("open")).status_code == 200


def test_body_over_the_limit_gets_413(make_service: MakeService, upstream: FakeUpstream) -> None:
    service = make_service(max_body_bytes=2048)
    big = {"model": "model-a", "messages": user("x" * 4096)}
    raw = json.dumps(big).encode()

    declared = service.client.post(
        "/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"}
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it arrives
        for start in range(0, len(raw), 512):
            yield raw[start : start + 512]

    chunked = service.client.post(
        "/v1/chat/completions", content=chunks(), headers={"Content-Type": "application/json"}
    )
    small = service.chat(model="model-a", messages=user("x" * 100))

    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"] == {
            "message": "The request body is larger than 2048 bytes.",
            "type": "invalid_request_error",
            "code": "request_too_large",
            "param": None,
        }
    assert small.status_code == 200
    assert upstream.call_count == 1


def test_requests_over_the_in_flight_limit_get_503(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(max_in_flight=2)
    upstream.default = Behaviour(delay=0.5)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/v1/chat/completions",
                        json={"model": "model-a", "messages": user(f"slow {i}")},
                    )
                    for i in range(4)
                )
            )

    responses = asyncio.run(burst())

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 503, 503]
    shed = next(r for r in responses if r.status_code == 503)
    assert shed.json()["error"]["code"] == "overloaded"
    assert shed.headers["retry-after"] == "1"
    assert service.client.get("/health").status_code == 200


def test_unknown_routes_and_methods_use_the_envelope(service: RunningService) -> None:
    missing = service.client.get("/v2/nothing")
    wrong_method = service.client.get("/v1/chat/completions")

    assert missing.status_code == 404
    assert set(missing.json()["error"]) == ENVELOPE_KEYS
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_log_lines_are_json_with_the_request_id(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    response = service.chat(
        model="model-a", messages=user("log me"), headers={"X-Request-ID": "req-log-1"}
    )

    assert response.status_code == 200

    # The middleware writes the line once the last byte is sent, so it can trail the client's
    # read of the response by a moment (on a busy machine): wait for it, boundedly.
    def access_lines() -> list[dict[str, Any]]:
        lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
        return [line for line in lines if line["logger"] == "app.access"]

    deadline = time.monotonic() + 10
    while not access_lines() and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    access = access_lines()
    assert len(access) == 1
    assert access[0]["request_id"] == "req-log-1"
    assert access[0]["status"] == 200
    assert access[0]["model"] == "model-a"
    assert access[0]["path"] == "/v1/chat/completions"
    assert "log me" not in json.dumps(lines)  # prompts are not logged


def test_a_malformed_request_id_is_replaced(service: RunningService) -> None:
    response = service.client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})

    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32
