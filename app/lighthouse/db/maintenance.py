"""Our maintenance job: what the database cannot schedule itself on a given level.

| level     | partitions ahead | check/alert retention          | rollup refresh     | old checks |
|-----------|------------------|--------------------------------|--------------------|------------|
| timescale | (chunks: auto)   | database policies (90 d / 1 y) | add_job + this job | compressed |
| apache    | (chunks: auto)   | drop_chunks() here             | this job           | packed     |
| vanilla   | created here     | old partitions dropped here    | this job           | packed     |

Hourly rollups older than `hourly_rollup_retention` are deleted on every level; daily rollups
are kept (about 90 kB per monitor per year). Run every few minutes (`invoke db.maintain`, a
systemd timer, or the prober's own scheduler): every step is idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from lighthouse.db import compaction
from lighthouse.db.capability import Capability, detect_capability
from lighthouse.db.connect import connect, one
from lighthouse.db.errors import SchemaOutdatedError
from lighthouse.db.partitions import ALERTS, CHECKS, drop_expired_partitions, ensure_partitions
from lighthouse.db.rollups import DEFAULT_LATE_HORIZON, refresh_rollups, watermark

log = logging.getLogger("lighthouse.db.maintenance")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    checks: timedelta = timedelta(days=90)
    alerts: timedelta = timedelta(days=365)
    hourly_rollups: timedelta = timedelta(days=400)
    partitions_ahead_days: int = 7
    late_horizon: timedelta = DEFAULT_LATE_HORIZON
    compact_after: timedelta = compaction.DEFAULT_COMPACT_AFTER
    compact_max_days: int | None = compaction.DEFAULT_MAX_DAYS  # per run; None: all


def schema_capability(conn: psycopg.Connection) -> Capability:
    """The level the schema was built for (recorded by the migrator)."""
    if not one(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL")[0]:
        raise SchemaOutdatedError("no schema here yet: run `invoke db.migrate` first")
    row = conn.execute("SELECT capability FROM schema_migrations ORDER BY version LIMIT 1"
                       ).fetchone()
    if row is None:
        raise SchemaOutdatedError("schema_migrations is empty: run `invoke db.migrate` first")
    return Capability(row[0])


def drop_old_chunks(conn: psycopg.Connection, table: str, older_than: timedelta,
                    now: datetime | None = None, dry_run: bool = False) -> list[str]:
    """Apache level: drop whole chunks older than the cutoff (show_chunks for dry-run)."""
    cutoff = (now or datetime.now(UTC)) - older_than
    fn = "show_chunks" if dry_run else "drop_chunks"
    rows = conn.execute(f"SELECT {fn}(%s::regclass, older_than => %s)::text",  # noqa: S608
                        (table, cutoff)).fetchall()
    return [r[0] for r in rows]


def run_maintenance_on(conn: psycopg.Connection, policy: RetentionPolicy | None = None,
                       now: datetime | None = None, dry_run: bool = False) -> dict[str, Any]:
    policy = policy or RetentionPolicy()
    now = now or datetime.now(UTC)
    level = schema_capability(conn)
    report: dict[str, Any] = {"capability": level.value}
    if level is Capability.VANILLA:
        report["partitions_created"] = (
            [] if dry_run else ensure_partitions(conn, policy.partitions_ahead_days, now))
        report["dropped"] = (
            drop_expired_partitions(conn, CHECKS, policy.checks, now, dry_run)
            + drop_expired_partitions(conn, ALERTS, policy.alerts, now, dry_run))
    elif level is Capability.APACHE:
        report["dropped"] = (
            drop_old_chunks(conn, "check_history", policy.checks, now, dry_run)
            + drop_old_chunks(conn, "alert_history", policy.alerts, now, dry_run))
    else:
        report["dropped"] = "by TimescaleDB retention policies"
    if dry_run:
        report["rollups"] = "skipped (dry run)"
        report.update(compaction.compact(conn, level, policy.compact_after, now,
                                         policy.compact_max_days, dry_run=True))
        return report
    with conn.transaction():
        n = conn.execute("DELETE FROM check_rollup_hourly WHERE bucket < %s",
                         (now - policy.hourly_rollups,)).rowcount
        report["packed_hours_deleted"] = conn.execute(
            "DELETE FROM check_history_packed WHERE hour < %s", (now - policy.checks,)).rowcount
    report["hourly_rollups_deleted"] = n
    result = refresh_rollups(conn, policy.late_horizon, upto=now)
    report["rolled_until"] = result.rolled_until.isoformat()
    report["hourly_rows"] = result.hourly_rows
    # after the refresh: only hours below the new watermark are packed
    report.update(compaction.compact(conn, level, policy.compact_after, now,
                                     policy.compact_max_days))
    log.info("maintenance done %s", " ".join(f"{k}={v}" for k, v in report.items()
                                               if not isinstance(v, list)))
    return report


def run_maintenance(dsn: str, policy: RetentionPolicy | None = None,
                    dry_run: bool = False) -> dict[str, Any]:
    with connect(dsn, application_name="lighthouse-maintenance") as conn:
        return run_maintenance_on(conn, policy, dry_run=dry_run)


def compression_status(conn: psycopg.Connection, level: Capability) -> str:
    """Compression never fails a status call: it is reported unavailable below level 1."""
    if not level.compression:
        return "unavailable (needs TimescaleDB with the Timescale License)"
    row = conn.execute(
        "SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes) "
        "FROM hypertable_compression_stats('check_history')").fetchone()
    if not row or not row[0]:
        return "enabled (nothing compressed yet)"
    return f"enabled, ratio {row[0] / max(row[1], 1):.1f}x"


def describe(dsn: str) -> dict[str, Any]:
    """Facts for `invoke db.status`."""
    from lighthouse.db.migrate import _status

    with connect(dsn, application_name="lighthouse-status") as conn:
        st = _status(conn)
        level = st.capability or st.detected or detect_capability(conn)
        out: dict[str, Any] = {
            "server": conn.info.parameter_status("server_version"),
            "schema_version": f"{st.current_version} (latest {st.latest_version})",
            "pending": ", ".join(m.label for m in st.pending) or "-",
            "capability": f"{level} (detected: {st.detected})",
            "compression": compression_status(conn, level),
        }
        if st.current_version:
            out["rollups_rolled_until"] = watermark(conn)
            out["check_history_size"] = one(
                conn, "SELECT pg_size_pretty(%s::bigint)",
                (compaction.raw_history_bytes(conn, level),))[0]
        return out
