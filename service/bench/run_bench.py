"""Benchmark of the prompt service against the test upstream, on loopback only.

Starts Redis, PostgreSQL (Debian binaries), the test upstream and one service process
(``python -m app``, one uvicorn worker, production settings), then measures:

* added latency: the same request sent to the test upstream directly and through the
  service (cache bypassed with ``Cache-Control: no-store``), p50 and p99, at concurrency 1
  and 32; direct and proxied blocks alternate so drift hits both alike;
* maximum requests per second of the one worker (proxied, and cache hits);
* cache-hit latency at concurrency 1;
* resident memory of the service after warm-up, then every 1,000 requests of a last run of
  10,000 (flat after warm-up, or growing?).

Bounded in count and time: about 48,000 requests, every phase also has a time limit. The
client is a minimal keep-alive HTTP/1.1 client on uvloop, so its own cost stays small and
the same for both paths. Run: ``python bench/run_bench.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

SERVICE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SERVICE_DIR))

from tests.fake_upstream import DEFAULT_API_KEY  # noqa: E402
from tests.servers import PostgresServer, RedisServer, free_port  # noqa: E402

PROMPT = "Summarise the benefits of caching in two sentences."


# --- a small keep-alive HTTP/1.1 client ----------------------------------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def encode(path: str, body: dict[str, object], headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass
class Run:
    latencies: list[float]
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def drive(port: int, requests: Sequence[bytes], concurrency: int, time_limit: float) -> Run:
    """Send ``requests`` over ``concurrency`` keep-alive connections, closed loop."""
    conns = [await Connection.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    position = 0
    deadline = time.monotonic() + time_limit

    async def worker(conn: Connection) -> None:
        nonlocal position
        while position < len(requests) and time.monotonic() < deadline:
            raw = requests[position]
            position += 1
            started = time.perf_counter()
            status, body = await conn.request(raw)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return Run(latencies, elapsed)


# --- the system under test -------------------------------------------------------------------


@dataclass
class System:
    redis: RedisServer
    postgres: PostgresServer
    upstream: subprocess.Popen[bytes]
    service: subprocess.Popen[bytes]
    upstream_port: int
    service_port: int

    def stop(self) -> None:
        for process in (self.service, self.upstream):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.redis.cleanup()
        self.postgres.cleanup()


def wait_http(port: int, timeout: float = 30) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port}")


def start(log_path: Path) -> System:
    redis = RedisServer()
    redis.start()
    postgres = PostgresServer()
    postgres.init()
    postgres.start()
    upstream_port, service_port = free_port(), free_port()
    upstream = subprocess.Popen(
        [
            sys.executable,
            str(SERVICE_DIR / "tests" / "fake_upstream.py"),
            "--port",
            str(upstream_port),
        ],
        cwd=SERVICE_DIR,
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROMPT_")},
        "PROMPT_HOST": "127.0.0.1",
        "PROMPT_PORT": str(service_port),
        "PROMPT_UPSTREAM_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        "PROMPT_UPSTREAM_API_KEY": DEFAULT_API_KEY,
        "PROMPT_REDIS_URL": redis.url,
        "PROMPT_DATABASE_URL": postgres.dsn,
        "PROMPT_DEFAULT_MODEL": "bench-model",
        "PROMPT_MAX_IN_FLIGHT": "1024",
        "PROMPT_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info"),
    }
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=SERVICE_DIR, env=env, stdout=log, stderr=log
        )
    system = System(redis, postgres, upstream, service, upstream_port, service_port)
    try:
        wait_http(upstream_port)
        wait_http(service_port)
    except Exception:
        system.stop()
        raise
    return system


# --- the measurements ------------------------------------------------------------------------


def direct_request(prompt: str) -> bytes:
    return encode(
        "/v1/chat/completions",
        {"model": "bench-model", "messages": [{"role": "user", "content": prompt}]},
        {"Authorization": f"Bearer {DEFAULT_API_KEY}"},
    )


def service_request(prompt: str, *, cache: bool) -> bytes:
    body: dict[str, object] = {
        "model": "bench-model",
        "messages": [{"role": "user", "content": prompt}],
    }
    if cache:
        body["temperature"] = 0
        return encode("/v1/chat/completions", body, {})
    return encode("/v1/chat/completions", body, {"Cache-Control": "no-store"})


async def added_latency(
    system: System, concurrency: int, blocks: int, per_block: int
) -> tuple[Run, Run]:
    """Alternate direct and proxied blocks; return all direct and all proxied samples."""
    direct = Run([], 0.0)
    proxied = Run([], 0.0)
    d_raw = [direct_request(PROMPT)] * per_block
    s_raw = [service_request(PROMPT, cache=False)] * per_block
    for _ in range(blocks):
        d = await drive(system.upstream_port, d_raw, concurrency, 60)
        s = await drive(system.service_port, s_raw, concurrency, 60)
        direct.latencies += d.latencies
        direct.seconds += d.seconds
        proxied.latencies += s.latencies
        proxied.seconds += s.seconds
    return direct, proxied


def rss_mib(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 2**20


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def measure(system: System, quick: bool) -> None:
    scale = 0.2 if quick else 1.0
    load_before = os.getloadavg()[0]
    proc = psutil.Process(system.service.pid)
    rows: list[tuple[str, str]] = []

    # Warm-up: every code path once, JIT-free Python but caches, pools and allocators settle.
    warm = [service_request(f"warm {i % 50}", cache=i % 2 == 0) for i in range(1000)]
    await drive(system.service_port, warm, 8, 60)
    await drive(system.upstream_port, [direct_request(PROMPT)] * 200, 1, 30)
    rss_warm = rss_mib(proc)
    counted = 0  # requests to the service after warm-up

    blocks, per_block = max(2, int(10 * scale)), 300
    cpu_before = cpu_seconds(proc)
    d1, s1 = await added_latency(system, 1, blocks, per_block)
    cpu_proxied = (cpu_seconds(proc) - cpu_before) / len(s1.latencies)
    counted += len(s1.latencies)
    d32, s32 = await added_latency(system, 32, max(2, int(6 * scale)), 1000)
    counted += len(s32.latencies)

    hit_raw = [service_request(PROMPT, cache=True)] * int(3000 * scale)
    await drive(system.service_port, hit_raw[:10], 1, 10)  # fill the entry
    cpu_before = cpu_seconds(proc)
    hits = await drive(system.service_port, hit_raw, 1, 60)
    cpu_hit = (cpu_seconds(proc) - cpu_before) / len(hits.latencies)
    counted += len(hits.latencies) + 10

    peak_proxy = await drive(
        system.service_port, [service_request(PROMPT, cache=False)] * int(8000 * scale), 64, 60
    )
    counted += len(peak_proxy.latencies)
    peak_hits = await drive(
        system.service_port, [service_request(PROMPT, cache=True)] * int(8000 * scale), 64, 60
    )
    counted += len(peak_hits.latencies)

    # Memory: a run of its own of 10,000 requests (after warm-up and the phases above),
    # sampled every 1,000; a third are new cache entries (unique prompts), a third hits, a
    # third bypass the cache. Flat means the samples stop growing once pools and caches
    # have settled, whatever the number of requests.
    memory_requests = 10_000 if not quick else 3_000
    samples = [rss_mib(proc)]
    serial = 0
    while serial < memory_requests:
        batch = []
        for _ in range(min(1000, memory_requests - serial)):
            serial += 1
            kind = serial % 3
            if kind == 0:
                batch.append(service_request(f"unique prompt {serial}", cache=True))
            elif kind == 1:
                batch.append(service_request(PROMPT, cache=True))
            else:
                batch.append(service_request(PROMPT, cache=False))
        await drive(system.service_port, batch, 16, 60)
        samples.append(rss_mib(proc))
    counted += serial
    if quick:
        rows.append(("note", f"quick run: memory over {memory_requests:,} requests"))

    def add(label: str, value: str) -> None:
        rows.append((label, value))

    add("direct p50 / p99, c=1 (ms)", f"{d1.pct(0.5):.3f} / {d1.pct(0.99):.3f}")
    add("service p50 / p99, c=1 (ms)", f"{s1.pct(0.5):.3f} / {s1.pct(0.99):.3f}")
    add(
        "added latency p50 / p99, c=1 (ms)",
        f"{s1.pct(0.5) - d1.pct(0.5):.3f} / {s1.pct(0.99) - d1.pct(0.99):.3f}",
    )
    add("direct p50 / p99, c=32 (ms)", f"{d32.pct(0.5):.3f} / {d32.pct(0.99):.3f}")
    add("service p50 / p99, c=32 (ms)", f"{s32.pct(0.5):.3f} / {s32.pct(0.99):.3f}")
    add(
        "added latency p50 / p99, c=32 (ms)",
        f"{s32.pct(0.5) - d32.pct(0.5):.3f} / {s32.pct(0.99) - d32.pct(0.99):.3f}",
    )
    add("cache hit p50 / p99, c=1 (ms)", f"{hits.pct(0.5):.3f} / {hits.pct(0.99):.3f}")
    add("service CPU per proxied request (ms)", f"{cpu_proxied * 1000:.3f}")
    add("service CPU per cache hit (ms)", f"{cpu_hit * 1000:.3f}")
    add("max req/s, proxied (1 worker, c=64)", f"{peak_proxy.rps:.0f}")
    add("max req/s, cache hits (1 worker, c=64)", f"{peak_hits.rps:.0f}")
    add("direct upstream req/s at c=32", f"{d32.rps:.0f}")
    add("RSS after warm-up (MiB)", f"{rss_warm:.1f}")
    add("RSS every 1,000 requests (MiB)", " ".join(f"{rss:.1f}" for rss in samples))
    add(f"RSS after {memory_requests:,} more requests (MiB)", f"{samples[-1]:.1f}")
    add(f"RSS growth over those {memory_requests:,} (MiB)", f"{samples[-1] - samples[0]:+.1f}")
    add("RSS growth since warm-up (MiB)", f"{samples[-1] - rss_warm:+.1f}")
    add("requests served after warm-up", f"{counted:,}")
    add("load average before / after", f"{load_before:.2f} / {os.getloadavg()[0]:.2f}")

    width = max(len(label) for label, _ in rows)
    print(f"\nprompt service benchmark  ({os.cpu_count()} CPUs, loopback, 1 uvicorn worker)")
    print("-" * (width + 40))
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 1/5)")
    parser.add_argument(
        "--service-log",
        type=Path,
        default=Path("/tmp/prompt-service-bench.log"),  # noqa: S108
    )
    args = parser.parse_args()
    system = start(args.service_log)
    try:
        runner: Callable[[Coroutine[Any, Any, None]], None]
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        runner(asyncio.wait_for(measure(system, args.quick), timeout=600))
    finally:
        system.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
