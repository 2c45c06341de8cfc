"""The process: ``python -m app`` start-up checks, and graceful shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import MakeService, user
from tests.fake_upstream import Behaviour, FakeUpstream
from tests.servers import PostgresServer, RedisServer, free_port

SERVICE_DIR = Path(__file__).parents[1]


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPT_")}
    env.update(values)
    return env


def test_in_flight_requests_finish_during_graceful_shutdown(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(shutdown_grace_seconds=5)
    upstream.default = Behaviour(delay=1.0, reply="finished anyway")
    result: dict[str, httpx.Response] = {}

    def call() -> None:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            result["response"] = client.post(
                "/v1/chat/completions", json={"model": "model-a", "messages": user("slow")}
            )

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)  # the request is now waiting on the upstream
    service.server.server.should_exit = True  # what SIGTERM does
    caller.join(10)
    service.server.thread.join(10)

    response = result["response"]
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "finished anyway"
    # The ledger was flushed on the way out.
    assert len(service.ledger_rows(1, timeout=2)) == 1


def test_requests_beyond_the_grace_period_are_cut(
    make_service: MakeService, upstream: FakeUpstream
) -> None:
    service = make_service(shutdown_grace_seconds=1)
    upstream.default = Behaviour(delay=5.0)

    def call() -> None:
        # The request is cut off by the shutdown: an error is expected.
        with (
            httpx.Client(base_url=service.url, timeout=10) as client,
            contextlib.suppress(httpx.HTTPError),
        ):
            client.post("/v1/chat/completions", json={"model": "model-a", "messages": user("x")})

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)
    started = time.monotonic()
    service.server.server.should_exit = True
    service.server.thread.join(10)
    caller.join(10)

    assert time.monotonic() - started < 3.5  # grace 1 s, not the upstream's 5 s


def test_missing_configuration_is_reported_by_variable_name() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=SERVICE_DIR,
        env=clean_env(PROMPT_SERVICE_API_KEYS="client-secret-1"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "invalid configuration:",
        "PROMPT_UPSTREAM_API_KEY: Field required",
        "PROMPT_REDIS_URL: Field required",
        "PROMPT_DATABASE_URL: Field required",
    ]
    assert "client-secret-1" not in done.stderr + done.stdout


def test_a_bad_templates_file_stops_the_process(tmp_path: Path) -> None:
    bad = tmp_path / "templates.yaml"
    bad.write_text(
        "templates:\n  intro:\n    version: 1\n    messages: [{role: user, content: '{{ x }}'}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=SERVICE_DIR,
        env=clean_env(
            PROMPT_UPSTREAM_API_KEY="sk-test-process",
            PROMPT_REDIS_URL="redis://127.0.0.1:9/0",
            PROMPT_DATABASE_URL="postgresql://x:y@127.0.0.1:9/z",
            PROMPT_TEMPLATES_FILE=str(bad),
        ),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 2
    assert "sk-" not in done.stdout + done.stderr
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert line["message"] == "invalid templates file"
    assert "template 'intro': messages.0.content: placeholder 'x'" in line["error"]


def test_the_process_serves_and_stops_on_sigterm(
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    fake_upstream_server: tuple[FakeUpstream, str],
    upstream: FakeUpstream,
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=SERVICE_DIR,
        env=clean_env(
            PROMPT_HOST="127.0.0.1",
            PROMPT_PORT=str(port),
            PROMPT_UPSTREAM_BASE_URL=f"{fake_upstream_server[1]}/v1",
            PROMPT_UPSTREAM_API_KEY=upstream.api_key,
            PROMPT_REDIS_URL=redis_server.url,
            PROMPT_DATABASE_URL=postgres_server.dsn,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/generate", json={"prompt": "process"}, timeout=10
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)

    assert health is not None
    assert health.json() == {"status": "ok"}
    assert answer.json()["text"] == "echo: process"
    assert process.returncode in (0, -signal.SIGTERM)
    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    messages = [line["message"] for line in lines]
    assert "prompt service started" in messages
    assert "prompt service stopped" in messages
    access = [line for line in lines if line["logger"] == "app.access"]
    assert {line["path"] for line in access} == {"/v1/generate"}
    assert "sk-" not in output
