"""Estimated cost from the configured price table (USD per million tokens)."""

from __future__ import annotations

from collections.abc import Mapping

from app.core.config import ModelPrice


def price_for(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """Exact match, else the longest configured prefix (``gpt-4o-mini-2024-07-18``)."""
    if model in prices:
        return prices[model]
    matches = [name for name in prices if model.startswith(name)]
    return prices[max(matches, key=len)] if matches else None


def estimate_cost(
    model: str, prompt_tokens: int, completion_tokens: int, prices: Mapping[str, ModelPrice]
) -> float | None:
    """USD, or None when the model has no price."""
    price = price_for(model, prices)
    if price is None:
        return None
    return round(
        (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1_000_000, 6
    )
