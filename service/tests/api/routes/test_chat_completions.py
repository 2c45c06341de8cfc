"""POST /v1/chat/completions against the fake upstream, through the real openai SDK."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MakeService, RunningService, parse_sse, stream_text, user
from tests.fake_upstream import Behaviour, FakeUpstream

MULTILINGUAL = {
    "chinese": "你好，世界！这是一个关于缓存和流式传输的测试。",  # noqa: RUF001  # full-width on purpose
    "korean": "안녕하세요, 세계! 캐시와 스트리밍 테스트입니다.",
    "emoji": "👋🌍 family 👨‍👩‍👧‍👦 flag 🇰🇷 thumbs 👍🏽 done ✅",
}


def post_raw(service: RunningService, raw: str, **headers: str) -> httpx.Response:
    return service.client.post(
        "/v1/chat/completions",
        content=raw.encode(),
        headers={"Content-Type": "application/json", **headers},
    )


def test_same_request_with_keys_in_another_order_makes_one_upstream_call(
    service: RunningService, upstream: FakeUpstream
) -> None:
    first = post_raw(
        service,
        '{"model": "model-a", "temperature": 0, "top_p": 0.5, "messages": '
        '[{"role": "user", "content": "order test"}], "stop": ["x"]}',
    )
    second = post_raw(
        service,
        '{"stop": ["x"], "messages": [{"content": "order test", "role": "user"}], '
        '"top_p": 0.5, "temperature": 0, "model": "model-a"}',
    )

    assert first.status_code == second.status_code == 200
    assert upstream.call_count == 1
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.json()["choices"] == first.json()["choices"]


@pytest.mark.parametrize(
    ("field", "one", "other"),
    [
        ("top_p", 0.5, 0.6),
        ("max_tokens", 10, 11),
        ("seed", 1, 2),
        ("stop", ["a"], ["b"]),
        ("presence_penalty", 0.0, 0.1),
        ("response_format", {"type": "text"}, {"type": "json_object"}),
    ],
)
def test_requests_differing_in_one_sampling_field_make_two_upstream_calls(
    service: RunningService, upstream: FakeUpstream, field: str, one: Any, other: Any
) -> None:
    base: dict[str, Any] = {"model": "model-a", "messages": user("sampling"), "temperature": 0}

    service.chat(**base, **{field: one})
    service.chat(**base, **{field: other})
    service.chat(**base, **{field: one})  # the first again: a hit

    assert upstream.call_count == 2
    assert [c.body[field] for c in upstream.calls] == [one, other]


def assert_well_formed_stream(raw: str, expected_text: str) -> list[dict[str, object]]:
    events, done = parse_sse(raw)
    assert done, "stream must end with [DONE]"
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert stream_text(events) == expected_text
    finishes = [c["finish_reason"] for e in events for c in e["choices"] if c["finish_reason"]]
    assert finishes == ["stop"]
    return events


def test_stream_after_cached_non_stream_is_a_complete_stream(
    service: RunningService, upstream: FakeUpstream
) -> None:
    body: dict[str, Any] = {"model": "model-a", "messages": user("replay me"), "temperature": 0}
    plain = service.chat(**body)
    text = plain.json()["choices"][0]["message"]["content"]

    streamed = service.chat(**body, stream=True, stream_options={"include_usage": True})

    assert upstream.call_count == 1
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.headers["x-cache"] == "HIT"
    events = assert_well_formed_stream(streamed.text, text)
    assert events[-1]["choices"] == []
    assert events[-1]["usage"] == plain.json()["usage"]


def test_non_stream_after_cached_stream_gets_the_whole_answer(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.push(Behaviour(reply="streamed first, then served whole", chunk_chars=3))
    body: dict[str, Any] = {"model": "model-a", "messages": user("stream first"), "temperature": 0}
    streamed = service.chat(**body, stream=True)
    assert_well_formed_stream(streamed.text, "streamed first, then served whole")

    plain = service.chat(**body)
    again = service.chat(**body, stream=True)

    assert upstream.call_count == 1
    assert plain.headers["x-cache"] == "HIT"
    message = plain.json()["choices"][0]
    assert message["message"]["content"] == "streamed first, then served whole"
    assert message["finish_reason"] == "stop"
    assert_well_formed_stream(again.text, "streamed first, then served whole")


def test_usage_chunk_only_when_the_client_asks(
    service: RunningService, upstream: FakeUpstream
) -> None:
    without = service.chat(model="model-a", messages=user("usage?"), stream=True)
    with_usage = service.chat(
        model="model-a",
        messages=user("usage!"),
        stream=True,
        stream_options={"include_usage": True},
    )

    assert all("usage" not in e for e in parse_sse(without.text)[0]), (
        "usage was requested upstream for the ledger, not by this client"
    )
    assert parse_sse(with_usage.text)[0][-1]["usage"]["total_tokens"] > 0
    # Upstream is always asked for usage: the ledger needs it.
    assert all(c.body["stream_options"] == {"include_usage": True} for c in upstream.calls)


def test_upstream_400_is_called_once_and_the_client_gets_400(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.default = Behaviour(kind="status", status=400)

    response = service.chat(model="model-a", messages=user("bad"), temperature=0)

    assert response.status_code == 400
    assert upstream.call_count == 1
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "upstream_rejected_request"
    # Upstream text (its message, internal names, the key it quoted) is never echoed.
    assert "Simulated" not in response.text
    assert "db-7.corp" not in response.text
    assert upstream.api_key not in response.text


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_that_never_answers_gives_504_within_the_timeout(
    make_service: MakeService, upstream: FakeUpstream, stream: bool
) -> None:
    service = make_service(upstream_timeout_seconds=1.5, upstream_read_timeout_seconds=1.0)
    upstream.default = Behaviour(kind="hang")

    started = time.monotonic()
    response = service.chat(model="model-a", messages=user("hello?"), stream=stream)
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    # The deadline covers retries: one read timeout (1.0 s), a retry, cut at 1.5 s.
    assert upstream.call_count == 2
    assert 1.4 <= elapsed < 1.5 + 1.5, elapsed


@pytest.mark.parametrize("kind", ["cut", "eof"])
def test_stream_cut_off_without_done_ends_in_an_error_event_and_a_failed_ledger_row(
    service: RunningService, upstream: FakeUpstream, kind: str
) -> None:
    upstream.push(Behaviour(kind=kind, reply="this answer never finishes", cut_after=3))  # type: ignore[arg-type]
    body: dict[str, Any] = {"model": "model-a", "messages": user("cut"), "temperature": 0}

    response = service.chat(**body, stream=True)

    assert response.status_code == 200  # the stream had started
    events, done = parse_sse(response.text)
    assert not done
    assert stream_text(events[:-1]) == "this answer "
    assert events[-1] == {
        "error": {
            "message": events[-1]["error"]["message"],
            "type": "upstream_error",
            "code": "upstream_stream_interrupted",
            "param": None,
        }
    }
    rows = service.ledger_rows(1)
    assert [(r["status"], r["stream"], r["http_status"]) for r in rows] == [
        ("upstream_stream_interrupted", True, 200)
    ]
    # A broken answer is not cached: the same request goes upstream again.
    assert service.chat(**body).status_code == 200
    assert upstream.call_count == 2


def test_stream_cut_after_its_finish_reason_is_still_an_interrupted_stream(
    service: RunningService, upstream: FakeUpstream
) -> None:
    # Every token and the finish reason arrive, then the body ends before usage and [DONE].
    upstream.push(Behaviour(kind="truncated", reply="all of it"))
    body: dict[str, Any] = {"model": "model-a", "messages": user("late cut"), "temperature": 0}

    events, done = parse_sse(service.chat(**body, stream=True).text)

    assert not done
    assert stream_text(events[:-1]) == "all of it"
    assert events[-1]["error"]["code"] == "upstream_stream_interrupted"
    rows = service.ledger_rows(1)
    assert [r["status"] for r in rows] == ["upstream_stream_interrupted"]
    assert service.chat(**body).status_code == 200
    assert upstream.call_count == 2  # not cached


@pytest.mark.parametrize("required", [True, False])
def test_an_upstream_that_sends_no_usage_chunk_is_refused_or_accepted_by_setting(
    make_service: MakeService, upstream: FakeUpstream, required: bool
) -> None:
    service = make_service(upstream_stream_usage_required=required)
    upstream.push(Behaviour(reply="no usage here", send_usage=False))

    events, done = parse_sse(
        service.chat(model="model-a", messages=user("u"), temperature=0, stream=True).text
    )

    assert done is not required
    rows = service.ledger_rows(1)
    if required:
        assert events[-1]["error"]["code"] == "upstream_stream_interrupted"
        assert rows[0]["status"] == "upstream_stream_interrupted"
    else:
        assert stream_text(events) == "no usage here"
        assert (rows[0]["status"], rows[0]["prompt_tokens"]) == ("ok", 0)
        assert service.metric("prompt_service_upstream_usage_missing_total", model="model-a") == 1


def test_a_client_leaving_mid_stream_is_recorded_and_stops_the_upstream_stream(
    service: RunningService, upstream: FakeUpstream
) -> None:
    upstream.push(Behaviour(reply="x" * 200, chunk_chars=2, chunk_delay=0.05))

    with service.client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "model-a", "messages": user("leave"), "stream": True},
    ) as response:
        first = next(response.iter_lines())
    assert first.startswith("data: ")

    (row,) = service.ledger_rows(1)
    assert (row["status"], row["stream"], row["http_status"]) == ("client_disconnected", True, 200)
    # Nothing half-received is cached, and the service is fine afterwards.
    assert service.chat(model="model-a", messages=user("after")).status_code == 200


@pytest.mark.parametrize("language", sorted(MULTILINGUAL))
@pytest.mark.parametrize("split_bytes", [1, 5])
def test_multibyte_text_split_across_chunks_arrives_byte_identical(
    service: RunningService, upstream: FakeUpstream, language: str, split_bytes: int
) -> None:
    text = MULTILINGUAL[language]
    # One or two code points per chunk (ZWJ sequences and flags are cut apart), and the
    # SSE bytes written in pieces of 1 or 5 bytes (UTF-8 sequences are cut apart).
    upstream.push(Behaviour(reply=text, chunk_chars=split_bytes % 3 + 1, split_bytes=split_bytes))
    body: dict[str, Any] = {
        "model": "model-a",
        "messages": user(f"say it in {language}"),
        "temperature": 0,
    }

    streamed = service.chat(**body, stream=True)
    cached = service.chat(**body)

    assert stream_text(parse_sse(streamed.text)[0]).encode() == text.encode()
    assert b"\\u" not in streamed.content  # sent as UTF-8, not as \\u escapes
    assert cached.json()["choices"][0]["message"]["content"].encode() == text.encode()
    assert upstream.call_count == 1


def test_ledger_tokens_of_a_stream_equal_the_upstream_final_usage(
    service: RunningService, upstream: FakeUpstream
) -> None:
    reply = "a reply long enough to need many chunks of three characters"
    upstream.push(Behaviour(reply=reply, chunk_chars=3, usage=(123, 45)))

    response = service.chat(model="model-a", messages=user("count me"), stream=True)

    events, done = parse_sse(response.text)
    assert done
    content_chunks = sum(1 for e in events for c in e["choices"] if c["delta"].get("content"))
    assert content_chunks not in (45, 123)  # so counting chunks could not pass this test
    (row,) = service.ledger_rows(1)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (123, 45)
    assert (row["stream"], row["cached"], row["status"]) == (True, False, "ok")
    assert service.metric("prompt_service_tokens_total", model="model-a", kind="completion") == 45


def test_an_openai_sdk_can_use_the_service_as_its_base_url(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(service_api_keys="svc-key-one")
    client = openai.OpenAI(base_url=f"{service.url}/v1", api_key="svc-key-one", max_retries=0)

    completion = client.chat.completions.create(
        model="model-a", messages=[{"role": "user", "content": "sdk"}], temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model="model-a",
            messages=[{"role": "user", "content": "sdk"}],
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert completion.choices[0].message.content == "echo: sdk"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: sdk"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == completion.usage.total_tokens  # type: ignore[union-attr]
    assert upstream.call_count == 1

    upstream.push(Behaviour(kind="cut", cut_after=1))
    with pytest.raises(openai.APIError, match="broke off"):
        list(
            client.chat.completions.create(
                model="model-a", messages=[{"role": "user", "content": "cut"}], stream=True
            )
        )


def test_unknown_fields_are_sent_upstream_and_are_part_of_the_cache_key(
    service: RunningService, upstream: FakeUpstream
) -> None:
    base: dict[str, Any] = {"model": "model-a", "messages": user("vendor"), "temperature": 0}
    service.chat(**base, top_k=5)
    service.chat(**base, top_k=6)

    assert [c.body.get("top_k") for c in upstream.calls] == [5, 6]


def test_invalid_input_gets_400_naming_the_field(service: RunningService) -> None:
    missing = service.chat(model="model-a")
    too_hot = service.chat(model="model-a", messages=user("x"), temperature=3)
    bad_role = service.chat(model="model-a", messages=[{"role": "robot", "content": "x"}])
    not_json = post_raw(service, "{not json")
    nul_model = service.chat(model="model\u0000a", messages=user("x"))

    assert missing.status_code == too_hot.status_code == bad_role.status_code == 400
    assert missing.json()["error"]["param"] == "messages"
    assert too_hot.json()["error"]["param"] == "temperature"
    assert "'temperature'" in too_hot.json()["error"]["message"]
    assert bad_role.json()["error"]["param"] == "messages.0.role"
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "invalid_json"
    assert nul_model.status_code == 400
    assert nul_model.json()["error"]["param"] == "model"


def test_allowed_models_are_enforced(make_service: MakeService, upstream: FakeUpstream) -> None:
    service = make_service(allowed_models="model-a,model-b")

    ok = service.chat(model="model-b", messages=user("x"))
    refused = service.chat(model="model-z", messages=user("x"))

    assert ok.status_code == 200
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "message": "This model is not available on this service.",
        "type": "invalid_request_error",
        "code": "model_not_allowed",
        "param": "model",
    }
    assert upstream.call_count == 1


def test_default_model_and_sampling_defaults_are_applied(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(default_max_tokens=64, default_temperature=0)

    service.chat(messages=user("defaults"))
    service.chat(messages=user("defaults"), max_tokens=5, temperature=0.5)

    first, second = (c.body for c in upstream.calls)
    assert (first["model"], first["max_tokens"], first["temperature"]) == ("model-a", 64, 0)
    assert (second["max_tokens"], second["temperature"]) == (5, 0.5)


def test_response_is_json_and_carries_the_request_id(
    service: RunningService,
) -> None:
    response = service.chat(
        model="model-a", messages=user("id"), headers={"X-Request-ID": "client-id-123"}
    )

    assert response.headers["x-request-id"] == "client-id-123"
    assert json.loads(response.content)["object"] == "chat.completion"
