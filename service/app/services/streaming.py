"""Turning chat completion chunks into a completion, and a completion back into chunks.

A streamed answer is assembled so it can be cached; a cached answer is replayed as a proper
stream (role, content, finish reason, optional usage), so streaming and non-streaming
requests share one cache entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_META_FIELDS = ("id", "created", "model", "system_fingerprint", "service_tier")
CACHEABLE_FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "function_call"})


@dataclass(slots=True)
class _Choice:
    role: str | None = None
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    logprobs: dict[str, list[Any]] | None = None
    finish_reason: str | None = None


class StreamAssembler:
    def __init__(self) -> None:
        self._meta: dict[str, Any] = {}
        self._choices: dict[int, _Choice] = {}
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        for name in _META_FIELDS:
            if chunk.get(name) is not None:
                self._meta.setdefault(name, chunk[name])
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            slot = self._choices.setdefault(int(choice.get("index", 0)), _Choice())
            delta = choice.get("delta") or {}
            if delta.get("role"):
                slot.role = delta["role"]
            if delta.get("content"):
                slot.content.append(delta["content"])
            if delta.get("refusal"):
                slot.refusal.append(delta["refusal"])
            for call in delta.get("tool_calls") or ():
                self._add_tool_call(slot, call)
            logprobs = choice.get("logprobs")
            if logprobs:
                if slot.logprobs is None:
                    slot.logprobs = {}
                for kind in ("content", "refusal"):
                    if logprobs.get(kind):
                        slot.logprobs.setdefault(kind, []).extend(logprobs[kind])
            if choice.get("finish_reason"):
                slot.finish_reason = choice["finish_reason"]

    @staticmethod
    def _add_tool_call(slot: _Choice, call: dict[str, Any]) -> None:
        entry = slot.tool_calls.setdefault(
            int(call.get("index", 0)),
            {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
        )
        if call.get("id"):
            entry["id"] = call["id"]
        if call.get("type"):
            entry["type"] = call["type"]
        function = call.get("function") or {}
        if function.get("name"):
            entry["function"]["name"] += function["name"]
        if function.get("arguments"):
            entry["function"]["arguments"] += function["arguments"]

    @property
    def finished(self) -> bool:
        """Every choice got a finish reason (a stream cut short did not)."""
        return bool(self._choices) and all(c.finish_reason for c in self._choices.values())

    def completion(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self._choices):
            slot = self._choices[index]
            message: dict[str, Any] = {
                "role": slot.role or "assistant",
                "content": "".join(slot.content) if slot.content or not slot.tool_calls else None,
            }
            if slot.refusal:
                message["refusal"] = "".join(slot.refusal)
            if slot.tool_calls:
                message["tool_calls"] = [slot.tool_calls[i] for i in sorted(slot.tool_calls)]
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": slot.logprobs,
                    "finish_reason": slot.finish_reason,
                }
            )
        completion: dict[str, Any] = {"object": "chat.completion", **self._meta}
        completion["choices"] = choices
        if self.usage is not None:
            completion["usage"] = self.usage
        return completion


def replay_chunks(completion: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    """The chunks of a stream carrying ``completion``."""
    base: dict[str, Any] = {"object": "chat.completion.chunk"}
    for name in _META_FIELDS:
        if completion.get(name) is not None:
            base[name] = completion[name]
    if include_usage:
        base["usage"] = None
    chunks: list[dict[str, Any]] = []
    for choice in completion.get("choices") or ():
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": message.get("role") or "assistant"}
        if message.get("content") is not None:
            delta["content"] = message["content"]
        if message.get("refusal"):
            delta["refusal"] = message["refusal"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {"index": i, **call} for i, call in enumerate(message["tool_calls"])
            ]
        index = choice.get("index", 0)
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": index,
                        "delta": delta,
                        "logprobs": choice.get("logprobs"),
                        "finish_reason": None,
                    }
                ],
            }
        )
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": index,
                        "delta": {},
                        "logprobs": None,
                        "finish_reason": choice.get("finish_reason"),
                    }
                ],
            }
        )
    if include_usage and completion.get("usage") is not None:
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks


def is_cacheable(completion: dict[str, Any]) -> bool:
    choices = completion.get("choices") or ()
    return bool(choices) and all(
        c.get("finish_reason") in CACHEABLE_FINISH_REASONS for c in choices
    )


def usage_tokens(completion_or_usage: dict[str, Any] | None) -> tuple[int, int] | None:
    """(prompt, completion) tokens from a usage object, None when there is none."""
    if not completion_or_usage:
        return None
    usage = completion_or_usage.get("usage", completion_or_usage)
    if not isinstance(usage, dict) or "prompt_tokens" not in usage:
        return None
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
