"""Batched writes of check results into check_history, with an on-disk spool when the DB is down.

Path of a result: `submit()` appends it to an in-memory buffer; the writer task flushes the buffer
every `flush_interval_s` (or as soon as `batch_size` rows wait) by COPY into a temp table and one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` into check_history, in one transaction. If that fails
because the database is unreachable, the batch goes to the spool (spool.py) and the writer stops
trying the database for `retry_interval_s`; once a write works again the spool is replayed,
oldest segment first. A batch the database rejects for its content (not connectivity) is retried
row by row so one bad row cannot hold back the others; the bad rows are logged and counted.

The prober runs the writer on its own event loop in its own thread (WriterThread), so a check
loop saturated with checks cannot starve the writes, and the buffer is bounded: when the database
is slower than the checks, the oldest rows beyond `max_buffered_rows` are spilled to the spool
(replayed once the writer has caught up) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
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
           "error_message", "timings", "response_snippet", "cert_days_left", "alert_triggered",
           "location")
# What a spooled row written before a column existed means by its absence.
_ABSENT = {"location": ""}
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
        "location": r.location,
    }


def _copy_values(row: dict[str, Any]) -> tuple[Any, ...]:
    timings = row.get("timings")
    return tuple(Jsonb(timings) if k == "timings" and timings is not None
                 else row.get(k, _ABSENT.get(k)) for k in COLUMNS)


def _is_connectivity(exc: BaseException) -> bool:
    """The database cannot take rows now (rows spool and replay), as opposed to refusing a
    row's content. A read-only server counts: a standby reached by mistake, or a source made
    read-only for a move (lighthouse_ops.dbops.move)."""
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | OSError
                      | psycopg.errors.ReadOnlySqlTransaction)


@dataclass
class WriterStats:
    submitted: int = 0
    inserted: int = 0  # new rows in check_history
    duplicates: int = 0  # rows already there (replays)
    spooled: int = 0  # rows that went to the spool
    replayed: int = 0  # rows read back from the spool and written
    rejected: int = 0  # rows the database refused for their content
    spilled: int = 0  # rows moved to the spool because the buffer was full (writer behind)


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
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop run() is on
        self._loop_thread: int | None = None
        self._wake_pending = False
        self.metrics.write_buffer.set_function(lambda: len(self._buf))
        self.metrics.spool_bytes.set_function(lambda: self.spool.size_bytes)
        self.metrics.spool_rows.set_function(lambda: self.spool.rows)

    # -- producer side -----------------------------------------------------------------
    def submit(self, result: CheckResult) -> None:
        """Safe from any thread: list.append is atomic, and the flush only slices and deletes
        from the front, so rows appended meanwhile stay."""
        self._buf.append(result_to_row(result))
        self.stats.submitted += 1
        if len(self._buf) >= self.cfg.batch_size and not self._wake_pending:
            self._wake_pending = True
            loop = self._loop
            if loop is None or threading.get_ident() == self._loop_thread:
                self._wake.set()
            else:
                with contextlib.suppress(RuntimeError):  # loop closed: close() flushed already
                    loop.call_soon_threadsafe(self._wake.set)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    # -- writer task -------------------------------------------------------------------
    async def run(self) -> None:
        """Flush loop; returns after close()."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.flush_interval_s)
            self._wake.clear()
            self._wake_pending = False
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
            await self._spill_excess()
            while self._buf:
                batch = self._buf[: self.cfg.batch_size]
                del self._buf[: len(batch)]
                if not await self._write(batch):
                    await self._to_spool(batch)
                await self._spill_excess()
            # Replay only once caught up: replaying while behind would just move the backlog.
            caught_up = len(self._buf) < self.cfg.batch_size
            if self.spool and (final or (caught_up and time.monotonic() >= self._db_down_until)):
                await self._replay()

    async def _spill_excess(self) -> None:
        excess = len(self._buf) - max(self.cfg.max_buffered_rows, self.cfg.batch_size)
        if excess <= 0:
            return
        oldest = self._buf[:excess]
        del self._buf[: len(oldest)]
        self.stats.spilled += len(oldest)
        self.metrics.write_spilled.inc(len(oldest))
        if self.stats.spilled == len(oldest) or self.stats.spilled % 100_000 < len(oldest):
            event(log, "writer behind; spilling the oldest results to the spool",
                  logging.WARNING, rows=len(oldest), spilled_total=self.stats.spilled,
                  buffered=len(self._buf))
        await self._to_spool(oldest)

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


class WriterThread:
    """A ResultWriter on its own event loop in its own thread.

    The check loop at its limit gives every other task on it a turn only between thousands of
    checks; measured end to end, a writer sharing that loop fell behind at 2,000 checks/s with
    an ever-growing buffer. In its own thread the writer gets the interpreter every switch
    interval (5 ms) whatever the check loop does, and its database I/O releases the GIL.
    """

    def __init__(self, writer: ResultWriter) -> None:
        self.writer = writer
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._task = loop.create_task(self.writer.run(), name="lh-writer")
            self._task.add_done_callback(self._ended)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()  # until close() has flushed and stops it
            finally:
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._thread = threading.Thread(target=run, name="lh-writer", daemon=True)
        self._thread.start()
        ready.wait(10)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:  # run() catches per round
            log.error("writer stopped", exc_info=task.exception())

    @property
    def died(self) -> bool:
        """Started, and its flush loop ended though close() was not asked for."""
        return (self._task is not None and self._task.done()
                and not self.writer._stopping)

    async def _close_then_stop(self) -> None:
        try:
            await self.writer.close()
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)
        finally:
            asyncio.get_running_loop().stop()

    async def close(self) -> None:
        """Final flush (database if reachable, else spool) on the writer's loop, then join."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            await self.writer.close()  # never started: flush from here
            return
        done = asyncio.run_coroutine_threadsafe(self._close_then_stop(), loop)
        await asyncio.wrap_future(done)
        await asyncio.to_thread(thread.join, 30)
