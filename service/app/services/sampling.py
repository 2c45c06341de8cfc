"""The sampling fields every completion takes: one definition for the API's request bodies and
for the defaults a prompt template may set."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SamplingFields(BaseModel):
    """Sampling fields; None means 'not set'."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    stop: str | list[str] | None = None
    seed: int | None = None
