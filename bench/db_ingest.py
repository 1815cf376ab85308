#!/usr/bin/env python3
"""check_history ingest rate: COPY from Python, the writers' replay-safe path (COPY into a temp
table, then INSERT ... ON CONFLICT DO NOTHING), and server-side generate_series for scale.

    .venv/bin/python bench/db_ingest.py                    # temp PG15, 300k rows per method
    .venv/bin/python bench/db_ingest.py --dsn postgresql://... --rows 1000000

The target database must be empty or migrated by this code (it migrates it). Prints rows/s
per method. Results: docs/benchmarks.md ("Database: ingest and dashboard queries").
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from _pg import add_target_args, target
from lighthouse.db.capability import detect_capability
from lighthouse.db.migrate import migrate
from lighthouse.db.partitions import ensure_partitions
from lighthouse.models import Status
from psycopg.types.enum import EnumInfo, register_enum

COLS = ("time", "subscription_id", "status", "http_status", "latency_ms", "timings")


def rows(n: int, monitors: list[uuid.UUID], start: datetime):
    rnd = random.Random(1)  # noqa: S311 - synthetic data
    for i in range(n):
        lat = int(20 + 400 * rnd.random() ** 3)
        ok = rnd.random() > 0.005
        yield (start + timedelta(seconds=60 * (i // len(monitors)),
                                 microseconds=i % len(monitors)),
               monitors[i % len(monitors)], "success" if ok else "failure", 200 if ok else 503,
               lat, json.dumps({"dns": 1.2, "connect": 3.4, "ttfb": lat - 5, "total": lat}))


def copy_direct(conn: psycopg.Connection, data: list, batch: int) -> float:
    t = time.perf_counter()
    for i in range(0, len(data), batch):
        with conn.transaction(), conn.cursor() as cur, cur.copy(
                f"COPY check_history ({', '.join(COLS)}) FROM STDIN") as cp:
            for r in data[i:i + batch]:
                cp.write_row(r)
    return time.perf_counter() - t


def copy_binary(conn: psycopg.Connection, data: list, batch: int) -> float:
    info = EnumInfo.fetch(conn, "check_status")
    # binary COPY needs a dumper for the enum (labels are the values, not the names)
    register_enum(info, conn, Status, mapping={m: m.value for m in Status})
    status_oid = info.oid
    t = time.perf_counter()
    for i in range(0, len(data), batch):
        with conn.transaction(), conn.cursor() as cur, cur.copy(
                f"COPY check_history ({', '.join(COLS)}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["timestamptz", "uuid", status_oid, "int2", "int4", "jsonb"])
            for r in data[i:i + batch]:
                cp.write_row((r[0], r[1], Status(r[2]), *r[3:]))
    return time.perf_counter() - t


def copy_replay_safe(conn: psycopg.Connection, data: list, batch: int) -> float:
    t = time.perf_counter()
    for i in range(0, len(data), batch):
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS ingest (LIKE check_history "
                        "INCLUDING DEFAULTS) "
                        "ON COMMIT DELETE ROWS")
            with cur.copy(f"COPY ingest ({', '.join(COLS)}) FROM STDIN") as cp:
                for r in data[i:i + batch]:
                    cp.write_row(r)
            cur.execute("INSERT INTO check_history SELECT * FROM ingest ON CONFLICT DO NOTHING")
    return time.perf_counter() - t


def generate_series(conn: psycopg.Connection, n: int, monitors: int, start: datetime) -> float:
    minutes = n // monitors
    t = time.perf_counter()
    conn.execute(
        "INSERT INTO check_history (time, subscription_id, status, http_status, latency_ms, "
        "timings) "
        "SELECT %(start)s + m * interval '1 minute', "
        "  ('00000000-0000-0000-0000-' || lpad(to_hex(s), 12, '0'))::uuid, "
        "  CASE WHEN random() > 0.005 THEN 'success' ELSE 'failure' END::check_status, 200, "
        "  (20 + 400 * random() ^ 3)::int, "
        "  '{\"dns\": 1.2, \"connect\": 3.4, \"ttfb\": 80, \"total\": 85}'::jsonb "
        "FROM generate_series(0, %(minutes)s - 1) m CROSS JOIN generate_series(1, %(mon)s) s",
        {"start": start, "minutes": minutes, "mon": monitors})
    conn.commit()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_target_args(ap)
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--monitors", type=int, default=500)
    args = ap.parse_args()
    with target(args, "bench_ingest") as dsn:
        migrate(dsn)
        monitors = [uuid.uuid4() for _ in range(args.monitors)]
        base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with psycopg.connect(dsn) as conn:
            level = detect_capability(conn)
            server = conn.info.parameter_status("server_version")
            if not level.hypertables:
                ensure_partitions(conn, days_ahead=30, now=base)
            conn.commit()
            span = timedelta(minutes=args.rows // args.monitors + 1)
            results: dict[str, tuple[float, float]] = {}

            def run(name: str, fn, *a) -> None:
                cpu = time.process_time()
                wall = fn(*a)
                results[name] = (wall, time.process_time() - cpu)
            data = list(rows(args.rows, monitors, base))
            run("COPY (Python rows)", copy_direct, conn, data, args.batch)
            data = list(rows(args.rows, [uuid.uuid4() for _ in monitors], base + span))
            run("COPY binary (Python rows)", copy_binary, conn, data, args.batch)
            data = list(rows(args.rows, [uuid.uuid4() for _ in monitors], base + 2 * span))
            run("COPY -> temp + INSERT ON CONFLICT", copy_replay_safe, conn, data, args.batch)
            run("generate_series (server side)", generate_series, conn, args.rows,
                args.monitors, base + 3 * span)
            size = conn.execute(
                "SELECT hypertable_size('check_history')" if level.hypertables else
                "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('check_history')"
            ).fetchone()[0]
            total = conn.execute("SELECT count(*) FROM check_history").fetchone()[0]
        print(f"server {server} ({level}); rows per method "
              f"{args.rows:,}; batch {args.batch:,}; {args.monitors} monitors")
        for name, (secs, cpu) in results.items():
            print(f"  {name:38} {args.rows / secs:>10,.0f} rows/s  ({secs:.2f} s wall, "
                  f"client CPU {cpu:.2f} s)")
        if size:
            print(f"  stored: {total:,} rows, {size / total:.0f} bytes/row incl. indexes")


if __name__ == "__main__":
    main()
