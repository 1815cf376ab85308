"""Vanilla level: daily (check_history) and weekly (alert_history) range partitions.

Partitions are named <table>_pYYYYMMDD after their UTC start. Creating one moves any rows the
DEFAULT partition already holds for its range (PostgreSQL refuses to attach otherwise).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from lighthouse.db.connect import one

log = logging.getLogger("lighthouse.db.partitions")


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    table: str
    days: int  # partition width
    align_monday: bool = False

    def start_of(self, d: date) -> date:
        if self.align_monday:
            return d - timedelta(days=d.weekday())
        return d


CHECKS = PartitionSpec("check_history", 1)
ALERTS = PartitionSpec("alert_history", 7, align_monday=True)
SPECS = (CHECKS, ALERTS)


def day_start(d: date) -> datetime:
    """Midnight UTC of `d` (partitions and packed days both begin there)."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def partition_name(spec: PartitionSpec, start: date) -> str:
    return f"{spec.table}_p{start:%Y%m%d}"


def list_partitions(conn: psycopg.Connection, spec: PartitionSpec) -> dict[date, str]:
    """Existing dated partitions of `spec.table`: start date -> name."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass", (spec.table,)).fetchall()
    out = {}
    prefix = f"{spec.table}_p"
    for (name,) in rows:
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            out[datetime.strptime(name[len(prefix):], "%Y%m%d").date()] = name
    return out


def create_partition(conn: psycopg.Connection, spec: PartitionSpec, start: date) -> bool:
    """Creates the partition starting at `start`; False if it already exists."""
    name = partition_name(spec, start)
    lo, hi = day_start(start), day_start(start + timedelta(days=spec.days))
    table, part = sql.Identifier(spec.table), sql.Identifier(name)
    default = sql.Identifier(f"{spec.table}_default")
    with conn.transaction():
        # Serializes with other maintainers; the parent stays writable (SHARE UPDATE EXCLUSIVE).
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(table))
        if one(conn, "SELECT to_regclass(%s) IS NOT NULL", (name,))[0]:
            return False
        stray = one(
            conn, sql.SQL("SELECT count(*) FROM {} WHERE time >= %s AND time < %s")
            .format(default), (lo, hi))[0]
        if not stray:
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})")
                         .format(part, table, sql.Literal(lo), sql.Literal(hi)))
        else:
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS "
                                 "INCLUDING CONSTRAINTS)").format(part, table))
            conn.execute(sql.SQL(
                "WITH moved AS (DELETE FROM {} WHERE time >= %s AND time < %s RETURNING *) "
                "INSERT INTO {} SELECT * FROM moved").format(default, part), (lo, hi))
            conn.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) "
                                 "TO ({})").format(table, part, sql.Literal(lo),
                                                   sql.Literal(hi)))
        log.info("partition created table=%s name=%s moved_from_default=%d",
                 spec.table, name, stray)
        return True


def ensure_partitions(conn: psycopg.Connection, days_ahead: int = 7,
                      now: datetime | None = None, days_back: int = 1) -> list[str]:
    """Creates partitions covering today - days_back .. today + days_ahead; returns new names.
    (Older rows still land safely in the DEFAULT partition; bulk loads pass days_back.)"""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    created = []
    for spec in SPECS:
        start = spec.start_of(today - timedelta(days=days_back))
        while start <= today + timedelta(days=days_ahead):
            if create_partition(conn, spec, start):
                created.append(partition_name(spec, start))
            start += timedelta(days=spec.days)
    return created


def drop_expired_partitions(conn: psycopg.Connection, spec: PartitionSpec,
                            retention: timedelta, now: datetime | None = None,
                            dry_run: bool = False) -> list[str]:
    """Drops partitions whose whole range is older than now - retention, and deletes
    DEFAULT-partition rows older than that; returns the dropped names."""
    cutoff = (now or datetime.now(UTC)) - retention
    dropped = []
    for start, name in sorted(list_partitions(conn, spec).items()):
        if day_start(start + timedelta(days=spec.days)) <= cutoff:
            dropped.append(name)
            if not dry_run:
                with conn.transaction():
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                log.info("partition dropped table=%s name=%s", spec.table, name)
    if not dry_run:
        conn.execute(sql.SQL("DELETE FROM {} WHERE time < %s").format(
            sql.Identifier(f"{spec.table}_default")), (cutoff,))
    return dropped
