"""Rollups, queries, retention and maintenance on vanilla PostgreSQL 15."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from lighthouse.db import histogram
from lighthouse.db.maintenance import RetentionPolicy, run_maintenance_on
from lighthouse.db.migrate import migrate
from lighthouse.db.partitions import CHECKS, ensure_partitions, list_partitions
from lighthouse.db.queries import (
    daily_uptime,
    daily_uptime_many,
    latest_checks,
    recent_checks,
    recent_latencies,
    subscription_stats,
    summary,
)
from lighthouse.db.rollups import refresh_rollups, watermark

NOW = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)
A, B = uuid.UUID(int=0xA), uuid.UUID(int=0xB)

SEED = """
INSERT INTO check_history (time, subscription_id, status, latency_ms)
SELECT %(now)s - g * interval '1 minute', %(sid)s,
       (ARRAY['success','success','success','success','success','success','success',
              'failure','timeout','error'])[1 + (g * 7) %% 10]::check_status,
       CASE WHEN g %% 13 = 0 THEN NULL ELSE (g * 37) %% %(spread)s END
FROM generate_series(1, %(n)s) AS g
"""

EXACT = """
SELECT count(*), count(*) FILTER (WHERE status = 'success'),
       count(*) FILTER (WHERE status = 'failure'), count(*) FILTER (WHERE status = 'timeout'),
       count(*) FILTER (WHERE status = 'error'), count(latency_ms), sum(latency_ms),
       min(latency_ms), max(latency_ms),
       percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms)
