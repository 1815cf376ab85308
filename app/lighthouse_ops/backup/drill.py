"""The restore drill: write rows, note the time, write more, delete some "by accident", restore
the host to the noted time, and prove exactly the rows written before it are back.

Also measures the two figures that matter: how long a finished WAL segment takes to reach the
repository (RPO is at most archive_timeout plus this), and how long the in-place PITR takes
(RTO: stop, restore, recovery, promotion, archiving resumed). Used by tests/hosts and
bench/backup_drill.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lighthouse_ops.backup.remote import Runner, as_user
from lighthouse_ops.backup.runbook import restore_pitr


@dataclass
class DrillResult:
    noted: str
    rows_before: int
    rows_at_accident: int
    restored_rows: int
    restored_before_rows: int
    restored_all_before_noted: bool
    archive_push_s: float
    rto_s: float

    @property
    def ok(self) -> bool:
        return (self.restored_rows == self.rows_before == self.restored_before_rows
                and self.restored_all_before_noted)


def psql_on(runner: Runner, database: str = "lighthouse") -> Callable[[str], str]:
    """Runs SQL on the host as postgres (peer auth over the local socket); returns stdout."""
    def run(sql: str) -> str:
        argv = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database]
        return runner.run(as_user("postgres", argv), input_text=sql).stdout.strip()
    return run


def archive_push_seconds(sql: Callable[[str], str], timeout: float = 120) -> float:
    """Seconds from a forced WAL switch until pg_stat_archiver reports the segment archived."""
    # pg_switch_wal() is a no-op on an idle segment: write a commit record first.
    sql("SELECT txid_current()")
    wal = sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    t0 = time.monotonic()
    sql("SELECT pg_switch_wal()")
    while time.monotonic() - t0 < timeout:
        if sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")[:24] >= wal:
            return time.monotonic() - t0
        time.sleep(0.2)
    raise TimeoutError(f"WAL {wal} not archived within {timeout:.0f}s: check archiving")


def run_drill(sql: Callable[[str], str], inventory: str, host: str, *, rows_before: int = 500,
              rows_after: int = 150, stanza: str = "lighthouse",
              extra_vars: dict | None = None) -> DrillResult:
    sql("DROP TABLE IF EXISTS lighthouse_drill; CREATE TABLE lighthouse_drill (id int PRIMARY KEY,"
        " batch text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())")
    sql(f"INSERT INTO lighthouse_drill (id, batch) SELECT g, 'before' "
        f"FROM generate_series(1, {rows_before}) g")
    noted = sql("SELECT clock_timestamp()")
    time.sleep(1.1)  # every later commit is strictly after the noted time
    sql(f"INSERT INTO lighthouse_drill (id, batch) SELECT g, 'after' "
        f"FROM generate_series({rows_before + 1}, {rows_before + rows_after}) g")
    sql("DELETE FROM lighthouse_drill WHERE id % 3 = 0")  # the accident
    at_accident = int(sql("SELECT count(*) FROM lighthouse_drill"))
    push = archive_push_seconds(sql)
    t0 = time.monotonic()
    restore_pitr(inventory, host, noted, stanza=stanza, yes=True, echo=False,
                 extra_vars=extra_vars)
    rto = time.monotonic() - t0
    total, before, all_before = sql(
        "SELECT count(*), count(*) FILTER (WHERE batch = 'before'), "
        f"coalesce(bool_and(at <= '{noted}'::timestamptz), false) FROM lighthouse_drill"
    ).split("|")
    return DrillResult(noted, rows_before, at_accident, int(total), int(before),
                       all_before == "t", push, rto)
