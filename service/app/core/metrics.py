"""Prometheus metrics of the prompt service.

``METRICS`` is the one list of what the service exports. Other parts of the repository (the
Grafana dashboard, the PrometheusRule checks) read the names from here, either by importing
``METRIC_NAMES`` or by running ``python -m app.core.metrics`` (JSON on stdout). Names are as
written in PromQL: counters end in ``_total``; a histogram ``X`` is queried as ``X_bucket``,
``X_sum`` and ``X_count``.

Each app instance owns its registry: no module-level metric objects, so tests and several
apps in one process do not share counters.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

PREFIX: Final = "prompt_service_"

LATENCY_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str  # as queried in PromQL
    kind: Literal["counter", "gauge", "histogram"]
    labels: tuple[str, ...]
    help: str


REQUESTS = MetricSpec(
    f"{PREFIX}requests_total",
    "counter",
    ("route", "model", "status"),
    "HTTP requests by route, model and status code.",
)
REQUEST_DURATION = MetricSpec(
    f"{PREFIX}request_duration_seconds",
    "histogram",
    ("route",),
    "Time from request to last response byte (streams: end of stream).",
)
UPSTREAM_DURATION = MetricSpec(
    f"{PREFIX}upstream_duration_seconds",
    "histogram",
    ("model", "outcome"),
    "Time of one upstream attempt (streams: until the first chunk).",
)
TOKENS = MetricSpec(
    f"{PREFIX}tokens_total",
    "counter",
    ("model", "kind"),
    "Tokens billed by the upstream, kind is prompt or completion (cache hits excluded).",
)
CACHE_HITS = MetricSpec(f"{PREFIX}cache_hits_total", "counter", (), "Answers served from Redis.")
CACHE_MISSES = MetricSpec(
    f"{PREFIX}cache_misses_total", "counter", (), "Cache lookups that found nothing."
)
CACHE_ERRORS = MetricSpec(
    f"{PREFIX}cache_errors_total",
    "counter",
    ("operation",),
    "Redis operations that failed (the request went on without the cache).",
)
CACHE_BYPASSED = MetricSpec(
    f"{PREFIX}cache_bypassed_total",
    "counter",
    ("reason",),
    "Requests that skipped the cache: policy, no-cache, no-store or redis_unavailable.",
)
COALESCED = MetricSpec(
    f"{PREFIX}coalesced_requests_total",
    "counter",
    (),
    "Requests answered by an identical concurrent request's upstream call.",
)
RETRIES = MetricSpec(
    f"{PREFIX}upstream_retries_total",
    "counter",
    ("model", "reason"),
    "Upstream retries by reason: rate_limited, server_error, connection, timeout.",
)
FALLBACKS = MetricSpec(
    f"{PREFIX}upstream_fallbacks_total",
    "counter",
    ("from_model", "to_model"),
    "Switches to the next fallback model.",
)
BREAKER_STATE = MetricSpec(
    f"{PREFIX}circuit_breaker_state",
    "gauge",
    ("model",),
    "Circuit breaker per upstream model: 0 closed, 1 half-open, 2 open.",
)
USAGE_MISSING = MetricSpec(
    f"{PREFIX}upstream_usage_missing_total",
    "counter",
    ("model",),
    "Successful upstream answers without token usage (ledger records 0 tokens).",
)
LEDGER_WRITTEN = MetricSpec(
    f"{PREFIX}ledger_rows_written_total", "counter", (), "Usage rows written to PostgreSQL."
)
LEDGER_DROPPED = MetricSpec(
    f"{PREFIX}ledger_rows_dropped_total",
    "counter",
    ("reason",),
    "Usage rows lost: pending_full (PostgreSQL down too long), shutdown, or invalid "
    "(refused by PostgreSQL).",
)
LEDGER_PENDING = MetricSpec(
    f"{PREFIX}ledger_rows_pending", "gauge", (), "Usage rows waiting to be written."
)
LEDGER_WRITE_ERRORS = MetricSpec(
    f"{PREFIX}ledger_write_errors_total", "counter", (), "Failed batch writes to PostgreSQL."
)
IN_FLIGHT = MetricSpec(f"{PREFIX}in_flight_requests", "gauge", (), "Requests being handled.")

METRICS: Final[tuple[MetricSpec, ...]] = (
    REQUESTS,
    REQUEST_DURATION,
    UPSTREAM_DURATION,
    TOKENS,
    CACHE_HITS,
    CACHE_MISSES,
    CACHE_ERRORS,
    CACHE_BYPASSED,
    COALESCED,
    RETRIES,
    FALLBACKS,
    BREAKER_STATE,
    USAGE_MISSING,
    LEDGER_WRITTEN,
    LEDGER_DROPPED,
    LEDGER_PENDING,
    LEDGER_WRITE_ERRORS,
    IN_FLIGHT,
)
METRIC_NAMES: Final[tuple[str, ...]] = tuple(spec.name for spec in METRICS)


def _base_name(spec: MetricSpec) -> str:
    # prometheus_client appends ``_total`` to counters itself.
    return spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name


class Metrics:
    """The metric objects of one app, registered in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # ``*_created`` series double the series count and nobody queries them.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = self._counter(REQUESTS)
        self.request_duration = self._histogram(REQUEST_DURATION)
        self.upstream_duration = self._histogram(UPSTREAM_DURATION)
        self.tokens = self._counter(TOKENS)
        self.cache_hits = self._counter(CACHE_HITS)
        self.cache_misses = self._counter(CACHE_MISSES)
        self.cache_errors = self._counter(CACHE_ERRORS)
        self.cache_bypassed = self._counter(CACHE_BYPASSED)
        self.coalesced = self._counter(COALESCED)
        self.retries = self._counter(RETRIES)
        self.fallbacks = self._counter(FALLBACKS)
        self.breaker_state = self._gauge(BREAKER_STATE)
        self.usage_missing = self._counter(USAGE_MISSING)
        self.ledger_written = self._counter(LEDGER_WRITTEN)
        self.ledger_dropped = self._counter(LEDGER_DROPPED)
        self.ledger_pending = self._gauge(LEDGER_PENDING)
        self.ledger_write_errors = self._counter(LEDGER_WRITE_ERRORS)
        self.in_flight = self._gauge(IN_FLIGHT)

    def _counter(self, spec: MetricSpec) -> Counter:
        return Counter(_base_name(spec), spec.help, spec.labels, registry=self.registry)

    def _gauge(self, spec: MetricSpec) -> Gauge:
        return Gauge(_base_name(spec), spec.help, spec.labels, registry=self.registry)

    def _histogram(self, spec: MetricSpec) -> Histogram:
        return Histogram(
            _base_name(spec),
            spec.help,
            spec.labels,
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def metrics_markdown_table() -> str:
    """The README's metrics table, generated from ``METRICS``."""
    rows = ["| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    for spec in METRICS:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "-"
        rows.append(f"| `{spec.name}` | {spec.kind} | {labels} | {spec.help} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    json.dump(
        [
            {"name": s.name, "type": s.kind, "labels": list(s.labels), "help": s.help}
            for s in METRICS
        ],
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")
