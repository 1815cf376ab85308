"""Packed history on vanilla PostgreSQL 15: the maintenance job packs whole old days, every
query gives the same answer before and after, rows come back exactly, late and replayed rows
merge, the plan is shown first and a run can stop and carry on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from lighthouse.db import compaction
from lighthouse.db.capability import Capability
from lighthouse.db.maintenance import RetentionPolicy, run_maintenance_on
from lighthouse.db.migrate import migrate
from lighthouse.db.partitions import ensure_partitions
from lighthouse.db.queries import (
    daily_latency,
    daily_uptime_many,
    in_maintenance,
    latest_checks,
    recent_checks,
    recent_latencies,
    subscription_stats,
    summary,
)

from tests.support.threads import run_at_once

NOW = datetime(2026, 3, 10, 14, 25, 7, 250_000, tzinfo=UTC)
A, B = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
DAYS = 6

# Every column in use: microsecond times, two locations, failures with errors, timings in both
# packed forms, certificates, a triggered alert now and then.
SEED = """
INSERT INTO check_history (time, subscription_id, status, http_status, latency_ms, error_code,
                           error_message, timings, response_snippet, cert_days_left,
                           alert_triggered, alert_sent_at, location)
SELECT %(now)s - g * interval '1 minute' - (g %% 997) * interval '1 microsecond', %(sid)s,
       (ARRAY['success','success','success','success','success','success','success',
              'failure','timeout','error'])[1 + (g * 7) %% 10]::check_status,
       CASE WHEN g %% 10 = 9 THEN NULL ELSE 200 + (g %% 3) END,
       CASE WHEN g %% 13 = 0 THEN NULL ELSE (g * 37) %% 900 END,
       CASE WHEN (g * 7) %% 10 >= 7 THEN 'http_status' END,
       CASE WHEN (g * 7) %% 10 >= 7 THEN 'got ' || g %% 5 END,
       CASE WHEN %(sid)s = %(a)s AND g %% 2 = 1  -- A: JSONB kept (g / 7.0 is no integer us)
            THEN jsonb_build_object('total', g / 7.0, 'since_push_s', 7.539)
            WHEN g %% 11 = 0 THEN NULL          -- B: integer microseconds, some checks none
            ELSE jsonb_build_object('dns', 0.0, 'ttfb', g / 1000.0, 'total', 1234567.891 + g)
       END,
       CASE WHEN g %% 50 = 0 THEN 'body ' || g END,
       CASE WHEN %(sid)s = %(a)s THEN 30 - g / 1440 END,
       g %% 101 = 0,
       CASE WHEN g %% 101 = 0 THEN %(now)s - g * interval '1 minute' END,
       loc
