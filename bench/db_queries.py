#!/usr/bin/env python3
"""Dashboard queries at Year-1 scale: 500 monitors checked every minute for --days days
(18 days = 13M rows; 90 days = 65M rows), loaded server-side with generate_series.

Measures (median and p90 over --runs, after one warm-up):
  - 30-day uptime + p95 latency for one monitor        (target <= 10 ms; #19: <= 3 ms)
  - 30-day summary (uptime, avg, p95) of all monitors   (target <= 200 ms; #19: <= 100 ms)
  - 90-day daily uptime bars for one monitor, a page of recent checks (newest, and one 10 days
    back), the newest check of every monitor (the status page)
  - the same one-monitor figure computed exactly from raw rows, for comparison
and prints load rate, rollup backfill time and bytes per stored check; then packs every day
older than --compact-after-days (lighthouse.db.compaction) and measures it all again, with
bytes per check raw, packed and over a 90-day history.

    .venv/bin/python bench/db_queries.py                      # temp PG15, 18 days
    .venv/bin/python bench/db_queries.py --days 90            # 65M rows (~20 GB, long)
    .venv/bin/python bench/db_queries.py --dsn postgresql://... --days 18

Results: docs/benchmarks.md ("Database: ingest and dashboard queries").
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from _pg import add_target_args, target
from lighthouse.db.capability import detect_capability
from lighthouse.db.compaction import bytes_per_check, compact
from lighthouse.db.migrate import migrate
from lighthouse.db.partitions import ensure_partitions
from lighthouse.db.queries import (
    daily_uptime,
    latest_checks,
    recent_checks,
    subscription_stats,
    summary,
)
from lighthouse.db.rollups import refresh_rollups

LOAD_DAY = """
INSERT INTO check_history (time, subscription_id, status, http_status, latency_ms, timings)
SELECT t + make_interval(secs => s %% 60), ('00000000-0000-0000-0000-' || lpad(to_hex(s), 12,
       '0'))::uuid,
       CASE WHEN random() < 0.995 THEN 'success'
            WHEN random() < 0.5 THEN 'failure' ELSE 'timeout' END::check_status,
       200, (20 + 30 * (s %% 7) + 400 * random() ^ 4)::int,
       jsonb_build_object('dns', round((random() * 2)::numeric, 3), 'connect',
                          round((1 + random() * 5)::numeric, 3), 'tls',
                          round((8 + random() * 9)::numeric, 3), 'ttfb',
                          round((20 + random() * 120)::numeric, 3), 'total',
                          round((30 + random() * 150)::numeric, 3))
FROM generate_series(%(d0)s::timestamptz, %(d1)s::timestamptz - interval '1 minute',
                     interval '1 minute') AS t
CROSS JOIN generate_series(1, %(monitors)s) AS s
WHERE t + make_interval(secs => s %% 60) < %(end)s
ORDER BY 1  -- in time order, as probers write (BRIN on time relies on it)
"""

EXACT_ONE = """
SELECT count(*) FILTER (WHERE status = 'success') * 100.0 / count(*),
       percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms)
