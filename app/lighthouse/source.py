"""Where the scheduler's monitors come from: active subscriptions, kept current without restart.

LISTEN on `lighthouse_subscriptions` (a trigger NOTIFYs every insert/update/delete with the id):
each notification reloads that one subscription. A full reload every `reload_poll_s` catches
anything missed (notifications are lost while the connection is down). If the database is down
the scheduler keeps running the monitors it has and the source reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from lighthouse.checks.runner import SUPPORTED_TYPES
from lighthouse.logs import event
from lighthouse.metrics import Metrics
from lighthouse.models import Monitor
from lighthouse.monitor_cache import MonitorCache
from lighthouse.scheduler import Scheduler

log = logging.getLogger("lighthouse.source")

CHANNEL = "lighthouse_subscriptions"
PROBED_TYPES = SUPPORTED_TYPES  # every type run_check knows
STARTUP_MARGIN_S = 2.0
CHUNK = 1000  # rows decoded between event-loop yields
CACHE_EVERY_S = 5.0  # the local monitor cache is rewritten at most this often
_WHERE = """
 WHERE status = 'active'
   AND target_type::text = ANY(%(types)s)
   AND (expires_at IS NULL OR expires_at > now())
"""
_COLS = ("id, name, target_type::text, target_config, check_interval_seconds, updated_at, "
         "locations, quorum")
LOAD_ALL_SQL = f"SELECT {_COLS} FROM subscriptions {_WHERE}"
LOAD_IDS_SQL = f"SELECT {_COLS} FROM subscriptions {_WHERE} AND id = ANY(%(ids)s)"
# The periodic poll reads only (id, updated_at) and fetches full rows for what changed:
# decoding 50,000 configs a minute would cost CPU and stall due checks.
# With the locations: a prober in a fleet keeps only the monitors it owns (lighthouse.fleet).
VERSIONS_SQL = f"SELECT id, updated_at, locations FROM subscriptions {_WHERE}"


def monitor_from_row(row: tuple[Any, ...]) -> Monitor:
    mid, name, typ, config, interval = row[:5]
    locations, quorum = (row[6], row[7]) if len(row) > 7 else (None, None)
    return Monitor(id=mid, name=name, type=typ, config=dict(config or {}), interval_s=interval,
                   locations=_locations(locations), quorum=quorum)


def _locations(value: Any) -> tuple[str, ...] | None:
    return tuple(value) if value else None


def load_active(conn: psycopg.Connection) -> list[Monitor]:
    """All active, probe-able monitors (sync; CLI, status page and tests)."""
    return [monitor_from_row(r) for r in conn.execute(LOAD_ALL_SQL, {"types": list(PROBED_TYPES)})]


class MonitorSource:
    def __init__(self, dsn: str, scheduler: Scheduler, *, poll_s: float = 60.0,
                 connect_timeout_s: float = 5.0, metrics: Metrics | None = None,
                 cache: MonitorCache | None = None) -> None:
        self.dsn = dsn
        self.cache = cache
        self._cache_dirty = False
        self._cache_saved = 0.0
        self.scheduler = scheduler
        self.poll_s = poll_s
        self.connect_timeout_s = connect_timeout_s
        self.metrics = metrics or scheduler.metrics
        self.listening = False
        self.last_reload: float | None = None  # monotonic
        self.notifications = 0
        self._versions: dict[uuid.UUID, Any] = {}  # id -> updated_at last loaded
        self._stopping = False
        # In a fleet: does this prober own the monitor (id, locations)? Others are not loaded.
        # resync() asks for a full reload when ownership moved (a prober joined or died).
        self.owns: Callable[[uuid.UUID, tuple[str, ...] | None], bool] | None = None
        self._resync = False
        # Reconnect backoff (doubling); wake() ends a wait early, e.g. when the writer has
        # just reached the database again, so LISTEN (and /health "ok") follows within a second
        # instead of up to max_backoff_s later.
        self.first_backoff_s = 1.0
        self.max_backoff_s = 30.0
        self._retry_now = asyncio.Event()

    async def _connect(self) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, connect_timeout=max(1, int(self.connect_timeout_s)),
            application_name="lighthouse-source")

    async def _apply(self, conn: psycopg.AsyncConnection, ids: list[uuid.UUID], *,
                     run_new_now: bool, not_before: float = 0.0) -> int:
        """Fetches these subscriptions and upserts the active ones (chunked, yielding)."""
        n = 0
        for i in range(0, len(ids), CHUNK):
            cur = await conn.execute(LOAD_IDS_SQL, {"types": list(PROBED_TYPES),
                                                    "ids": ids[i:i + CHUNK]})
            for row in await cur.fetchall():
                if self.owns is not None and not self.owns(row[0], _locations(row[6])):
                    continue
                self.scheduler.upsert(monitor_from_row(row), run_now=run_new_now,
                                      not_before=not_before)
                self._versions[row[0]] = row[5]
                n += 1
            await asyncio.sleep(0)
        return n

    async def _versions_now(self, conn: psycopg.AsyncConnection) -> dict[uuid.UUID, Any]:
        cur = await conn.execute(VERSIONS_SQL, {"types": list(PROBED_TYPES)})
        out: dict[uuid.UUID, Any] = {}
        owns = self.owns
        while rows := await cur.fetchmany(CHUNK * 5):
            for mid, version, locations in rows:
                if owns is None or owns(mid, _locations(locations)):
                    out[mid] = version
            await asyncio.sleep(0)
        return out

    async def sync(self, conn: psycopg.AsyncConnection, trigger: str, *,
                   run_new_now: bool = True, not_before: float = 0.0) -> dict[str, int]:
        """Makes the scheduler match the database: removes what is gone or inactive, loads
        what is new or changed since it was last read (by updated_at)."""
        current = await self._versions_now(conn)
        removed = [mid for mid in self.scheduler.ids() if mid not in current]
        for mid in removed:
            self.scheduler.remove(mid)
            self._versions.pop(mid, None)
        stale = [mid for mid, v in current.items()
                 if self._versions.get(mid) != v or not self.scheduler.has(mid)]
        loaded = await self._apply(conn, stale, run_new_now=run_new_now, not_before=not_before)
        self.last_reload = time.monotonic()
        self.metrics.reloads.labels(trigger).inc()
        diff = {"loaded": loaded, "removed": len(removed)}
        if loaded or removed or trigger == "initial":
            self._cache_dirty = True
            event(log, "monitors reloaded", trigger=trigger, total=len(current), **diff)
        return diff

    async def initial_load(self) -> int:
        """Loads every active monitor before the scheduler starts. First slots start
        STARTUP_MARGIN_S from now, so what start-up still has to do cannot make them late."""
        async with await self._connect() as conn:
            await self.sync(conn, "initial", run_new_now=False,
                            not_before=self.scheduler.clock() + STARTUP_MARGIN_S)
        await self.save_cache(force=True)
        return self.scheduler.monitor_count

    async def save_cache(self, force: bool = False) -> None:
        """Writes the scheduled set to the local cache if it changed (and is due)."""
        if self.cache is None or not self._cache_dirty:
            return
        if not force and time.monotonic() - self._cache_saved < CACHE_EVERY_S:
            return
        monitors = self.scheduler.monitors()
        self._cache_dirty = False
        self._cache_saved = time.monotonic()
        try:
            await asyncio.to_thread(self.cache.save, monitors)
        except OSError as exc:  # a full disk must not stop the source; try again later
            self._cache_dirty = True
            event(log, "monitor cache not written", logging.WARNING,
                  error=exc.strerror or type(exc).__name__)

    async def full_reload(self, conn: psycopg.AsyncConnection, trigger: str) -> None:
        await self.sync(conn, trigger)

    async def reload_one(self, conn: psycopg.AsyncConnection, monitor_id: uuid.UUID) -> None:
        self.metrics.reloads.labels("notify").inc()
        self._cache_dirty = True
        if await self._apply(conn, [monitor_id], run_new_now=True) == 0:
            self._versions.pop(monitor_id, None)
            if self.scheduler.remove(monitor_id):
                event(log, "monitor removed", monitor=monitor_id)
        else:
            event(log, "monitor updated", monitor=monitor_id)

    async def run(self) -> None:
        """LISTEN loop with poll fallback; returns when stop() is called."""
        backoff = self.first_backoff_s
        while not self._stopping:
            try:
                async with await self._connect() as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    backoff = self.first_backoff_s
                    # Changes made while not listening are caught by this reload; right after
                    # the initial load it would only repeat it.
                    if self.last_reload is None or time.monotonic() - self.last_reload > 5:
                        await self.full_reload(conn, "connect")
                    while not self._stopping:
                        ids: set[uuid.UUID] = set()
                        wait = max(0.0, min(1.0, self.poll_s - (time.monotonic()
                                                                 - (self.last_reload or 0))))
                        async for note in conn.notifies(timeout=wait, stop_after=1000):
                            self.notifications += 1
                            try:
                                ids.add(uuid.UUID(json.loads(note.payload)["id"]))
                            except (ValueError, KeyError, TypeError):
                                event(log, "bad notification ignored", logging.WARNING,
                                      payload=note.payload[:200])
                        for mid in ids:
                            await self.reload_one(conn, mid)
                        if self._resync:
                            self._resync = False
                            await self.full_reload(conn, "ownership")
                        elif time.monotonic() - (self.last_reload or 0) >= self.poll_s:
                            await self.full_reload(conn, "poll")
                        await self.save_cache()
            except (psycopg.Error, OSError) as exc:
                self.listening = False
                if self._stopping:
                    break
                event(log, "monitor source disconnected; retrying", logging.WARNING,
                      error=type(exc).__name__, retry_in_s=backoff)
                self._retry_now.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry_now.wait(), backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
        self.listening = False

    def resync(self) -> None:
        """Ownership changed: reload everything within a second (loop thread)."""
        self._resync = True
        self._retry_now.set()

    def wake(self) -> None:
        """Retry a lost connection now rather than at the end of the backoff (loop thread)."""
        self._retry_now.set()

    def stop(self) -> None:
        self._stopping = True
        self._retry_now.set()