FROM generate_series(1, %(n)s) AS g, unnest(%(locs)s::text[]) AS loc
"""

ALL_ROWS = ("SELECT * FROM lh_checks('-infinity', 'infinity') "
            "ORDER BY subscription_id, location, time")


def seed(conn) -> None:
    """Six days of checks of A (two locations) and B, and two maintenance windows (also used
    by the Apache-edition test in tests/hosts/test_db_timescale.py)."""
    conn.execute(SEED, {"now": NOW, "sid": A, "a": A, "n": DAYS * 1440,
                        "locs": ["loc-a", "loc-b"]})
    conn.execute(SEED, {"now": NOW, "sid": B, "a": A, "n": DAYS * 1440, "locs": [""]})
    conn.execute("INSERT INTO maintenance_windows (starts_at, ends_at, note) "
                 "VALUES (%s, %s, 'old'), (%s, %s, 'recent')",
                 (NOW - timedelta(days=4, hours=3, minutes=10),
                  NOW - timedelta(days=4, hours=1, minutes=50),
                  NOW - timedelta(hours=5), NOW - timedelta(hours=4)))


@pytest.fixture
def db(pg15_db):
    migrate(pg15_db)
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        ensure_partitions(conn, now=NOW, days_back=DAYS + 1)
        seed(conn)
        yield conn


def answers(conn) -> dict:
    """What the pages, the API and the reports ask, over windows that start in packed days."""
    out: dict = {}
    for start_ago in (timedelta(days=5, hours=7, minutes=13), timedelta(days=3, minutes=1),
                      timedelta(hours=30)):
        for sid in (A, B):
            out["stats", sid, start_ago] = subscription_stats(conn, sid, start=NOW - start_ago,
                                                              end=NOW)
    out["summary"] = summary(conn, window=timedelta(days=30), end=NOW)
    out["daily"] = daily_uptime_many(conn, [A, B], days=10, end=NOW)
    out["latency"] = daily_latency(conn, A, days=10, end=NOW)
    out["maintenance"] = in_maintenance(conn, [A, B], NOW - timedelta(days=10), NOW)
    since = NOW - timedelta(days=10)
    pages, before = [], None
    while True:  # keyset paging through everything, across the raw/packed boundary
        page = recent_checks(conn, A, limit=500, before=before, since=since)
        if not page:
            break
        pages.extend(page)
        before = page[-1].time
    out["pages"] = pages
    out["latest"] = latest_checks(conn, [A, B], since=since)
    out["sparkline"] = recent_latencies(conn, [A, B], limit=40, since=since)
    out["rollups"] = conn.execute("SELECT * FROM check_rollup_hourly ORDER BY 1, 2").fetchall()
    return out


def test_packing_keeps_every_answer_and_every_row(db):
    run_maintenance_on(db, RetentionPolicy(compact_max_days=0), now=NOW)  # rollups only
    rows_before, before = db.execute(ALL_ROWS).fetchall(), answers(db)
    size_before = compaction.bytes_per_check(db, Capability.VANILLA)

    report = run_maintenance_on(db, RetentionPolicy(compact_max_days=None), now=NOW)
    # whole UTC days below now - 2 days: the six seeded days reach back into March 4
    assert [p.split()[1] for p in report["compaction_plan"]] == [
        "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07"]
    packed = db.execute("SELECT count(*), sum(checks) "
                        "FROM check_history_packed").fetchone()
    assert packed[1] == report["compacted_checks"] > 0
    forms = db.execute("SELECT subscription_id, timing_keys IS NOT NULL, count(*) "
                       "FROM check_history_packed GROUP BY 1, 2 ORDER BY 1").fetchall()
    assert [(sid, as_ints) for sid, as_ints, _ in forms] == [(A, False), (B, True)]
    assert packed[0] == 3 * (10 + 3 * 24)  # monitor-locations x hours (March 4 from 14:00)
    assert db.execute("SELECT min(time) FROM check_history").fetchone()[0] >= datetime(
        2026, 3, 8, tzinfo=UTC)
    # the emptied day partitions were truncated: their space is back at once
    assert db.execute("SELECT pg_relation_size('check_history_p20260305')").fetchone()[0] == 0

    assert db.execute(ALL_ROWS).fetchall() == rows_before
    assert answers(db) == before
    size_after = compaction.bytes_per_check(db, Capability.VANILLA)
    assert size_after["packed"] < size_before["raw"] / 3, (size_before, size_after)

    again = run_maintenance_on(db, RetentionPolicy(compact_max_days=None), now=NOW)
    assert again["compaction_plan"] == [] and again["compacted_checks"] == 0


def test_rollups_recomputed_from_packed_hours_are_the_same(db):
    run_maintenance_on(db, RetentionPolicy(compact_max_days=None), now=NOW)
    rollups = db.execute("SELECT * FROM check_rollup_hourly ORDER BY 1, 2").fetchall()
    assert db.execute("SELECT count(*) FROM check_history_packed").fetchone()[0] > 0
    db.execute("TRUNCATE check_rollup_hourly, check_rollup_daily, rollup_watermarks")
    run_maintenance_on(db, RetentionPolicy(compact_max_days=0), now=NOW)  # full re-roll
    assert db.execute("SELECT * FROM check_rollup_hourly ORDER BY 1, 2").fetchall() == rollups


def test_a_late_row_merges_and_a_replayed_row_is_not_doubled(db):
    run_maintenance_on(db, RetentionPolicy(compact_max_days=None), now=NOW)
    hour = datetime(2026, 3, 6, 9, tzinfo=UTC)
    packed_row = db.execute("SELECT * FROM lh_checks(%s, %s) WHERE subscription_id = %s "
                            "AND location = 'loc-a' ORDER BY time LIMIT 1",
                            (hour, hour + timedelta(hours=1), A)).fetchone()
    late = hour + timedelta(minutes=30, seconds=1, microseconds=3)
    # a spool replayed after a long outage: one new check, one the database already holds
    db.execute("INSERT INTO check_history (time, subscription_id, status, latency_ms, location) "
               "VALUES (%s, %s, 'success', 5, 'loc-a')", (late, A))
    db.execute("INSERT INTO check_history (time, subscription_id, status, location) "
               "VALUES (%s, %s, 'failure', 'loc-a')", (packed_row[0], A))
    count = ("SELECT count(*) FROM lh_checks(%s, %s) WHERE subscription_id = %s "
             "AND location = 'loc-a'")
    in_hour = db.execute(count, (hour, hour + timedelta(hours=1), A)).fetchone()[0]

    report = run_maintenance_on(db, RetentionPolicy(compact_max_days=None), now=NOW)
    assert report["compaction_plan"] == ["pack 2026-03-06 (check_history_p20260306): 2 checks, "
                                         + report["compaction_plan"][0].split(": 2 checks, ")[1]]
    assert db.execute(count, (hour, hour + timedelta(hours=1), A)).fetchone()[0] == in_hour - 1
    merged = db.execute("SELECT time, status, latency_ms FROM lh_checks(%s, %s) "
                        "WHERE subscription_id = %s AND location = 'loc-a' AND time IN (%s, %s)"
                        " ORDER BY time", (hour, hour + timedelta(hours=1), A, packed_row[0],
                                           late)).fetchall()
    assert merged == [(packed_row[0], packed_row[2], packed_row[4]), (late, "success", 5)]


def test_the_plan_comes_first_and_a_run_can_stop_and_carry_on(db):
    run_maintenance_on(db, RetentionPolicy(compact_max_days=0), now=NOW)
    raw = db.execute("SELECT count(*) FROM check_history").fetchone()[0]
    preview = run_maintenance_on(db, RetentionPolicy(compact_max_days=None), now=NOW,
                                 dry_run=True)
    assert len(preview["compaction_plan"]) == 4 and preview["compaction_left"] == 0
    assert "MB raw -> ~" in preview["compaction_plan"][1]
    assert db.execute("SELECT count(*) FROM check_history").fetchone()[0] == raw

    first = run_maintenance_on(db, RetentionPolicy(compact_max_days=1), now=NOW)
    assert len(first["compaction_plan"]) == 1 and first["compaction_left"] == 3
    rest = run_maintenance_on(db, RetentionPolicy(compact_max_days=None), now=NOW)
    assert len(rest["compaction_plan"]) == 3 and rest["compaction_left"] == 0
    assert db.execute("SELECT count(*) FROM lh_checks('-infinity', 'infinity')"
                      ).fetchone()[0] == raw


def test_nothing_is_packed_above_the_rollup_watermark_or_younger_than_a_day(db):
    with pytest.raises(ValueError, match="at least 1 day"):
        compaction.plan(db, Capability.VANILLA, timedelta(hours=6), NOW)
    assert compaction.plan(db, Capability.VANILLA, timedelta(days=1), NOW) == ([], 0)  # no rollups
    run_maintenance_on(db, RetentionPolicy(compact_max_days=0),
                       now=NOW - timedelta(days=4))  # rollups only up to March 6
    days, left = compaction.plan(db, Capability.VANILLA, timedelta(days=1), NOW)
    assert [d.day.isoformat() for d in days] == ["2026-03-04", "2026-03-05"] and left == 0
    assert days[1].rows == 3 * 1440  # counted: A in two locations, B in one
    one_day, left = compaction.plan(db, Capability.VANILLA, timedelta(days=1), NOW, max_days=1)
    assert len(one_day) == 1 and left == 1


def test_retention_deletes_old_packed_hours(db):
    run_maintenance_on(db, RetentionPolicy(compact_max_days=None), now=NOW)
    report = run_maintenance_on(db, RetentionPolicy(checks=timedelta(days=5)), now=NOW)
    assert report["packed_hours_deleted"] > 0
    oldest = db.execute("SELECT min(hour) FROM check_history_packed").fetchone()[0]
    assert oldest >= NOW - timedelta(days=5, hours=1)


def test_two_packers_at_once_move_each_day_once(db, pg15_db):
    """Every prober of a fleet runs maintenance: two at once neither fail nor double."""
    run_maintenance_on(db, RetentionPolicy(compact_max_days=0), now=NOW)
    total = db.execute("SELECT count(*) FROM check_history").fetchone()[0]

    def pack() -> int:
        with psycopg.connect(pg15_db, autocommit=True) as conn:
            return compaction.compact(conn, Capability.VANILLA, now=NOW,
                                      max_days=None)["compacted_checks"]

    results, errors = run_at_once(pack, 2)
    assert errors == [] and len(results) == 2
    moved = db.execute("SELECT sum(checks) FROM check_history_packed").fetchone()[0]
    assert sum(results) == moved > 0
    assert db.execute("SELECT count(*) FROM lh_checks('-infinity', 'infinity')"
                      ).fetchone()[0] == total


def test_every_check_status_has_a_letter_that_reads_back(db):
    rows = db.execute("SELECT s, lh_status_letter(s), lh_status_of(lh_status_letter(s)) "
                      "FROM unnest(enum_range(NULL::check_status)) AS s").fetchall()
    assert rows and all(letter and back == s for s, letter, back in rows), rows
    assert len({letter for _, letter, _ in rows}) == len(rows)
