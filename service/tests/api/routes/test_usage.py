"""GET /v1/usage: tokens and estimated cost by model and by day or month."""

from __future__ import annotations

import datetime as dt
import json

import asyncpg

from tests.conftest import MakeService, run, user
from tests.fake_upstream import Behaviour, FakeUpstream

PRICES = (
    '{"model-a": {"prompt": 1.0, "completion": 2.0}, "model-b-": {"prompt": 10, "completion": 20}}'
)


async def _insert_old_row(dsn: str, service: str, when: dt.datetime) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO usage_ledger (ts, request_id, service, route, model, prompt_tokens,"
            " completion_tokens, latency_ms, cached, stream, status, http_status)"
            " VALUES ($1, 'old', $2, '/v1/chat/completions', 'model-a', 1000000, 0, 1, false,"
            " false, 'ok', 200)",
            when,
            service,
        )
    finally:
        await conn.close()


def test_usage_totals_and_cost_by_model_and_period(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(prices=json.loads(PRICES), upstream_max_retries=0)
    upstream.push(
        Behaviour(usage=(100, 10)),  # model-a
        Behaviour(usage=(1000, 500)),  # model-b-2024 (priced by the prefix "model-b-")
        Behaviour(usage=(7, 7)),  # model-c: no price
        Behaviour(kind="status", status=500),  # model-c, not retried: a failure
    )
    service.chat(model="model-a", messages=user("a"), temperature=0)
    service.chat(model="model-a", messages=user("a"), temperature=0)  # cache hit: free
    service.chat(model="model-b-2024", messages=user("b"))
    service.chat(model="model-c", messages=user("c"))
    service.chat(model="model-c", messages=user("c2"), headers={"Cache-Control": "no-store"})
    service.ledger_rows(5)
    last_month = dt.datetime.now(dt.UTC).replace(day=1) - dt.timedelta(days=1)
    run(_insert_old_row(service.dsn, service.settings.service_name, last_month))

    daily = service.client.get("/v1/usage").json()
    monthly = service.client.get("/v1/usage", params={"period": "month"}).json()

    assert daily["currency"] == "USD"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    rows = {(r["period"], r["model"]): r for r in daily["data"]}
    a = rows[(today, "model-a")]
    assert (a["requests"], a["cached_requests"], a["prompt_tokens"], a["completion_tokens"]) == (
        2,
        1,
        100,
        10,
    )
    assert a["cost_usd"] == (100 * 1.0 + 10 * 2.0) / 1_000_000
    b = rows[(today, "model-b-2024")]
    assert b["cost_usd"] == (1000 * 10 + 500 * 20) / 1_000_000
    c = rows[(today, "model-c")]
    assert (c["requests"], c["failed_requests"], c["cost_usd"]) == (2, 1, None)
    old = rows[(last_month.date().isoformat(), "model-a")]
    assert old["cost_usd"] == 1.0

    months = {r["period"] for r in monthly["data"]}
    assert months == {today[:7], last_month.strftime("%Y-%m")}
    by_model = {m["model"]: m for m in monthly["by_model"]}
    assert by_model["model-a"]["prompt_tokens"] == 1_000_100
    assert by_model["model-a"]["cost_usd"] == 1.0 + a["cost_usd"]
    assert by_model["model-c"]["cost_usd"] is None
    assert monthly["total"]["requests"] == 6
    assert monthly["total"]["cost_usd"] is None  # one model has no price


def test_usage_filters_by_dates(make_service: MakeService, upstream: FakeUpstream) -> None:
    service = make_service()
    service.chat(model="model-a", messages=user("x"))
    service.ledger_rows(1)
    today = dt.datetime.now(dt.UTC).date()

    tomorrow = today + dt.timedelta(days=1)
    later = service.client.get("/v1/usage", params={"since": tomorrow.isoformat()}).json()
    now = service.client.get(
        "/v1/usage", params={"since": today.isoformat(), "until": today.isoformat()}
    ).json()
    reversed_range = service.client.get(
        "/v1/usage", params={"since": today.isoformat(), "until": "2000-01-01"}
    )
    bad_period = service.client.get("/v1/usage", params={"period": "week"})

    assert later["data"] == []
    assert later["total"] is None
    assert now["total"]["requests"] == 1
    assert reversed_range.status_code == 400
    assert reversed_range.json()["error"]["param"] == "until"
    assert bad_period.status_code == 400
    assert bad_period.json()["error"]["param"] == "period"


def test_usage_without_postgres_is_503(make_service: MakeService) -> None:
    service = make_service(
        database_url="postgresql://nobody:pw@127.0.0.1:9/none",
        database_connect_timeout_seconds=0.5,
    )

    response = service.client.get("/v1/usage")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ledger_unavailable"
    assert response.headers["retry-after"] == "5"
