"""``GET /v1/usage``: tokens and estimated cost by model and by day or month."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from app.api.deps import get_ledger, get_settings
from app.core.config import Settings
from app.errors import InvalidRequest, Unavailable
from app.services.ledger import LedgerUnavailableError, UsageLedger
from app.services.pricing import estimate_cost

router = APIRouter(tags=["usage"])


def _add(totals: dict[str, Any], row: dict[str, Any]) -> None:
    for name in (
        "requests",
        "cached_requests",
        "failed_requests",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
    ):
        totals[name] = totals.get(name, 0) + row[name]
    if row["cost_usd"] is None or totals.get("cost_usd", 0.0) is None:
        totals["cost_usd"] = None
    else:
        totals["cost_usd"] = round(totals.get("cost_usd", 0.0) + row["cost_usd"], 6)


@router.get("/v1/usage")
async def usage(
    settings: Annotated[Settings, Depends(get_settings)],
    ledger: Annotated[UsageLedger, Depends(get_ledger)],
    period: Annotated[Literal["day", "month"], Query()] = "day",
    since: Annotated[dt.date | None, Query(description="First day (UTC), inclusive.")] = None,
    until: Annotated[dt.date | None, Query(description="Last day (UTC), inclusive.")] = None,
) -> dict[str, Any]:
    """Token totals count upstream calls only: cache hits cost nothing and are counted in
    ``cached_requests``. ``cost_usd`` is null for a model without a configured price.
    Rows reach the ledger within ``PROMPT_LEDGER_FLUSH_INTERVAL_SECONDS``."""
    if since is not None and until is not None and until < since:
        raise InvalidRequest("'until' is before 'since'.", param="until")
    try:
        totals = await ledger.usage(settings.service_name, period, since, until)
    except LedgerUnavailableError:
        raise Unavailable(
            "The usage ledger is unavailable.", code="ledger_unavailable", retry_after=5
        ) from None
    rows: list[dict[str, Any]] = []
    by_model: dict[str, dict[str, Any]] = {}
    overall: dict[str, Any] = {}
    for t in totals:
        row = {
            "period": t.period,
            "model": t.model,
            "requests": t.requests,
            "cached_requests": t.cached_requests,
            "failed_requests": t.failed_requests,
            "prompt_tokens": t.prompt_tokens,
            "completion_tokens": t.completion_tokens,
            "total_tokens": t.prompt_tokens + t.completion_tokens,
            "cost_usd": estimate_cost(
                t.model, t.prompt_tokens, t.completion_tokens, settings.prices
            ),
        }
        rows.append(row)
        _add(by_model.setdefault(t.model, {"model": t.model}), row)
        _add(overall, row)
    return {
        "object": "usage",
        "service": settings.service_name,
        "period": period,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "currency": "USD",
        "data": rows,
        "by_model": [by_model[m] for m in sorted(by_model)],
        "total": overall or None,
    }
