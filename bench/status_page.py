"""Status page cost at Year-1 shape: N monitors at 1/min, rolled up, page built for K of them.

    .venv/bin/python bench/status_page.py [--days 7] [--monitors 500] [--limits 50,200,500]

Loads a temporary local PostgreSQL 15 (or --dsn) the way bench/db_queries.py does, adds the
`subscriptions` rows the page lists, backfills rollups, then times `statuspage.collect` (the
queries and view models) and `statuspage.render` (Jinja2, inline SVG) separately, best of
--runs, and prints the HTML size plain and gzipped (what the server sends to browsers).
"""

from __future__ import annotations

import argparse
import gzip
import time
from datetime import UTC, datetime, timedelta

import psycopg
from _pg import add_target_args, target
from db_queries import load, mon
from lighthouse.db.migrate import migrate
from lighthouse.db.partitions import ensure_partitions
from lighthouse.db.rollups import refresh_rollups
from lighthouse.web import statuspage
from psycopg.types.json import Jsonb

WALLET = "0x" + "a" * 40


def seed_monitors(conn: psycopg.Connection, n: int) -> None:
    uid = conn.execute("INSERT INTO users (wallet_address) VALUES (%s) RETURNING id",
                       (WALLET,)).fetchone()[0]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO subscriptions (id, user_id, name, target_type, target_config, "
            "check_interval_seconds, status) VALUES (%s, %s, %s, 'http', %s, 60, 'active')",
            [(mon(i), uid, f"monitor {i:04d}", Jsonb({"url": f"https://m{i}.example.com/"}))
             for i in range(1, n + 1)])


def best_ms(fn, runs: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        best = min(best, (time.perf_counter() - t) * 1000)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_target_args(ap)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--monitors", type=int, default=500)
    ap.add_argument("--limits", default="50,200,500", help="page sizes (status_max_monitors)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with target(args, "bench_status_page") as dsn, \
            psycopg.connect(dsn, autocommit=True) as conn:
        migrate(dsn)
        ensure_partitions(conn, days_ahead=2, now=end, days_back=args.days + 1)
        seed_monitors(conn, args.monitors)
        rows, secs = load(conn, args.days, args.monitors, end)
        conn.execute("VACUUM ANALYZE check_history")
        refresh_rollups(conn, upto=end, backfill=timedelta(days=args.days + 1))
        conn.execute("VACUUM ANALYZE")
        print(f"{args.monitors} monitors x {args.days} days at 1/min: {rows:,} rows "
              f"(loaded in {secs:.0f} s); best of {args.runs}")
        for limit in (int(x) for x in args.limits.split(",")):
            c_ms, page = best_ms(lambda n=limit: statuspage.collect(conn, limit=n), args.runs)
            r_ms, html = best_ms(lambda p=page: statuspage.render(p, "bench"), args.runs)
            raw = html.encode()
            shown = len(page.views)
            print(f"  {shown:4d} monitors: collect {c_ms:6.0f} ms  render {r_ms:6.0f} ms  "
                  f"html {len(raw) / 1024:6.0f} KiB  gzip {len(gzip.compress(raw, 6)) / 1024:5.0f}"
                  " KiB")


if __name__ == "__main__":
    main()