FROM lh_checks(%s, %s) WHERE subscription_id = %s
"""


def mon(i: int) -> uuid.UUID:
    return uuid.UUID(int=i)


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm-up: plans, caches
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def load(conn: psycopg.Connection, days: int, monitors: int, end: datetime) -> tuple[int, float]:
    first = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    t0 = time.perf_counter()
    d = first
    while d < end:
        nxt = min(d + timedelta(days=1), end)
        conn.execute(LOAD_DAY, {"d0": d, "d1": nxt, "monitors": monitors, "end": end})
        conn.commit()
        d = nxt
    secs = time.perf_counter() - t0
    rows = conn.execute("SELECT count(*) FROM check_history").fetchone()[0]
    return rows, secs


def table_bytes(conn: psycopg.Connection, table: str) -> int:
    if conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
                    ).fetchone()[0] and conn.execute(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = %s)", (table,)).fetchone()[0]:
        return conn.execute("SELECT hypertable_size(%s)", (table,)).fetchone()[0]
    return conn.execute(
        "SELECT coalesce((SELECT sum(pg_total_relation_size(relid)) "
        "FROM pg_partition_tree(%s)), pg_total_relation_size(%s))",
        (table, table)).fetchone()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_target_args(ap)
    ap.add_argument("--days", type=int, default=18)
    ap.add_argument("--monitors", type=int, default=500)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--skip-load", action="store_true", help="reuse data already in --dsn")
    ap.add_argument("--compact-after-days", type=float, default=2.0,
                    help="then pack days older than this and measure again (0: do not)")
    args = ap.parse_args()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with target(args, "bench_queries") as dsn, \
            psycopg.connect(dsn, autocommit=True) as conn:
        migrate(dsn)
        level = detect_capability(conn)
        print(f"server {conn.info.parameter_status('server_version')}, capability {level}, "
              f"{args.monitors} monitors x {args.days} days at 1/min")
        if not args.skip_load:
            if not level.hypertables:
                ensure_partitions(conn, days_ahead=2, now=end, days_back=args.days + 1)
                conn.commit()
            rows, secs = load(conn, args.days, args.monitors, end)
            print(f"  load (generate_series, per-day statements)  {rows:,} rows in {secs:.0f} s"
                  f" = {rows / secs:,.0f} rows/s")
            t = time.perf_counter()
            conn.execute("VACUUM ANALYZE check_history")
            print(f"  VACUUM ANALYZE                               {time.perf_counter() - t:.0f} s")
            t = time.perf_counter()
            res = refresh_rollups(conn, upto=end, backfill=timedelta(days=args.days + 1))
            print(f"  rollup backfill                              {res.hourly_rows:,} hourly rows"
                  f" in {time.perf_counter() - t:.0f} s")
            conn.execute("VACUUM ANALYZE check_rollup_hourly, check_rollup_daily")
        t = time.perf_counter()
        refresh_rollups(conn, upto=end)
        print(f"  incremental refresh (2 h horizon)            "
              f"{(time.perf_counter() - t) * 1000:.0f} ms")
        rows = conn.execute("SELECT count(*) FROM check_history").fetchone()[0]
        measure(conn, end, args.monitors, args.runs)
        raw = table_bytes(conn, "check_history")
        rollups = table_bytes(conn, "check_rollup_hourly") + table_bytes(conn,
                                                                         "check_rollup_daily")
        print(f"  storage: check_history {raw / 2**30:.2f} GiB = {raw / rows:.0f} bytes/check "
              f"incl. indexes; rollups {rollups / 2**20:.0f} MiB")
        if not args.compact_after_days:
            return
        t = time.perf_counter()
        report = compact(conn, level, timedelta(days=args.compact_after_days), max_days=None)
        secs = time.perf_counter() - t
        moved = report.get("compacted_checks", 0)
        print(f"  packing {len(report.get('compaction_plan', []))} days: {moved:,} checks in "
              f"{secs:.0f} s = {moved / max(secs, 1e-9):,.0f} checks/s")
        conn.execute("VACUUM ANALYZE check_history_packed")
        measure(conn, end, args.monitors, args.runs)
        size = bytes_per_check(conn, level)
        raw_b, packed_b = float(size["raw"] or 0), float(size["packed"] or 0)
        raw_days = args.compact_after_days + 1  # a day is packed once it is wholly past the age
        over_90 = (raw_days * raw_b + (90 - raw_days) * packed_b) / 90
        print(f"  storage after packing: raw {raw_b:.0f}, packed {packed_b:.1f}, all stored "
              f"{float(size['all'] or 0):.1f} bytes/check incl. indexes and TOAST; over 90 days "
              f"(~{raw_days:g} days raw) {over_90:.1f} bytes/check")


def measure(conn: psycopg.Connection, end: datetime, monitors: int, runs: int) -> None:
    one = mon(7)
    window = timedelta(days=30)
    ids = [mon(i) for i in range(1, monitors + 1)]
    figures = {
        "30-day uptime + p95, one monitor": lambda: subscription_stats(
            conn, one, window, end=end, percentiles=(0.95,)),
        "30-day summary, all monitors": lambda: summary(
            conn, None, window, end=end, percentiles=(0.95,)),
        "90-day daily uptime bars, one monitor": lambda: daily_uptime(conn, one, 90, end),
        "recent checks, page of 50": lambda: recent_checks(conn, one, 50),
        "recent checks, page of 50, 10 days back": lambda: recent_checks(
            conn, one, 50, before=end - timedelta(days=10), since=end - window),
        "newest check of every monitor": lambda: latest_checks(conn, ids,
                                                               since=end - window),
    }
    print(f"  queries (median / p90 of {runs} runs, ms):")
    for name, fn in figures.items():
        med, p90 = timed(fn, runs)
        print(f"    {name:40} {med:8.1f} / {p90:8.1f}")
    med, p90 = timed(lambda: conn.execute(EXACT_ONE, (end - window, end, one)).fetchone(), 5)
    print(f"    {'(exact from raw rows, one monitor)':40} {med:8.1f} / {p90:8.1f}")
    s = subscription_stats(conn, one, window, end=end, percentiles=(0.95,))
    exact = conn.execute(EXACT_ONE, (end - window, end, one)).fetchone()
    print(f"  one monitor: uptime {s.uptime_pct:.3f}% (exact {exact[0]:.3f}%), p95 "
          f"{s.percentiles[0.95]:.0f} ms (exact {exact[1]} ms)")

if __name__ == "__main__":
    main()
