"""Usage ledger in PostgreSQL: one row per completion request.

Requests never wait for PostgreSQL. ``record`` appends to an in-memory buffer of at most
``ledger_max_pending`` rows; a background task writes batches with COPY. While PostgreSQL is
down the rows stay pending (retried with backoff); when the buffer is full new rows are
dropped and counted in ``prompt_service_ledger_rows_dropped_total{reason="pending_full"}``.
On shutdown the buffer is flushed for at most ``flush_timeout`` seconds; what is left is
counted with ``reason="shutdown"``. A row PostgreSQL refuses as data (which the API's
validation should never let through) is dropped alone, counted with ``reason="invalid"``,
so it cannot block the rows after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg

from app.core.config import Settings
from app.core.metrics import Metrics

logger = logging.getLogger(__name__)

TABLE = "usage_ledger"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id                BIGSERIAL PRIMARY KEY,
    ts                TIMESTAMPTZ NOT NULL,
    request_id        TEXT NOT NULL,
    service           TEXT NOT NULL,
    route             TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms        DOUBLE PRECISION NOT NULL,
    cached            BOOLEAN NOT NULL,
    stream            BOOLEAN NOT NULL,
    status            TEXT NOT NULL,
    http_status       SMALLINT NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_service_ts ON {TABLE} (service, ts);
"""
# Replicas starting together must not race on CREATE TABLE IF NOT EXISTS.
_SCHEMA_LOCK = 0x70726F6D  # "prom"


class LedgerRow(NamedTuple):
    """One row; a tuple, so COPY takes it as is."""

    ts: dt.datetime
    request_id: str
    service: str
    route: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    cached: bool
    stream: bool
    status: str
    http_status: int


COLUMNS = LedgerRow._fields


@dataclass(frozen=True, slots=True)
class UsageTotals:
    period: str
    model: str
    requests: int
    cached_requests: int
    failed_requests: int
    prompt_tokens: int
    completion_tokens: int


class LedgerUnavailableError(Exception):
    pass


