"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.services.sampling import SamplingFields

# Printable names only: a control character (NUL above all) would reach the usage ledger,
# and PostgreSQL refuses NUL in text.
_MODEL = Field(default=None, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatCompletionRequest(SamplingFields):
    """OpenAI's chat completion request. Unknown fields are kept and sent upstream."""

    model_config = ConfigDict(extra="allow")

    model: str | None = _MODEL
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=16)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None

    def upstream_params(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"stream", "stream_options", "model"})


class GenerateRequest(SamplingFields):
    """Either ``prompt`` or ``template`` with ``variables``."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, min_length=1)
    system: str | None = Field(default=None, min_length=1)
    template: str | None = Field(default=None, min_length=1, max_length=64)
    variables: dict[str, str] = Field(default_factory=dict)
    model: str | None = _MODEL
    response_format: dict[str, Any] | None = None
    stream: bool = False

    def sampling(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, include=set(SamplingFields.model_fields))


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class GenerateResponse(BaseModel):
    id: str = Field(description="Request id, also in the X-Request-ID header.")
    text: str
    model: str = Field(description="Model that answered: the requested one or a fallback.")
    usage: Usage
    cached: bool
    finish_reason: str | None


class LegacyGenerateRequest(BaseModel):
    """The seed's ``/generate`` body, kept for existing clients."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)


class LegacyGenerateResponse(BaseModel):
    response: str
