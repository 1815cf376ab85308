"""Packing old raw history: one row per monitor, UTC hour and location (sql/008_compaction.sql).

On vanilla PostgreSQL and the Apache edition each UTC day older than `compact_after` (and
below the rollup watermark, so rollups were made from the raw rows) is moved in one
transaction: lh_pack_range() moves its rows, then the emptied day partition is truncated
(vanilla) or its chunk dropped (Apache), so the disk is free at once rather than after a
VACUUM. A run stops after `max_days` days; the next one carries on from the oldest raw day
left, so converting an existing 90-day history happens in batches and survives interruption
(each day commits or not at all). On the Timescale-License level the database's compression
policy is given the same age instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from lighthouse.db.capability import Capability
from lighthouse.db.connect import one
from lighthouse.db.partitions import CHECKS, day_start, list_partitions
from lighthouse.db.rollups import watermark

log = logging.getLogger("lighthouse.db.compaction")

DEFAULT_COMPACT_AFTER = timedelta(days=2)
MIN_COMPACT_AFTER = timedelta(days=1)  # the fleet's 24-hour views and the late horizon
DEFAULT_MAX_DAYS = 3  # per run: bounds one maintenance run's time on a first conversion
# Stored bytes per check with indexes and TOAST, measured by bench/db_queries.py (500 monitors
# at one a minute, HTTP timings; docs/benchmarks.md "Packed history"): the dry run's estimate
# and the cost model's disk sizing (infra.cost.history_disk) multiply by these.
RAW_BYTES_PER_CHECK = 228
PACKED_BYTES_PER_CHECK = 37


@dataclass(frozen=True, slots=True)
class DayPlan:
    day: date
    rows: int       # counted only for the days a run will pack (counting a day reads it all)
    raw_bytes: int  # the day's partition/chunk with its indexes (0 for DEFAULT-partition rows)
    where: str      # the partition or chunk that holds it

    @property
    def packed_bytes_estimate(self) -> int:
        return self.rows * PACKED_BYTES_PER_CHECK

    def describe(self) -> str:
        return (f"pack {self.day} ({self.where}): {self.rows} checks, "
                f"{_mb(self.raw_bytes)} raw -> ~{_mb(self.packed_bytes_estimate)} packed")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cutoff(conn: psycopg.Connection, compact_after: timedelta, now: datetime) -> datetime | None:
    """Days starting before this instant may be packed (None: no rollups yet, pack nothing)."""
    if compact_after < MIN_COMPACT_AFTER:
        raise ValueError(f"compact_after must be at least {MIN_COMPACT_AFTER} "
                         f"(got {compact_after})")
    wm = watermark(conn)
    if wm is None:
        return None
    limit = min(wm, now - compact_after)
    return day_start(limit.astimezone(UTC).date())  # whole days only: a day is moved at once


def _not_empty(conn: psycopg.Connection, table: sql.Composable) -> bool:
    return bool(one(conn, sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table))[0])


def _vanilla_days(conn: psycopg.Connection, before: datetime) -> list[tuple[date, str]]:
    days = [(start, name) for start, name in sorted(list_partitions(conn, CHECKS).items())
            if day_start(start) < before and _not_empty(conn, sql.Identifier(name))]
    # rows that arrived for a day with no partition (the DEFAULT partition catches them)
    days += [(day, "check_history_default") for (day,) in conn.execute(
        "SELECT DISTINCT (date_trunc('day', time, 'UTC') AT TIME ZONE 'UTC')::date "
        "FROM check_history_default WHERE time < %s", (before,)).fetchall()]
    return sorted(days)


def _apache_days(conn: psycopg.Connection, before: datetime) -> list[tuple[date, str]]:
    days = []
    for schema, chunk, lo, hi in conn.execute(
            "SELECT chunk_schema, chunk_name, range_start, range_end "
            "FROM timescaledb_information.chunks WHERE hypertable_name = 'check_history' "
            "AND range_end <= %s ORDER BY range_start", (before,)).fetchall():
        if not _not_empty(conn, sql.Identifier(schema, chunk)):
            continue
        day = lo.astimezone(UTC).date()
        if hi - lo != timedelta(days=1) or day_start(day) != lo:
            raise RuntimeError(f"chunk {schema}.{chunk} spans {lo} .. {hi}, not one UTC day: "
                               "compaction moves whole days (chunk_time_interval 1 day)")
        days.append((day, f"{schema}.{chunk}"))
    return days


def _day_plan(conn: psycopg.Connection, day: date, where: str) -> DayPlan:
    lo, hi = day_start(day), day_start(day + timedelta(days=1))
    rows = one(conn, "SELECT count(*) FROM check_history WHERE time >= %s AND time < %s",
               (lo, hi))[0]
    size = 0 if where == "check_history_default" else one(
        conn, "SELECT pg_total_relation_size(%s::regclass)", (where,))[0]
    return DayPlan(day, rows, size, where)


def plan(conn: psycopg.Connection, level: Capability, compact_after: timedelta,
         now: datetime, max_days: int | None = None) -> tuple[list[DayPlan], int]:
    """The next days to pack, oldest first (at most max_days), and how many are left after
    them. Only those days are counted and sized: finding the others reads one row each."""
    if level is Capability.TIMESCALE:
        return [], 0
    before = cutoff(conn, compact_after, now)
    if before is None:
        return [], 0
    days = (_vanilla_days if level is Capability.VANILLA else _apache_days)(conn, before)
    todo = days if max_days is None else days[:max_days]
    return [_day_plan(conn, day, where) for day, where in todo], len(days) - len(todo)


def pack_day(conn: psycopg.Connection, level: Capability, day: DayPlan) -> int:
    """Moves one day in one transaction; returns the checks moved."""
    lo, hi = day_start(day.day), day_start(day.day + timedelta(days=1))
    with conn.transaction():
        moved = one(conn, "SELECT lh_pack_range(%s, %s)", (lo, hi))[0]
        if level is Capability.VANILLA and day.where != "check_history_default":
            # emptied by the move; TRUNCATE gives the space back now (ACCESS EXCLUSIVE on
            # this old day only: the writers insert into today's partition)
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(day.where)))
        elif level is Capability.APACHE:
            conn.execute("SELECT drop_chunks('check_history', older_than => %s, "
                         "newer_than => %s)", (hi, lo))
    log.info("history packed day=%s where=%s checks=%d", day.day, day.where, moved)
    return moved


def set_native_compression_age(conn: psycopg.Connection, compact_after: timedelta) -> str:
    """Timescale License: the compression policy compresses chunks after the same age.
    (Not rehearsed on this project's machines, which have the Apache edition.)"""
    row = conn.execute(
        "SELECT job_id, config->>'compress_after' FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_compression' AND hypertable_name = 'check_history'"
    ).fetchone()
    if row is None:
        return "no compression policy on check_history"
    job_id, current = row
    wanted = one(conn, "SELECT %s::interval::text", (compact_after,))[0]
    if current != wanted:
        with conn.transaction():
            conn.execute("SELECT alter_job(%s, config => jsonb_set(config, '{compress_after}', "
                         "to_jsonb(%s::text)))", (job_id, wanted))
    return f"native compression after {wanted}"


def compact(conn: psycopg.Connection, level: Capability,
            compact_after: timedelta = DEFAULT_COMPACT_AFTER, now: datetime | None = None,
            max_days: int | None = DEFAULT_MAX_DAYS, dry_run: bool = False) -> dict:
    """One run: the plan (dry run) or the days packed, and what is left for the next run."""
    now = now or datetime.now(UTC)
    if level is Capability.TIMESCALE:
        return {"compaction": f"native compression; its policy's age would be {compact_after}"
                if dry_run else set_native_compression_age(conn, compact_after)}
    todo, left = plan(conn, level, compact_after, now, max_days)
    report: dict = {"compaction_plan": [d.describe() for d in todo], "compaction_left": left}
    if dry_run:
        report["compaction_checks"] = sum(d.rows for d in todo)
        return report
    report["compacted_checks"] = sum(pack_day(conn, level, d) for d in todo)
    return report


def raw_history_bytes(conn: psycopg.Connection, level: Capability) -> int:
    """check_history on disk: every partition or chunk with its indexes and TOAST."""
    return int(one(conn, "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
                         "FROM pg_partition_tree('check_history')" if not level.hypertables
                   else "SELECT hypertable_size('check_history')")[0] or 0)


def bytes_per_check(conn: psycopg.Connection, level: Capability) -> dict[str, float | None]:
    """Stored bytes per check (tables, TOAST and indexes), raw and packed, for db.compact and
    the bench."""
    raw_rows = one(conn, "SELECT count(*) FROM check_history")[0]
    raw_bytes = raw_history_bytes(conn, level)
    packed_rows, packed_bytes = one(
        conn, "SELECT coalesce(sum(checks), 0), "
              "pg_total_relation_size('check_history_packed') FROM check_history_packed")
    return {"raw": round(raw_bytes / raw_rows, 1) if raw_rows else None,
            "packed": round(packed_bytes / packed_rows, 1) if packed_rows else None,
            "all": round((raw_bytes + packed_bytes) / (raw_rows + packed_rows), 1)
            if raw_rows + packed_rows else None}
