"""The usage ledger in PostgreSQL: one row per request, and PostgreSQL outages."""

from __future__ import annotations

import datetime as dt
import time

from app.services.ledger import LedgerRow
from tests.conftest import MakeService, RunningService, user
from tests.fake_upstream import Behaviour, FakeUpstream
from tests.servers import PostgresServer


def test_one_row_per_request_with_its_facts(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(upstream_max_retries=0)
    upstream.push(Behaviour(usage=(30, 12)), Behaviour(kind="status", status=500))

    ok = service.chat(model="model-a", messages=user("row"), temperature=0)
    hit = service.chat(model="model-a", messages=user("row"), temperature=0)
    failed = service.chat(model="model-b", messages=user("fails"))
    service.client.get("/health")  # probes and other routes are not usage

    rows = service.ledger_rows(3)
    time.sleep(0.2)
    assert len(service.ledger_rows(3)) == 3
    first, second, third = rows
    assert first["request_id"] == ok.headers["x-request-id"]
    assert second["request_id"] == hit.headers["x-request-id"]
    assert third["request_id"] == failed.headers["x-request-id"]
    assert {r["service"] for r in rows} == {service.settings.service_name}
    assert (first["model"], first["prompt_tokens"], first["completion_tokens"]) == (
        "model-a",
        30,
        12,
    )
    assert (first["cached"], first["status"], first["http_status"]) == (False, "ok", 200)
    assert (second["cached"], second["prompt_tokens"], second["status"]) == (True, 30, "ok")
    assert (third["model"], third["status"], third["http_status"]) == (
        "model-b",
        "upstream_error",
        502,
    )
    assert third["prompt_tokens"] == third["completion_tokens"] == 0
    assert all(r["latency_ms"] > 0 for r in rows)
    assert {r["route"] for r in rows} == {"/v1/chat/completions"}
    assert service.metric("prompt_service_ledger_rows_written_total") == 3


def test_postgres_down_requests_succeed_pending_is_bounded_and_drops_are_counted(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(
        database_url="postgresql://nobody:pw@127.0.0.1:9/none",
        database_connect_timeout_seconds=0.2,
        ledger_max_pending=5,
    )

    responses = [service.chat(model="model-a", messages=user(f"p{i}")) for i in range(8)]

    assert [r.status_code for r in responses] == [200] * 8
    assert service.metric("prompt_service_ledger_rows_pending") == 5
    assert service.metric("prompt_service_ledger_rows_dropped_total", reason="pending_full") == 3
    assert service.wait_metric("prompt_service_ledger_write_errors_total", 1) >= 1
    assert service.client.get("/ready").json()["checks"]["ledger_pending_rows"] == 5


def test_rows_kept_during_a_postgres_outage_are_written_when_it_returns(
    service: RunningService, upstream: FakeUpstream, postgres_server: PostgresServer
) -> None:
    service.chat(model="model-a", messages=user("before"))
    service.ledger_rows(1)

    postgres_server.stop()
    try:
        during = [service.chat(model="model-a", messages=user(f"during {i}")) for i in range(3)]
        time.sleep(0.3)  # the writer tries, fails, keeps the rows
        pending = service.metric("prompt_service_ledger_rows_pending")
    finally:
        postgres_server.start()

    assert [r.status_code for r in during] == [200] * 3
    assert pending == 3
    rows = service.ledger_rows(4, timeout=15)
    assert [r["request_id"] for r in rows[1:]] == [r.headers["x-request-id"] for r in during]
    assert service.metric("prompt_service_ledger_rows_dropped_total") == 0


def test_a_row_postgresql_refuses_is_dropped_alone_and_the_rows_around_it_are_written(
    service: RunningService, upstream: FakeUpstream
) -> None:
    bad = LedgerRow(
        ts=dt.datetime.now(dt.UTC),
        request_id="bad-row",
        service=service.settings.service_name,
        route="/v1/chat/completions",
        model="nul\x00model",  # PostgreSQL refuses NUL in text
        prompt_tokens=0,
        completion_tokens=0,
        latency_ms=1.0,
        cached=False,
        stream=False,
        status="ok",
        http_status=200,
    )
    before = service.chat(model="model-a", messages=user("before"))
    service.app.state.ledger.record(bad)
    after = service.chat(model="model-a", messages=user("after"))
    later = service.chat(model="model-a", messages=user("later"))

    rows = service.ledger_rows(3)
    assert [r["request_id"] for r in rows] == [
        r.headers["x-request-id"] for r in (before, after, later)
    ]
    assert service.metric("prompt_service_ledger_rows_dropped_total", reason="invalid") == 1
    assert service.metric("prompt_service_ledger_rows_pending") == 0
