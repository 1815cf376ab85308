"""Running the rollup refresh (the SQL lives in sql/003_rollups.sql)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from lighthouse.db.connect import one

log = logging.getLogger("lighthouse.db.rollups")

DEFAULT_LATE_HORIZON = timedelta(hours=2)
DEFAULT_BACKFILL = timedelta(days=100)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    rolled_until: datetime  # hourly rollups are complete below this instant
    hourly_rows: int


def refresh_rollups(conn: psycopg.Connection, late_horizon: timedelta = DEFAULT_LATE_HORIZON,
                    upto: datetime | None = None,
                    backfill: timedelta = DEFAULT_BACKFILL) -> RefreshResult:
    """One incremental, idempotent refresh in its own transaction (safe beside ingest and
    beside another refresh, which waits for the advisory lock)."""
    with conn.transaction():
        row = one(conn, "SELECT rolled_until, hourly_rows"
                        " FROM lh_refresh_rollups(%s, coalesce(%s, now()), %s)",
                  (late_horizon, upto, backfill))
    result = RefreshResult(row[0], row[1])
    log.info("rollups refreshed rolled_until=%s hourly_rows=%d", result.rolled_until.isoformat(),
             result.hourly_rows)
    return result


def watermark(conn: psycopg.Connection) -> datetime | None:
    row = conn.execute(
        "SELECT rolled_until FROM rollup_watermarks WHERE name = 'check_history'").fetchone()
    return row[0] if row else None
