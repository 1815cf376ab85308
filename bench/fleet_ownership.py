#!/usr/bin/env python3
"""Fleet ownership at 50,000 monitors: what a join and a death cost, and the database load of
membership and verdicts per prober.

Real parts: a temporary PostgreSQL 15 (or --dsn), the migrations, 50,000 subscriptions, and per
prober the real Membership (heartbeats), MonitorSource (the ownership-filtered reload) and
Scheduler (not started: we measure the set it holds). Probers live in one process here; each
has its own connection.

Measured, over --rounds rounds (min / median / max):
  - initial load of a prober's share (the first prober alone; then each of 3)
  - join: a 4th prober appears; each old prober's heartbeat sees it, its reload drops ~1/4
    (time from the heartbeat to the reload done), and how many monitors moved
  - death: a prober's heartbeat ages past its lease; the others pick its monitors up
  - a heartbeat (upsert + live members read), a full ownership reload read (VERSIONS_SQL),
    and a combined-verdict decision (report + lock + decide), each as the database sees it
Ownership changes are noticed within one heartbeat (fleet.lease_s / 3; 5 s by default) after
a join, and within lease_s + lease_s / 3 after a death; add the reload times printed here.

    .venv/bin/python bench/fleet_ownership.py [--monitors 50000] [--rounds 3] [--dsn ...]

Results: docs/benchmarks.md ("Fleet ownership").
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime

import psycopg
from _pg import add_target_args, target
from lighthouse.alerting.state import Change, Health
from lighthouse.db.migrate import migrate
from lighthouse.fleet.membership import Membership
from lighthouse.fleet.verdict import Verdicts
from lighthouse.metrics import Metrics
from lighthouse.models import CheckResult, Monitor, Status
from lighthouse.scheduler import Scheduler
from lighthouse.source import VERSIONS_SQL, MonitorSource
from psycopg_pool import AsyncConnectionPool

LEASE = 15.0


def load(dsn: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        user = conn.execute("INSERT INTO users (display_name) VALUES ('bench') "
                            "RETURNING id").fetchone()[0]
        conn.execute(
            "INSERT INTO subscriptions (user_id, name, target_type, target_config, "
            "check_interval_seconds, status) "
            "SELECT %s, 'm' || i, 'http', jsonb_build_object('url', 'https://m' || i || "
            "'.example/'), 60, 'active' FROM generate_series(1, %s) AS i", (user, n))


class Node:
    """One prober's ownership machinery."""

    def __init__(self, dsn: str, name: str) -> None:
        self.pool = AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False,
                                        kwargs={"autocommit": True})
        metrics = Metrics()

        async def never(_m):
            raise AssertionError("not started")

        self.scheduler = Scheduler(never, lambda *_: None, metrics=metrics)
        self.source = MonitorSource(dsn, self.scheduler, metrics=metrics)
        self.membership = Membership(self.pool, name, "a", LEASE, metrics)
        self.source.owns = lambda mid, locs: self.membership.current.owns(mid, locs)

    async def open(self) -> None:
        await self.pool.open()

    async def reload(self) -> float:
        t0 = time.perf_counter()
        async with await self.source._connect() as conn:
            await self.source.sync(conn, "ownership")
        return time.perf_counter() - t0

    async def close(self) -> None:
        await self.membership.leave()
        await self.pool.close()


def fmt(xs: list[float], unit: str = "ms", scale: float = 1000) -> str:
    return (f"{min(xs) * scale:.1f} / {statistics.median(xs) * scale:.1f} / "
            f"{max(xs) * scale:.1f} {unit}")


async def one_round(dsn: str, n: int, out: dict[str, list[float]]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM probers")
    nodes = [Node(dsn, f"p{i}") for i in range(1, 5)]
    for node in nodes:
        await node.open()
    old = nodes[:3]
    for node in old:
        await node.membership.beat()
    for node in old:
        await node.membership.beat()
        out["initial load of a 1/3 share"].append(await node.reload())
    before = {node.membership.name: set(node.scheduler.ids()) for node in old}
    assert sum(len(s) for s in before.values()) == n

    # join
    newcomer = nodes[3]
    await newcomer.membership.beat()
    out["newcomer's initial load (1/4)"].append(await newcomer.reload())
    for node in old:
        t0 = time.perf_counter()
        await node.membership.beat()
        await node.reload()
        out["join: heartbeat + reload (old prober)"].append(time.perf_counter() - t0)
    moved = sum(len(before[node.membership.name] - set(node.scheduler.ids())) for node in old)
    out["join: monitors moved (%)"].append(moved / n)
    assert sum(node.scheduler.monitor_count for node in nodes) == n

    # death of p2: its heartbeat ages past the lease
    dead = nodes[1]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE probers SET heartbeat_at = now() - interval '1 hour' "
                     "WHERE name = 'p2'")
    orphans = set(dead.scheduler.ids())
    survivors = [nodes[0], nodes[2], nodes[3]]
    for node in survivors:
        t0 = time.perf_counter()
        await node.membership.beat()
        await node.reload()
        out["death: heartbeat + reload (survivor)"].append(time.perf_counter() - t0)
    taken = set().union(*(set(node.scheduler.ids()) for node in survivors))
    assert orphans <= taken and len(taken) == n
    out["death: monitors moved (%)"].append(len(orphans) / n)

    # database cost of the steady state
    beats = []
    for _ in range(50):
        t0 = time.perf_counter()
        await nodes[0].membership.beat()
        beats.append(time.perf_counter() - t0)
    out["heartbeat (upsert + live read)"].append(statistics.median(beats))
    async with nodes[0].pool.connection() as conn:
        t0 = time.perf_counter()
        rows = await (await conn.execute(VERSIONS_SQL, {"types": ["http"]})).fetchall()
        out["ownership read (VERSIONS_SQL, all ids)"].append(time.perf_counter() - t0)
        assert len(rows) == n
        ids = [r[0] for r in rows[:300]]
    verdicts = Verdicts(nodes[0].pool, nodes[0].membership, Metrics(),
                        on_decision=lambda d: None, monitor=lambda _: None)
    costs = []
    for i, mid in enumerate(ids):
        m = Monitor(mid, "m", "http", {}, 60)
        health = Health.DOWN if i % 2 else Health.UP
        bad = CheckResult(mid, datetime.now(UTC), Status.ERROR, error_code="refused")
        t0 = time.perf_counter()
        await verdicts.decide(m, Change(mid, health, datetime.now(UTC),
                                        bad if health is Health.DOWN else None, m))
        costs.append(time.perf_counter() - t0)
    out["verdict decision (one transaction)"].append(statistics.median(costs))
    for node in nodes:
        await node.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--monitors", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    add_target_args(ap)
    args = ap.parse_args()
    with target(args, "bench_fleet") as dsn:
        migrate(dsn, out=io.StringIO())
        load(dsn, args.monitors)
        out: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.rounds):
            asyncio.run(one_round(dsn, args.monitors, out))
    print(f"fleet ownership, {args.monitors:,} monitors, {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.2f} (min / median / max)")
    for key, xs in out.items():
        if key.endswith("(%)"):
            print(f"  {key:<44} {fmt(xs, '%', 100)}")
        else:
            print(f"  {key:<44} {fmt(xs)}")


if __name__ == "__main__":
    main()
