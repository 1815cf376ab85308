"""Incidents: the alert state machine's down -> up episodes, kept in the `incidents` table
(sql/004_incidents.sql) for the status page, the API and operators' notes.

The prober records each health change (lighthouse.alerting.state.Change) here; a background
task applies them in order. The database may be down exactly when incidents happen, so changes
wait in memory (bounded; the oldest are dropped and counted past `max_pending`) and are retried
every `retry_s`; each carries its own check time, so a late write is still exact. The SQL is
idempotent and converges whatever was missed: "down" opens an incident unless one is open
(a second prober, a replay), "up" closes whatever is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from lighthouse.alerting.state import Change, Health
from lighthouse.logs import event

log = logging.getLogger("lighthouse.incidents")

OPEN_SQL = """
INSERT INTO incidents (subscription_id, started_at, first_error_code, first_error)
VALUES (%s, %s, %s, %s)
ON CONFLICT (subscription_id) WHERE ended_at IS NULL DO NOTHING
"""
CLOSE_SQL = """
UPDATE incidents SET ended_at = greatest(%s, started_at)
WHERE subscription_id = %s AND ended_at IS NULL
"""
NOTE_SQL = """
UPDATE incidents SET note = %s, note_updated_at = now() WHERE id = %s RETURNING id
"""
LIST_SQL = """
SELECT i.id, i.subscription_id, s.name, i.started_at, i.ended_at, i.first_error_code,
       i.first_error, i.note
FROM incidents i JOIN subscriptions s ON s.id = i.subscription_id
WHERE (%(id)s::uuid IS NULL OR i.subscription_id = %(id)s)
  AND (i.ended_at IS NULL OR i.ended_at >= %(since)s)
ORDER BY (i.ended_at IS NULL) DESC, i.started_at DESC
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    subscription_id: uuid.UUID
    monitor: str
    started_at: datetime
    ended_at: datetime | None
    first_error_code: str | None
    first_error: str | None
    note: str | None

    @property
    def open(self) -> bool:
        return self.ended_at is None

    def duration_s(self, now: datetime) -> float:
        return ((self.ended_at or now) - self.started_at).total_seconds()


def recent(conn: psycopg.Connection, since: datetime, monitor_id: uuid.UUID | None = None,
           limit: int = 20) -> list[Incident]:
    """Open incidents first, then those that ended after `since`, newest first."""
    rows = conn.execute(LIST_SQL, {"id": monitor_id, "since": since, "limit": limit})
    return [Incident(*r) for r in rows.fetchall()]


def add_note(conn: psycopg.Connection, incident_id: int, note: str) -> bool:
    return conn.execute(NOTE_SQL, (note, incident_id)).fetchone() is not None


def _params(change: Change) -> tuple[str, tuple[Any, ...]]:
    if change.health is Health.DOWN:
        bad = change.first_bad
        return OPEN_SQL, (change.subscription_id, change.at, bad.error_code if bad else None,
                          (bad.error_message or "")[:1000] if bad else None)
    return CLOSE_SQL, (change.at, change.subscription_id)


class IncidentLog:
    def __init__(self, pool: AsyncConnectionPool, *, max_pending: int = 10_000,
                 retry_s: float = 5.0) -> None:
        self.pool = pool
        self.max_pending = max_pending
        self.retry_s = retry_s
        self._pending: deque[Change] = deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._flushing = asyncio.Lock()  # the loop and a final flush at shutdown: one at a time
        self.written = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, change: Change) -> None:
        if change.health is Health.UNKNOWN:
            return
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                event(log, "incident changes dropped (database down too long)",
                      logging.ERROR, dropped=self.dropped)
        self._pending.append(change)
        self._wake.set()

    async def flush(self) -> bool:
        """Apply pending changes in order; False (and keep the rest) if the database fails."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
        while self._pending:
            change = self._pending[0]
            sql, params = _params(change)
            try:
                async with self.pool.connection() as conn:
                    await conn.execute(sql, params)
            except psycopg.errors.ForeignKeyViolation:
                pass  # the monitor was deleted meanwhile: nothing to record
            except (psycopg.Error, OSError) as exc:
                event(log, "incident not recorded yet; will retry", logging.WARNING,
                      error=type(exc).__name__, pending=len(self._pending))
                return False
            self._pending.popleft()
            self.written += 1
        return True

    async def run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()
            if self._pending and not await self.flush():
                # database down: retry on a timer, not on every new change
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.retry_s)

    def stop(self) -> None:
        self._stopping = True
        self._stop.set()
        self._wake.set()
