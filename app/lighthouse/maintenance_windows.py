"""Planned maintenance windows (sql/005_maintenance.sql): which monitors are in one now, for
the alert state machine (alerts held) and the status page (a notice for visitors).

The prober keeps the current and upcoming windows in memory, reloaded every `reload_s` (a
window added a minute before it starts is honoured on time); a failed reload keeps the last
known windows, so a database outage does not unmute anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg_pool import AsyncConnectionPool

from lighthouse.db.connect import one
from lighthouse.logs import event

log = logging.getLogger("lighthouse.maintenance")

CURRENT_SQL = """
SELECT w.id, w.subscription_id, s.name, w.starts_at, w.ends_at, w.note
FROM maintenance_windows w LEFT JOIN subscriptions s ON s.id = w.subscription_id
WHERE w.ends_at > %s ORDER BY w.starts_at, w.id
"""
ADD_SQL = """
INSERT INTO maintenance_windows (subscription_id, starts_at, ends_at, note)
VALUES (%s, %s, %s, %s) RETURNING id
"""


@dataclass(frozen=True, slots=True)
class Window:
    id: int
    subscription_id: uuid.UUID | None  # None: every monitor
    monitor: str | None
    starts_at: datetime
    ends_at: datetime
    note: str

    def covers(self, monitor_id: uuid.UUID, at: datetime) -> bool:
        return (self.subscription_id is None or self.subscription_id == monitor_id) \
            and self.starts_at <= at < self.ends_at

    def active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def current_and_upcoming(conn: psycopg.Connection, now: datetime | None = None) -> list[Window]:
    return [Window(*r) for r in conn.execute(CURRENT_SQL, (now or datetime.now(UTC),))]


def add(conn: psycopg.Connection, monitor_id: uuid.UUID | None, starts_at: datetime,
        ends_at: datetime, note: str) -> int:
    return int(one(conn, ADD_SQL, (monitor_id, starts_at, ends_at, note))[0])


def remove(conn: psycopg.Connection, window_id: int) -> bool:
    return conn.execute("DELETE FROM maintenance_windows WHERE id = %s RETURNING id",
                        (window_id,)).fetchone() is not None


class MaintenanceSchedule:
    def __init__(self, pool: AsyncConnectionPool, reload_s: float = 30.0) -> None:
        self.pool = pool
        self.reload_s = reload_s
        self.windows: list[Window] = []
        self._stop = asyncio.Event()

    def muted(self, monitor_id: uuid.UUID, at: datetime | None = None) -> bool:
        at = at or datetime.now(UTC)
        return any(w.covers(monitor_id, at) for w in self.windows)

    async def reload(self) -> bool:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(CURRENT_SQL, (datetime.now(UTC),))
                self.windows = [Window(*r) for r in await cur.fetchall()]
            return True
        except (psycopg.Error, OSError) as exc:
            event(log, "maintenance windows not reloaded; keeping the last known",
                  logging.WARNING, error=type(exc).__name__, windows=len(self.windows))
            return False

    async def run(self) -> None:
        while not self._stop.is_set():
            await self.reload()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.reload_s)

    def stop(self) -> None:
        self._stop.set()
