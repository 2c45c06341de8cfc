"""Fixtures: real Redis and PostgreSQL, the fake upstream, and running prompt services.

Every service under test runs under real uvicorn on 127.0.0.1 and talks to real Redis,
PostgreSQL and an HTTP upstream through the real openai SDK; nothing is mocked.

The whole session is checked for leaked keys: every response body and header the services
send, and every log line (formatted by the service's JSON formatter) is recorded, and the
session fails if any contains ``sk-``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import Settings
from app.core.logging import JsonFormatter
from app.main import create_app
from tests.fake_upstream import DEFAULT_API_KEY, FakeUpstream
from tests.servers import PostgresServer, RedisServer, UvicornThread

SECRET_PATTERN = re.compile(r"sk-")


# --- leak check over the whole session ---------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a broken record must still be looked at
            self.lines.append(repr(record.__dict__))


@dataclass
class SessionOutput:
    """Everything the services said during the session."""

    responses: list[bytes] = field(default_factory=list)
    log: _Capture = field(default_factory=_Capture)


def find_secrets(output: SessionOutput) -> list[str]:
    hits = [f"log: {line[:300]}" for line in output.log.lines if SECRET_PATTERN.search(line)]
    for chunk in output.responses:
        text = chunk.decode("utf-8", errors="replace")
        if SECRET_PATTERN.search(text):
            hits.append(f"response: {text[:300]}")
    return hits


@pytest.fixture(scope="session", autouse=True)
def session_output() -> Iterator[SessionOutput]:
    output = SessionOutput()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(output.log)
    root.setLevel(logging.INFO)
    yield output
    root.removeHandler(output.log)
    root.setLevel(previous)
    leaks = find_secrets(output)
    assert not leaks, "sk- found in service output:\n" + "\n".join(leaks[:20])


class RecordingApp:
    """ASGI wrapper that copies every response header and body into the session record."""

    def __init__(self, app: Any, sink: list[bytes]) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.sink.extend(k + b": " + v for k, v in message.get("headers", ()))
            elif message["type"] == "http.response.body":
                self.sink.append(bytes(message.get("body", b"")))
            await send(message)

        await self.app(scope, receive, recording_send)


# --- real backing servers ------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.init()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def fake_upstream_server() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream(DEFAULT_API_KEY)
    runner = UvicornThread(fake, timeout_graceful_shutdown=1).start()
    yield fake, runner.url
    runner.stop()


@pytest.fixture
def upstream(fake_upstream_server: tuple[FakeUpstream, str]) -> FakeUpstream:
    fake, _ = fake_upstream_server
    fake.reset()
    return fake


# --- services under test -------------------------------------------------------------------


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@dataclass
class RunningService:
    settings: Settings
    app: Any
    server: UvicornThread
    client: httpx.Client
    dsn: str

    @property
    def url(self) -> str:
        return self.server.url

    def chat(self, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
        return self.client.post("/v1/chat/completions", json=body, headers=headers)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.client.get("/metrics").text
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return values

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for (sample, sample_labels), value in self.metrics().items():
            if sample == name and set(labels.items()) <= set(sample_labels):
                total += value
        return total

    def wait_metric(self, name: str, minimum: float, timeout: float = 10, **labels: str) -> float:
        """The metric, once it reaches ``minimum`` (background work updates some)."""
        deadline = time.monotonic() + timeout
        value = self.metric(name, **labels)
        while value < minimum and time.monotonic() < deadline:
            time.sleep(0.05)
            value = self.metric(name, **labels)
        return value

    def ledger_rows(self, expected: int, timeout: float = 10) -> list[dict[str, Any]]:
        """This service's ledger rows, once at least ``expected`` are written."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = run(_fetch_rows(self.dsn, self.settings.service_name))
            if len(rows) >= expected:
                return rows
            time.sleep(0.05)
        raise AssertionError(f"expected {expected} ledger rows, found {len(rows)}")


async def _fetch_rows(dsn: str, service: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass('usage_ledger') IS NOT NULL")
        if not exists:
            return []
        records = await conn.fetch(
            "SELECT * FROM usage_ledger WHERE service = $1 ORDER BY id", service
        )
        return [dict(r) for r in records]
    finally:
        await conn.close()


MakeService = Callable[..., RunningService]


@pytest.fixture
def make_service(
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    upstream: FakeUpstream,
    fake_upstream_server: tuple[FakeUpstream, str],
    session_output: SessionOutput,
) -> Iterator[MakeService]:
    """Start a prompt service with test defaults; keyword arguments override settings."""
    started: list[RunningService] = []
    _, upstream_url = fake_upstream_server

    def start(**overrides: Any) -> RunningService:
        values: dict[str, Any] = {
            "service_name": f"t-{uuid.uuid4().hex[:10]}",
            "upstream_base_url": f"{upstream_url}/v1",
            "upstream_api_key": upstream.api_key,
            "redis_url": redis_server.url,
            "database_url": postgres_server.dsn,
            "default_model": "model-a",
            "upstream_timeout_seconds": 10.0,
            "upstream_read_timeout_seconds": 5.0,
            "upstream_retry_backoff_seconds": 0.01,
            "upstream_retry_backoff_max_seconds": 0.05,
            "redis_retry_seconds": 0.2,
            "ledger_flush_interval_seconds": 0.05,
            "shutdown_grace_seconds": 5,
        }
        values.update(overrides)
        settings = Settings(**values)
        app = create_app(settings)
        server = UvicornThread(
            RecordingApp(app, session_output.responses),
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        ).start()
        client = httpx.Client(base_url=server.url, timeout=30)
        service = RunningService(settings, app, server, client, postgres_server.dsn)
        started.append(service)
        return service

    yield start
    for service in started:
        service.client.close()
        service.server.stop()


@pytest.fixture
def service(make_service: MakeService) -> RunningService:
    return make_service()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def parse_sse(raw: str) -> tuple[list[Any], bool]:
    """Events of an SSE body (JSON decoded) and whether it ended with ``[DONE]``."""
    import json

    events: list[Any] = []
    done = False
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), f"malformed event: {block!r}"
        data = block.removeprefix("data: ")
        assert not done, "event after [DONE]"
        if data == "[DONE]":
            done = True
            continue
        events.append(json.loads(data))
    return events, done


def stream_text(events: list[dict[str, Any]]) -> str:
    return "".join(
        (choice.get("delta") or {}).get("content") or ""
        for event in events
        for choice in event.get("choices") or ()
    )
