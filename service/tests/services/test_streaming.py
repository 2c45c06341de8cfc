"""Assembling streamed chunks into a completion and replaying a completion as chunks."""

from __future__ import annotations

from typing import Any

from app.core.config import ModelPrice
from app.services.pricing import estimate_cost, price_for
from app.services.streaming import StreamAssembler, is_cacheable, replay_chunks, usage_tokens


def chunk(
    index: int, delta: dict[str, Any], finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": "c1",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish, **extra}],
    }


def test_tool_calls_and_several_choices_are_assembled() -> None:
    assembler = StreamAssembler()
    for c in (
        chunk(0, {"role": "assistant", "content": ""}),
        chunk(1, {"role": "assistant", "content": "B"}),
        chunk(
            0,
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_", "arguments": '{"ci'},
                    }
                ]
            },
        ),
        chunk(
            0,
            {
                "tool_calls": [
                    {"index": 0, "function": {"name": "weather", "arguments": 'ty": "Oslo"}'}}
                ]
            },
        ),
        chunk(1, {"content": "ye"}, "stop"),
        chunk(0, {}, "tool_calls"),
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}},
    ):
        assembler.add(c)

    completion = assembler.completion()

    assert assembler.finished
    first, second = completion["choices"]
    assert first["message"]["content"] is None
    assert first["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    assert first["finish_reason"] == "tool_calls"
    assert second["message"] == {"role": "assistant", "content": "Bye"}
    assert usage_tokens(completion) == (5, 7)
    assert is_cacheable(completion)


def test_a_stream_without_finish_reason_is_not_finished() -> None:
    assembler = StreamAssembler()
    assembler.add(chunk(0, {"role": "assistant", "content": "half"}))

    assert not assembler.finished


def test_replay_carries_content_tool_calls_logprobs_and_usage() -> None:
    completion = {
        "id": "c9",
        "object": "chat.completion",
        "created": 3,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "hi",
                    "tool_calls": [
                        {
                            "id": "t",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "logprobs": {"content": [{"token": "hi", "logprob": -0.1}]},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }

    chunks = replay_chunks(completion, include_usage=True)
    reassembled = StreamAssembler()
    for c in chunks:
        reassembled.add(c)

    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "c9" for c in chunks)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == completion["usage"]
    assert reassembled.completion()["choices"] == completion["choices"]
    assert "usage" not in replay_chunks(completion, include_usage=False)[-1]


def test_cut_or_filtered_answers_are_not_cacheable() -> None:
    def with_finish(reason: str | None) -> dict[str, Any]:
        return {"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": reason}]}

    assert is_cacheable(with_finish("stop"))
    assert is_cacheable(with_finish("length"))
    assert not is_cacheable(with_finish("content_filter"))
    assert not is_cacheable(with_finish(None))
    assert not is_cacheable({"choices": []})


def test_prices_match_exactly_or_by_longest_prefix() -> None:
    prices = {
        "gpt-4o": ModelPrice(prompt=2.5, completion=10),
        "gpt-4o-mini": ModelPrice(prompt=0.15, completion=0.6),
    }

    assert price_for("gpt-4o-mini-2024-07-18", prices) == prices["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06", prices) == prices["gpt-4o"]
    assert price_for("llama", prices) is None
    assert estimate_cost("gpt-4o-mini", 1_000_000, 500_000, prices) == 0.45
    assert estimate_cost("llama", 1, 1, prices) is None
