"""Batched writes of check results into check_history, with an on-disk spool when the DB is down.

Path of a result: `submit()` appends it to an in-memory buffer; the writer task flushes the buffer
every `flush_interval_s` (or as soon as `batch_size` rows wait) by COPY into a temp table and one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` into check_history, in one transaction. If that fails
because the database is unreachable, the batch goes to the spool (spool.py) and the writer stops
trying the database for `retry_interval_s`; once a write works again the spool is replayed,
oldest segment first. A batch the database rejects for its content (not connectivity) is retried
row by row so one bad row cannot hold back the others; the bad rows are logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from lighthouse.config import StorageConfig
from lighthouse.logs import event
from lighthouse.metrics import Metrics
from lighthouse.models import CheckResult
from lighthouse.spool import Spool

log = logging.getLogger("lighthouse.storage")

COLUMNS = ("time", "subscription_id", "status", "http_status", "latency_ms", "error_code",
           "error_message", "timings", "response_snippet", "cert_days_left", "alert_triggered")
_COLS = ", ".join(COLUMNS)
STAGE_DDL = (f"CREATE TEMP TABLE IF NOT EXISTS lh_stage AS SELECT {_COLS} FROM check_history "
             "WITH NO DATA")
INSERT_SQL = (f"INSERT INTO check_history ({_COLS}) SELECT {_COLS} FROM lh_stage "
              "ON CONFLICT DO NOTHING")
INSERT_ONE_SQL = (f"INSERT INTO check_history ({_COLS}) VALUES "
                  f"({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT DO NOTHING")


def result_to_row(r: CheckResult) -> dict[str, Any]:
    """A JSON-able check_history row (the spool stores exactly this)."""
    snippet = r.response_snippet[:1024] if r.response_snippet else r.response_snippet
    return {
        "time": r.time.isoformat(),
        "subscription_id": str(r.subscription_id),
        "status": str(r.status),
        "http_status": r.http_status,
        "latency_ms": r.latency_ms,
        "error_code": r.error_code[:50] if r.error_code else r.error_code,
        "error_message": r.error_message,
        "timings": r.timings or None,
        "response_snippet": snippet,
        "cert_days_left": r.cert_days_left,
        "alert_triggered": r.alert_triggered,
    }


def _copy_values(row: dict[str, Any]) -> tuple[Any, ...]:
    timings = row.get("timings")
    return tuple(Jsonb(timings) if k == "timings" and timings is not None else row.get(k)
                 for k in COLUMNS)


def _is_connectivity(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | OSError)


@dataclass
class WriterStats:
    submitted: int = 0
    inserted: int = 0  # new rows in check_history
    duplicates: int = 0  # rows already there (replays)
    spooled: int = 0  # rows that went to the spool
    replayed: int = 0  # rows read back from the spool and written
    rejected: int = 0  # rows the database refused for their content


class ResultWriter:
    def __init__(self, dsn: str, cfg: StorageConfig, metrics: Metrics | None = None,
                 connect_timeout_s: float = 5.0) -> None:
        self.dsn = dsn
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self.connect_timeout_s = connect_timeout_s
        self.spool = Spool(Path(cfg.spool_dir), cfg.spool_max_bytes, cfg.spool_segment_bytes,
                           fsync=cfg.spool_fsync == "batch",
                           min_free_bytes=cfg.spool_min_free_bytes)
        self.stats = WriterStats()
        self._buf: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._conn: psycopg.AsyncConnection | None = None
        self._db_down_until = 0.0
        self.db_ok: bool | None = None  # None until the first attempt
        self.on_reachable: Callable[[], None] | None = None  # called when writes work again
        self._lock = asyncio.Lock()
        self.metrics.write_buffer.set_function(lambda: len(self._buf))
        self.metrics.spool_bytes.set_function(lambda: self.spool.size_bytes)
        self.metrics.spool_rows.set_function(lambda: self.spool.rows)

    # -- producer side -----------------------------------------------------------------
    def submit(self, result: CheckResult) -> None:
        self._buf.append(result_to_row(result))
        self.stats.submitted += 1
        if len(self._buf) >= self.cfg.batch_size:
            self._wake.set()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    # -- writer task -------------------------------------------------------------------
    async def run(self) -> None:
        """Flush loop; returns after close()."""
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.flush_interval_s)
            self._wake.clear()
            if self._stopping:
                break
            try:
                await self.flush()
            except Exception:  # never let the writer die; the next round retries
                log.exception("writer round failed")

    async def close(self) -> None:
        """Final flush (database if reachable, else spool) and disconnect."""
        self._stopping = True
        self._wake.set()
        self._db_down_until = 0.0  # one last try at the database
        await self.flush(final=True)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def flush(self, final: bool = False) -> None:
        async with self._lock:
            while self._buf:
                batch = self._buf[: self.cfg.batch_size]
                del self._buf[: len(batch)]
                if not await self._write(batch):
                    await self._to_spool(batch)
            if self.spool and (final or time.monotonic() >= self._db_down_until):
                await self._replay()

    # -- internals ---------------------------------------------------------------------
    async def _to_spool(self, batch: list[dict[str, Any]]) -> None:
        kept = await asyncio.to_thread(self.spool.append, batch)
        self.stats.spooled += kept
        if kept < len(batch):
            self.metrics.spool_lost.inc(len(batch) - kept)

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.dsn, connect_timeout=max(1, int(self.connect_timeout_s)),
                application_name="lighthouse-writer")
            await self._conn.execute(STAGE_DDL)
            await self._conn.commit()
        return self._conn

    async def _write(self, batch: list[dict[str, Any]]) -> bool:
        """True if the batch is in the database (or rejected row by row); False to spool it."""
        if time.monotonic() < self._db_down_until:
            return False
        try:
            inserted = await self._copy_insert(batch)
        except Exception as exc:
            await self._drop_connection()
            if _is_connectivity(exc):
                self._mark_down(exc)
                return False
            event(log, "batch refused; retrying row by row", logging.WARNING,
                  rows=len(batch), error=type(exc).__name__, detail=str(exc).splitlines()[0])
            try:
                inserted = await self._insert_rows(batch)
            except Exception as exc2:
                await self._drop_connection()
                self._mark_down(exc2)
                return False
        self._mark_up()
        self.stats.inserted += inserted
        self.stats.duplicates += len(batch) - inserted
        self.metrics.rows_written.inc(inserted)
        return True

    async def _copy_insert(self, batch: list[dict[str, Any]]) -> int:
        conn = await self._connection()
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute("TRUNCATE lh_stage")
            async with cur.copy(f"COPY lh_stage ({_COLS}) FROM STDIN") as copy:
                for row in batch:
                    await copy.write_row(_copy_values(row))
            await cur.execute(INSERT_SQL)
            return max(cur.rowcount, 0)

    async def _insert_rows(self, batch: list[dict[str, Any]]) -> int:
        conn = await self._connection()
        inserted = 0
        async with conn.transaction(), conn.cursor() as cur:
            for row in batch:
                try:
                    async with conn.transaction():  # savepoint per row
                        await cur.execute(INSERT_ONE_SQL, _copy_values(row))
                        inserted += max(cur.rowcount, 0)
                except psycopg.Error as exc:
                    if _is_connectivity(exc):
                        raise
                    self.stats.rejected += 1
                    event(log, "row rejected by the database", logging.ERROR,
                          subscription_id=row.get("subscription_id"), time=row.get("time"),
                          error=type(exc).__name__, detail=str(exc).splitlines()[0])
        return inserted

    async def _replay(self) -> None:
        for path in self.spool.segments():
            rows = await asyncio.to_thread(self.spool.read, path)
            ok = True
            for i in range(0, len(rows), max(self.cfg.batch_size, 1000)):
                chunk = rows[i: i + max(self.cfg.batch_size, 1000)]
                if not await self._write(chunk):
                    ok = False
                    break
            if not ok:
                return  # the database went away again; keep the segment (replay is idempotent)
            self.stats.replayed += len(rows)
            self.spool.remove(path)
            event(log, "spool segment replayed", segment=path.name, rows=len(rows),
                  spool_rows_left=self.spool.rows)

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already broken; closing is best effort
                await self._conn.close()
            self._conn = None

    def _mark_down(self, exc: BaseException) -> None:
        self._db_down_until = time.monotonic() + self.cfg.retry_interval_s
        if self.db_ok is not False:
            event(log, "database unreachable; spooling results", logging.WARNING,
                  error=type(exc).__name__, detail=(str(exc).strip().splitlines() or [""])[-1])
        self.db_ok = False
        self.metrics.db_up.set(0)
        self.metrics.write_errors.inc()

    def _mark_up(self) -> None:
        if self.db_ok is False:
            event(log, "database reachable again", spool_rows=self.spool.rows)
            if self.on_reachable is not None:
                self.on_reachable()
        self.db_ok = True
        self.metrics.db_up.set(1)
