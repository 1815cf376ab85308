"""What synchronous replication costs a Patroni cluster's writer: commit latency as the prober
host sees it, asynchronous vs `synchronous_mode` (RPO 0), on sandbox hosts.

    .venv/bin/python bench/ha_sync.py [--name bench-ha] [--commits 500] [--rounds 3] [--keep]

Brings up its own sandbox (3 db members + 1 prober, lighthouse_db_ha=patroni; docs/ha.md),
then per round and mode: the mode is set through Patroni (`patronictl edit-config`), the
script waits until patronictl shows it (a "Sync Standby" member, or none), and the prober host
commits `--commits` single-row INSERTs over the prober's own DSN (multi-host, TLS,
target_session_attrs=read-write), one transaction each. Prints min/median/p95/max per mode
and the median over rounds; rounds interleave the modes. Removes the sandbox unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics

from lighthouse_ops.deploy.local import prepare_sandbox
from lighthouse_ops.ha.patroni import PATRONI_CONFIG, Cluster
from lighthouse_ops.sandbox import Sandbox

# Runs on the prober host with the prober's venv: its DSN, its CA, its route to the members.
_COMMITS = r'''
import json, sys, time, yaml, psycopg
dsn = yaml.safe_load(open("/etc/lighthouse/prober.yaml"))["database"]["dsn"]
n = int(sys.argv[1])
with psycopg.connect(dsn, autocommit=True) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS bench_sync (id bigserial PRIMARY KEY, "
                 "at timestamptz NOT NULL DEFAULT now())")
    out = []
    for _ in range(n):
        t = time.perf_counter()
        conn.execute("INSERT INTO bench_sync DEFAULT VALUES")
        out.append((time.perf_counter() - t) * 1000)
    conn.execute("DROP TABLE bench_sync")
print(json.dumps(out))
'''


def set_mode(sb: Sandbox, cluster: Cluster, sync: bool, timeout_s: float = 90) -> None:
    value = "true" if sync else "false"
    sb.ssh("db-1", "runuser -u postgres -- patronictl -c " + PATRONI_CONFIG
           + f" edit-config --force --set synchronous_mode={value} >/dev/null")
    cluster.wait(f"synchronous_mode={value}",
                 lambda ms: any(m.role == "Sync Standby" for m in ms) == sync, timeout_s)


def commits(sb: Sandbox, n: int) -> list[float]:
    cmd = ("/opt/lighthouse/current/bin/python -c " + shlex.quote(_COMMITS) + f" {n}")
    return [float(x) for x in json.loads(sb.ssh("prober-1", cmd, timeout=600).stdout)]


def summary(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"min": round(ms[0], 2), "median": round(statistics.median(ms), 2),
            "p95": round(ms[int(len(ms) * 0.95) - 1], 2), "max": round(ms[-1], 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", default="bench-ha")
    p.add_argument("--commits", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    sb = Sandbox(args.name)
    try:
        sb.up(db=3, prober=1)
        dep = prepare_sandbox(sb, backups=False)
        res = dep.playbook("site.yml", {"lighthouse_db_ha": "patroni"}, echo=False)
        if not res.ok:
            raise SystemExit(res.output[-3000:])
        cluster = Cluster.from_inventory(sb.inventory_path)
        medians: dict[str, list[float]] = {"async": [], "sync": []}
        for r in range(args.rounds):
            for mode in ("async", "sync") if r % 2 == 0 else ("sync", "async"):
                set_mode(sb, cluster, mode == "sync")
                s = summary(commits(sb, args.commits))
                medians[mode].append(s["median"])
                print(json.dumps({"round": r + 1, "mode": mode, "commits": args.commits,
                                  "ms": s, "load": os.getloadavg()[0]}), flush=True)
        set_mode(sb, cluster, False)
        print(json.dumps({m: {"median_of_medians_ms": round(statistics.median(v), 2),
                              "rounds": v} for m, v in medians.items()}))
    finally:
        if not args.keep:
            sb.down()


if __name__ == "__main__":
    main()