FROM check_history WHERE subscription_id = %s AND time >= %s AND time < %s
"""


@pytest.fixture
def db(pg15_db):
    migrate(pg15_db)
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        conn.execute(SEED, {"now": NOW, "sid": A, "n": 4 * 1440, "spread": 900})
        conn.execute(SEED, {"now": NOW, "sid": B, "n": 2 * 1440, "spread": 5000})
        yield conn


def _exact(conn, sid, start, end):
    return conn.execute(EXACT, (sid, start, end)).fetchone()


def _assert_matches(conn, sid, start, end):
    s = subscription_stats(conn, sid, start=start, end=end)
    e = _exact(conn, sid, start, end)
    assert (s.total, s.success, s.failure, s.timeout, s.error, s.latency_count,
            s.latency_sum, s.latency_min, s.latency_max) == tuple(
                int(v) if v is not None else None for v in e[:9])
    if e[9] is not None:
        lo, hi = histogram.bucket_range(histogram.bucket_index(e[9]), e[8])
        assert abs(s.percentiles[0.95] - e[9]) <= hi - lo
    return s


@pytest.mark.parametrize("start_ago,end_ago", [
    (timedelta(days=3, minutes=17), timedelta(0)),
    (timedelta(hours=30, minutes=5), timedelta(hours=2, minutes=40)),
    (timedelta(minutes=50), timedelta(minutes=10)),
])
def test_queries_match_exact_values(db, start_ago, end_ago):
    _assert_matches(db, A, NOW - start_ago, NOW - end_ago)  # before any refresh: all raw
    result = refresh_rollups(db, upto=NOW)
    assert result.rolled_until == NOW.replace(minute=0)
    for sid in (A, B):
        _assert_matches(db, sid, NOW - start_ago, NOW - end_ago)


def test_refresh_is_idempotent(db):
    refresh_rollups(db, upto=NOW)
    snap = db.execute("SELECT * FROM check_rollup_hourly ORDER BY 1, 2").fetchall()
    daily = db.execute("SELECT * FROM check_rollup_daily ORDER BY 1, 2").fetchall()
    refresh_rollups(db, upto=NOW)
    assert db.execute("SELECT * FROM check_rollup_hourly ORDER BY 1, 2").fetchall() == snap
    assert db.execute("SELECT * FROM check_rollup_daily ORDER BY 1, 2").fetchall() == daily
    below = db.execute("SELECT count(*) FROM check_history WHERE time < %s",
                       (NOW.replace(minute=0),)).fetchone()[0]
    assert sum(r[2] for r in daily) == below  # the current hour stays raw


def test_late_rows_within_horizon_are_rerolled(db):
    refresh_rollups(db, upto=NOW)
    late = NOW.replace(minute=0) - timedelta(minutes=30, seconds=7)  # below the watermark
    db.execute("INSERT INTO check_history (time, subscription_id, status, latency_ms) "
               "VALUES (%s, %s, 'failure', 42)", (late, A))
    window = (NOW - timedelta(hours=3), NOW)
    before = subscription_stats(db, A, start=window[0], end=window[1])
    refresh_rollups(db, late_horizon=timedelta(hours=2), upto=NOW)
    after = _assert_matches(db, A, *window)
    assert after.total == before.total + 1 and after.failure == before.failure + 1


def test_refresh_beside_concurrent_ingest(pg15_db):
    migrate(pg15_db)
    stop = threading.Event()
    written = []

    def ingest():
        with psycopg.connect(pg15_db, autocommit=True) as conn:
            i = 0
            while not stop.is_set() and i < 200:
                # all within the 2-hour late horizon (12:05 .. 13:45), so every row that
                # missed one refresh must be in the next one
                t = NOW.replace(minute=5) - timedelta(hours=2) + timedelta(seconds=30 * i)
                conn.execute("INSERT INTO check_history (time, subscription_id, status, "
                             "latency_ms) VALUES (%s, %s, 'success', %s)", (t, A, i))
                written.append(t)
                i += 1

    writer = threading.Thread(target=ingest)
    writer.start()
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        for _ in range(10):
            refresh_rollups(conn, upto=NOW)
        writer.join(60)
        stop.set()
        refresh_rollups(conn, upto=NOW)
        rolled = conn.execute("SELECT coalesce(sum(total), 0) FROM check_rollup_hourly"
                              ).fetchone()[0]
        wm = watermark(conn)
    assert wm == NOW.replace(minute=0) and rolled == len(written) > 0


def test_summary_daily_uptime_and_keyset(db):
    refresh_rollups(db, upto=NOW)
    other = uuid.uuid4()
    res = summary(db, window=timedelta(days=30), end=NOW)
    assert set(res) == {A, B}
    assert res[A].total == 4 * 1440 and res[B].total == 2 * 1440
    assert summary(db, [other], end=NOW)[other].total == 0

    days = daily_uptime(db, A, days=7, end=NOW)
    assert [d.day for d in days][-1] == NOW.date() and len(days) == 7
    exact = db.execute(
        "SELECT (time AT TIME ZONE 'UTC')::date, count(*), "
        "count(*) FILTER (WHERE status = 'success') FROM check_history "
        "WHERE subscription_id = %s AND time < %s GROUP BY 1", (A, NOW)).fetchall()
    exact_map = {d: (int(n), int(s)) for d, n, s in exact}
    for d in days:
        assert (d.total, d.success) == exact_map.get(d.day, (0, 0))

    page1 = recent_checks(db, A, limit=5, since=NOW - timedelta(days=5))
    page2 = recent_checks(db, A, limit=5, before=page1[-1].time, since=NOW - timedelta(days=5))
    assert [c.time for c in page1] == [NOW - timedelta(minutes=i) for i in range(1, 6)]
    assert page2[0].time == NOW - timedelta(minutes=6)
    latest = latest_checks(db, [A, B, other], since=NOW - timedelta(days=1))
    assert set(latest) == {A, B} and latest[A].time == NOW - timedelta(minutes=1)


def test_batched_status_page_queries_match_the_single_ones(db):
    """One statement for a page of monitors gives exactly what one query per monitor gives."""
    refresh_rollups(db, upto=NOW - timedelta(hours=5))  # watermark mid-day: all three sources
    other = uuid.uuid4()
    many = daily_uptime_many(db, [A, B, other], days=7, end=NOW)
    assert set(many) == {A, B, other}
    for sid in (A, B, other):
        assert many[sid] == daily_uptime(db, sid, days=7, end=NOW)
    assert sum(d.total for d in many[B]) == 2 * 1440 and all(d.total == 0 for d in many[other])

    since = NOW - timedelta(days=1)
    lat = recent_latencies(db, [A, B, other], limit=20, since=since)
    assert lat[other] == []
    for sid in (A, B):
        newest = recent_checks(db, sid, limit=20, since=since)  # newest first, incl. NULLs
        assert lat[sid] == [c.latency_ms for c in reversed(newest) if c.latency_ms is not None]
        assert 0 < len(lat[sid]) <= 20


def test_retention_drops_only_old_data(pg15_db):
    migrate(pg15_db)
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        ensure_partitions(conn, now=NOW, days_back=100)
        conn.execute("INSERT INTO check_history (time, subscription_id, status) "
                     "SELECT %s - g * interval '1 day', %s, 'success' "
                     "FROM generate_series(0, 95) g", (NOW, A))
        conn.execute("INSERT INTO check_history (time, subscription_id, status) "
                     "VALUES (%s, %s, 'success')", (NOW - timedelta(days=200), B))  # default
        parts_before = list_partitions(conn, CHECKS)
        report = run_maintenance_on(conn, RetentionPolicy(), now=NOW)
        cutoff = NOW - timedelta(days=90)
        assert report["dropped"] and all(n.startswith("check_history_p") for n in report["dropped"])
        # raw or packed (days older than compact_after were packed by the same run)
        kept = conn.execute("SELECT min(time), count(*) FROM lh_checks('-infinity', "
                            "'infinity')").fetchone()
        assert kept[0] >= cutoff - timedelta(days=1)
        # whole days only: a partition straddling the cutoff stays, nothing newer is lost
        assert conn.execute("SELECT count(*) FROM lh_checks(%s, 'infinity')",
                            (cutoff,)).fetchone()[0] == 91
        assert len(list_partitions(conn, CHECKS)) == len(parts_before) - len(report["dropped"])
        again = run_maintenance_on(conn, RetentionPolicy(), now=NOW)
        assert again["dropped"] == [] and again["partitions_created"] == []


def test_dry_run_maintenance_changes_nothing(pg15_db):
    migrate(pg15_db)
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        ensure_partitions(conn, now=NOW, days_back=100)
        n = len(list_partitions(conn, CHECKS))
        report = run_maintenance_on(conn, RetentionPolicy(), now=NOW, dry_run=True)
        assert report["dropped"] and len(list_partitions(conn, CHECKS)) == n


def test_refresh_with_an_older_upto_keeps_the_watermark_day_whole(db):
    refresh_rollups(db, upto=NOW)
    refresh_rollups(db, upto=NOW - timedelta(hours=3))  # e.g. a lagging job's clock
    assert watermark(db) == NOW.replace(minute=0)
    _assert_matches(db, A, NOW - timedelta(days=2, minutes=3), NOW)
