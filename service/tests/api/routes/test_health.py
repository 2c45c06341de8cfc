"""GET /health, /ready and /metrics."""

from __future__ import annotations

from tests.conftest import MakeService, RunningService, user
from tests.fake_upstream import FakeUpstream


def test_health_needs_no_dependency(make_service: MakeService) -> None:
    service = make_service(
        redis_url="redis://127.0.0.1:9/0",
        database_url="postgresql://nobody:pw@127.0.0.1:9/none",
        upstream_base_url="http://127.0.0.1:9/v1",
        service_api_keys="svc-key-1",
    )

    response = service.client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_dependencies_without_failing_on_them(make_service: MakeService) -> None:
    healthy = make_service()
    degraded = make_service(
        redis_url="redis://127.0.0.1:9/0",
        database_url="postgresql://nobody:pw@127.0.0.1:9/none",
    )

    ok = healthy.client.get("/ready")
    bad = degraded.client.get("/ready")

    assert ok.status_code == 200
    assert ok.json()["checks"]["redis"] == "ok"
    assert ok.json()["checks"]["database"] == "ok"
    assert bad.status_code == 200  # requests still work without Redis and PostgreSQL
    assert bad.json()["checks"]["redis"] == "unavailable"
    assert bad.json()["checks"]["database"] == "unavailable"


def test_metrics_are_prometheus_text(service: RunningService, upstream: FakeUpstream) -> None:
    service.chat(model="model-a", messages=user("m"), temperature=0)
    service.chat(model="model-a", messages=user("m"), temperature=0)

    response = service.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        service.metric(
            "prompt_service_requests_total",
            route="/v1/chat/completions",
            model="model-a",
            status="200",
        )
        == 2
    )
    assert service.metric("prompt_service_cache_hits_total") == 1
    assert service.metric("prompt_service_cache_misses_total") == 1
    assert service.metric("prompt_service_request_duration_seconds_count") >= 2
    assert service.metric("prompt_service_upstream_duration_seconds_count", outcome="ok") == 1