class UsageLedger:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._pending: deque[LedgerRow] = deque()
        self._wakeup = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._schema_ready = False
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._failing_since: float | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="ledger-writer")

    def record(self, row: LedgerRow) -> None:
        """Queue a row; never blocks, never raises."""
        if len(self._pending) >= self._settings.ledger_max_pending:
            self._metrics.ledger_dropped.labels(reason="pending_full").inc()
            return
        self._pending.append(row)
        self._metrics.ledger_pending.set(len(self._pending))
        if len(self._pending) >= self._settings.ledger_batch_size:
            self._wakeup.set()

    async def close(self, flush_timeout: float) -> None:
        self._closing = True
        self._wakeup.set()
        if self._writer is not None:
            try:
                await asyncio.wait_for(self._writer, timeout=flush_timeout)
            except TimeoutError:
                pass
            except Exception:  # the writer logs its own failures
                logger.exception("ledger writer failed")
        if self._pending:
            self._metrics.ledger_dropped.labels(reason="shutdown").inc(len(self._pending))
            logger.error("ledger rows lost at shutdown", extra={"rows": len(self._pending)})
            self._pending.clear()
            self._metrics.ledger_pending.set(0)
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=2)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                self._pool.terminate()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self._settings.database_url.get_secret_value(),
                min_size=0,
                max_size=4,
                timeout=self._settings.database_connect_timeout_seconds,
                command_timeout=10,
                max_inactive_connection_lifetime=60,
            )
        pool = self._pool
        if not self._schema_ready:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await conn.execute(SCHEMA)
            self._schema_ready = True
        return pool

    async def _write_loop(self) -> None:
        backoff = 0.1
        while True:
            if not self._pending:
                if self._closing:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=self._settings.ledger_flush_interval_seconds
                    )
                self._wakeup.clear()
                continue
            if not self._closing and len(self._pending) < self._settings.ledger_batch_size:
                # Let a batch gather, but never hold a row longer than the flush interval.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=self._settings.ledger_flush_interval_seconds
                    )
                self._wakeup.clear()
            try:
                await self._flush_batch()
            except asyncpg.DataError:
                # A row PostgreSQL refuses would block every later one: find it, drop it.
                await self._flush_rows_one_by_one()
            except Exception as exc:  # any other DB failure: keep rows, retry later
                self._metrics.ledger_write_errors.inc()
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                    logger.error(
                        "ledger write failed, rows kept pending",
                        extra={"error": type(exc).__name__, "pending": len(self._pending)},
                    )
                if self._closing:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._settings.ledger_retry_max_seconds)
            else:
                backoff = 0.1
                if self._failing_since is not None:
                    logger.info(
                        "ledger writes recovered",
                        extra={"outage_seconds": round(time.monotonic() - self._failing_since, 1)},
                    )
                    self._failing_since = None

    async def _flush_batch(self) -> None:
        size = min(len(self._pending), self._settings.ledger_batch_size)
        batch = [self._pending[i] for i in range(size)]
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._settings.database_connect_timeout_seconds) as conn:
            await conn.copy_records_to_table(TABLE, records=batch, columns=COLUMNS)
        for _ in range(size):
            self._pending.popleft()
        self._metrics.ledger_written.inc(size)
        self._metrics.ledger_pending.set(len(self._pending))

    async def _flush_rows_one_by_one(self) -> None:
        size = min(len(self._pending), self._settings.ledger_batch_size)
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._settings.database_connect_timeout_seconds) as conn:
            for _ in range(size):
                row = self._pending[0]
                try:
                    await conn.copy_records_to_table(TABLE, records=[row], columns=COLUMNS)
                except asyncpg.DataError as exc:
                    self._metrics.ledger_dropped.labels(reason="invalid").inc()
                    logger.error(
                        "ledger row refused by PostgreSQL, dropped",
                        extra={"error": type(exc).__name__, "request_id": row.request_id},
                    )
                else:
                    self._metrics.ledger_written.inc()
                self._pending.popleft()
        self._metrics.ledger_pending.set(len(self._pending))

    async def ping(self) -> bool:
        try:
            pool = await self._get_pool()
            async with pool.acquire(timeout=self._settings.database_connect_timeout_seconds) as c:
                await c.fetchval("SELECT 1")
        except Exception:  # readiness only reports
            return False
        return True

    async def usage(
        self,
        service: str,
        period: str,
        since: dt.date | None,
        until: dt.date | None,
    ) -> list[UsageTotals]:
        """Totals per (period, model). Tokens count upstream calls only (cache hits are free)."""
        unit = "month" if period == "month" else "day"
        fmt = "YYYY-MM" if unit == "month" else "YYYY-MM-DD"
        conditions = ["service = $1"]
        args: list[Any] = [service]
        if since is not None:
            args.append(dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC))
            conditions.append(f"ts >= ${len(args)}")
        if until is not None:
            args.append(dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))
            conditions.append(f"ts < ${len(args)}")
        query = f"""
            SELECT to_char(date_trunc('{unit}', ts AT TIME ZONE 'UTC'), '{fmt}') AS period,
                   model,
                   count(*) AS requests,
                   count(*) FILTER (WHERE cached) AS cached_requests,
                   count(*) FILTER (WHERE status <> 'ok') AS failed_requests,
                   coalesce(sum(prompt_tokens) FILTER (WHERE NOT cached), 0) AS prompt_tokens,
                   coalesce(sum(completion_tokens) FILTER (WHERE NOT cached), 0)
                       AS completion_tokens
            FROM {TABLE}
            WHERE {" AND ".join(conditions)}
            GROUP BY 1, 2
            ORDER BY 1, 2
        """  # noqa: S608  # only our own constants are interpolated; values are parameters
        try:
            pool = await self._get_pool()
            async with pool.acquire(timeout=self._settings.database_connect_timeout_seconds) as c:
                records = await c.fetch(query, *args)
        except Exception as exc:
            logger.warning("usage query failed", extra={"error": type(exc).__name__})
            raise LedgerUnavailableError from None
        return [
            UsageTotals(
                period=r["period"],
                model=r["model"],
                requests=r["requests"],
                cached_requests=r["cached_requests"],
                failed_requests=r["failed_requests"],
                prompt_tokens=int(r["prompt_tokens"]),
                completion_tokens=int(r["completion_tokens"]),
            )
            for r in records
        ]
