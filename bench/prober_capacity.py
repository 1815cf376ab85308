"""Capacity: the whole prober service, N monitors at 60 s, on ONE core, against a local target.

    .venv/bin/python bench/prober_capacity.py [--monitors 50000] [--seconds 150] [--type http]

What runs: a throw-away PostgreSQL 15 (tests.support.pgserver) with the real migrations and N
active subscriptions; a tiny local target (asyncio HTTP/TCP server, its own process, pinned to
the other core); and the real service (`lighthouse.service.Prober`: LISTEN source, scheduler,
run_check, alert state machine, COPY writer) pinned to one core with sched_setaffinity (the same
as `taskset -c`). After --seconds it stops the service (SIGTERM path) and counts rows.

Reports: p50/p99/max schedule lateness (start - slot), peak RSS (VmHWM), rows in check_history
vs results produced (lost = produced - stored), prober CPU seconds, and every slot due during
the run accounted for: each monitor's wall-clock slots (the scheduler's stable offsets) in the
run's window, matched to the rows stored for them: run, run twice, skipped by the scheduler
(its own count, by reason), or unaccounted (due, never run, not counted as skipped). PostgreSQL
and the target are pinned to the other cores. Goals: p99 lateness <= 1 s, RSS <= 300 MB, lost
= 0, every due slot run. Bounded: the run stops at --seconds however it goes (plus start/stop),
default 150 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from lighthouse.config import Config, load  # noqa: E402
from lighthouse.db.migrate import migrate  # noqa: E402
from lighthouse.logs import setup as setup_logging  # noqa: E402
from lighthouse.models import CheckResult, Monitor, Status  # noqa: E402
from lighthouse.scheduler import stable_offset  # noqa: E402
from lighthouse.service import Prober  # noqa: E402
from lighthouse.source import STARTUP_MARGIN_S  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from tests.support.pgserver import PgServer, free_port  # noqa: E402

TARGET = r"""
import asyncio, sys
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
class P(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t
        if sys.argv[1] == "tcp":
            t.close()
    def data_received(self, d):
        if b"\r\n\r\n" in d:
            self.t.write(RESP)
            self.t.close()
async def main():
    servers = [await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(p), backlog=4096)
               for p in sys.argv[2:]]
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


NGINX_CONF = """
worker_processes 2;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ {listens} location / {{ return 200 "ok\\n"; }} }}
}}
"""


def start_target(mode: str, ports: list[int], core: int, tmp: Path) -> subprocess.Popen:
    """nginx (Debian package, 2 workers) for HTTP when installed, else the small asyncio
    server pinned to `core`."""
    if mode == "http" and shutil.which("nginx"):
        listens = " ".join(f"listen 127.0.0.1:{p} backlog=4096;" for p in ports)
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, listens=listens))
        # Not pinned: the target is not what is measured; on a shared machine a pinned
        # target stalls whenever its core is busy and the prober then waits on it.
        proc = subprocess.Popen(["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", ports[-1])) == 0:
                    return proc
            time.sleep(0.05)
        raise RuntimeError("nginx did not start")
    proc = subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-c", TARGET, mode,
                             *map(str, ports)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def rss_mb(field: str = "VmHWM") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def seed(dsn: str, n: int, interval: int, kind: str, ports: list[int]) -> None:
    with psycopg.connect(dsn) as conn:
        user = conn.execute("INSERT INTO users (display_name) VALUES ('bench') "
                            "RETURNING id").fetchone()[0]
        with conn.cursor() as cur, cur.copy(
                "COPY subscriptions (id, user_id, name, target_type, target_config, "
                "check_interval_seconds, status) FROM STDIN") as copy:
            for i in range(n):
                port = ports[i % len(ports)]
                cfg = ({"url": f"http://127.0.0.1:{port}/m{i}", "timeout_s": 10}
                       if kind == "http" else {"host": "127.0.0.1", "port": port,
                                               "timeout_s": 10})
                copy.write_row((uuid.uuid4(), user, f"bench-{i}", kind, Jsonb(cfg), interval,
                                "active"))


def quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def noop_check(monitor: Monitor) -> CheckResult:
    """--type noop: no network at all, to measure the service's own cost per check."""
    return CheckResult(monitor.id, datetime.now(UTC), Status.SUCCESS, latency_ms=0,
                       timings={"total": 0.0})


async def run_service(cfg: Config, seconds: float, noop: bool) -> dict:
    prober = Prober(cfg, check=noop_check if noop else None)
    prober.scheduler.lateness.size = 10_000_000  # keep every sample for the report
    check_ms: list[int] = []
    handler = prober.scheduler.on_result

    def on_result(monitor: Monitor, result: CheckResult) -> None:
        check_ms.append(result.latency_ms or 0)
        handler(monitor, result)

    prober.scheduler.on_result = on_result
    cpu0 = time.process_time()
    t0 = time.monotonic()
    await prober.start()
    started = time.monotonic()
    # the first slots the initial load scheduled: at most STARTUP_MARGIN_S after it began
    wall_start = time.time() + STARTUP_MARGIN_S
    samples = []
    backlog = []  # results produced but not yet in the database, during the run
    while time.monotonic() - started < seconds:
        await asyncio.sleep(5)
        s = prober.scheduler  # not prober.health(): its DB ping would block the loop
        samples.append(s.queue_depth)
        w = prober.writer
        backlog.append(s.completed - w.stats.inserted - w.stats.spooled)
        recent = sorted(list(s.lateness.samples)[-5000:]) or [0.0]
        print(f"  t={time.monotonic() - started:5.0f}s checks={s.completed:7d} "
              f"queue={s.queue_depth:5d} in_flight={s.in_flight:4d} "
              f"p99_late(last 5000)={quantile(recent, 0.99):.3f}s "
              f"rss={rss_mb('VmRSS'):.0f}MB cpu={time.process_time() - cpu0:.1f}s "
              f"unwritten={backlog[-1]}", flush=True)
    written_in_run = prober.writer.stats.inserted
    run_s = time.monotonic() - started
    wall_stop = time.time()
    summary = await prober.stop()
    s = prober.scheduler
    late = sorted(s.lateness.samples)
    check_ms.sort()
    statuses = {k: v for k, v in (
        (st, prober.metrics.checks.labels(st)._value.get())
        for st in ("success", "failure", "timeout", "error")) if v}
    return {
        "start_s": round(started - t0, 2),
        "checks": s.completed, "statuses": statuses, "skipped": dict(s.skipped),
        "lateness_p50_s": round(quantile(late, 0.50), 4) if late else None,
        "lateness_p99_s": round(quantile(late, 0.99), 4) if late else None,
        "lateness_max_s": round(late[-1], 4) if late else None,
        "max_queue_seen": max(samples, default=0),
        "check_ms_p50": quantile(check_ms, 0.5) if check_ms else None,
        "check_ms_p99": quantile(check_ms, 0.99) if check_ms else None,
        "checks_per_cpu_s": round(s.completed / max(time.process_time() - cpu0, 1e-9)),
        "rss_peak_mb": round(rss_mb("VmHWM"), 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        # Stored while running (not by the final flush): does the write rate track the checks?
        "rows_per_s_in_run": round(written_in_run / max(run_s, 1e-9)),
        "checks_per_s_in_run": round(s.completed / max(run_s, 1e-9)),
        "unwritten_max": max(backlog, default=0), "unwritten_last": backlog[-1] if backlog else 0,
        "written": prober.writer.stats.inserted, "spooled": prober.writer.stats.spooled,
        "spool_lost": prober.writer.spool.lost, "shutdown": summary,
        "wall_start": wall_start, "wall_stop": wall_stop,
    }


# Slots due this close to the stop may be queued, not started yet: outside the window.
SLOT_MARGIN_S = 2.0


def slot_accounting(dsn: str, interval: float, start: float, stop: float,
                    skipped: int) -> dict:
    """Every slot due in [start, stop - SLOT_MARGIN_S): run (its check's row is stored; a check
    starts after its slot and less than an interval late, or it is skipped), run twice,
    skipped (the scheduler's count over the run), and the rest: unaccounted."""
    hi = stop - SLOT_MARGIN_S
    with psycopg.connect(dsn) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM subscriptions WHERE status = 'active'")]
        rows = conn.execute("SELECT subscription_id, extract(epoch FROM time)::float8 "
                            "FROM check_history").fetchall()
    due = 0
    for mid in ids:
        off = stable_offset(mid, interval)
        due += max(0, math.ceil((hi - off) / interval) - math.ceil((start - off) / interval))
    runs: Counter = Counter()
    for mid, t in rows:
        off = stable_offset(mid, interval)
        k = math.floor((t - off) / interval)
        if start <= k * interval + off < hi:
            runs[mid, k] += 1
    run = len(runs)
    return {"slots_due": due, "slots_run": run,
            "slots_run_twice": sum(c - 1 for c in runs.values()),
            "slots_skipped": skipped, "slots_unaccounted": due - run - skipped}


def pin_postgres(pg: PgServer, cores: list[int]) -> None:
    """The postmaster and its processes onto `cores` (backends forked later inherit it)."""
    pid = int((pg.datadir / "postmaster.pid").read_text().split()[0])
    pids = [pid] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                    and _ppid(p) == pid]
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(p, set(cores))


def _ppid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--monitors", type=int, default=50_000)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=150)
    ap.add_argument("--type", choices=("http", "tcp", "noop"), default="http",
                    help="noop: no network, measures scheduler+alerting+storage alone")
    ap.add_argument("--core", type=int, default=0, help="core for the prober")
    ap.add_argument("--concurrency", type=int, default=500)
    ap.add_argument("--target-ports", type=int, default=8)
    args = ap.parse_args()
    # SIGTERM (e.g. from `timeout`) unwinds normally so the finally: below cleans up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cores = sorted(os.sched_getaffinity(0))
    other = [c for c in cores if c != args.core] or cores
    ports = [free_port() for _ in range(args.target_ports)]
    mode = "tcp" if args.type == "noop" else args.type
    spool = Path(tempfile.mkdtemp(prefix="lh-capacity-"))
    target = start_target(mode, ports, other[0], spool)
    pg = PgServer.create(extra_conf={"synchronous_commit": "off"})
    try:
        pin_postgres(pg, other)
        dsn = pg.create_database("capacity")
        migrate(dsn, out=io.StringIO())
        t = time.monotonic()
        seed(dsn, args.monitors, args.interval, mode, ports)
        print(f"seeded {args.monitors} {args.type} monitors in {time.monotonic() - t:.1f}s; "
              f"prober on core {args.core}, target+PostgreSQL on the rest", flush=True)
        cfg = load(None, env={
            "LIGHTHOUSE_DATABASE__DSN": dsn, "LIGHTHOUSE_DATABASE__MAINTENANCE_INTERVAL_S": "0",
            "LIGHTHOUSE_CHECKS__SSRF_ALLOW": "[127.0.0.1/32]",
            "LIGHTHOUSE_SCHEDULER__MAX_CONCURRENCY": str(args.concurrency),
            "LIGHTHOUSE_STORAGE__SPOOL_DIR": str(spool / "spool"),
            "LIGHTHOUSE_HTTP__ENABLED": "false",
            "LIGHTHOUSE_LOGGING__LEVEL": "WARNING"})
        setup_logging(cfg.logging.level, cfg.logging.format)
        os.sched_setaffinity(0, {args.core})  # = taskset -c CORE for this process
        result = asyncio.run(run_service(cfg, args.seconds, args.type == "noop"))
        os.sched_setaffinity(0, set(cores))
        with psycopg.connect(dsn) as conn:
            stored = conn.execute("SELECT count(*) FROM check_history").fetchone()[0]
        result.update(slot_accounting(dsn, args.interval, result["wall_start"],
                                      result["wall_stop"], sum(result["skipped"].values())))
        result.update(stored=stored, lost=result["checks"] - stored,
                      monitors=args.monitors, interval_s=args.interval,
                      seconds=args.seconds, type=args.type,
                      expected_slots=round(args.monitors * args.seconds / args.interval),
                      max_rss_self_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                            / 1024, 1))
        ok = (result["lateness_p99_s"] is not None and result["lateness_p99_s"] <= 1.0
              and result["rss_peak_mb"] <= 300 and result["lost"] == 0
              and result["slots_run"] == result["slots_due"])
        print(json.dumps(result, indent=1))
        print(f"RESULT monitors={args.monitors} type={args.type} checks={result['checks']} "
              f"(slots due ~{result['expected_slots']}) p99_lateness={result['lateness_p99_s']}s "
              f"rss_peak={result['rss_peak_mb']}MB stored={stored} lost={result['lost']} "
              f"cpu={result['cpu_s']}s ({result['checks_per_cpu_s']} checks/CPU-s) "
              f"check_p99={result['check_ms_p99']}ms goals={'MET' if ok else 'MISSED'}")
        print(f"SLOTS due {result['slots_due']}: run {result['slots_run']} (twice "
              f"{result['slots_run_twice']}), skipped {result['slots_skipped']} "
              f"{result['skipped']}, unaccounted {result['slots_unaccounted']}; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"WRITES during the run: {result['rows_per_s_in_run']} rows/s for "
              f"{result['checks_per_s_in_run']} checks/s; unwritten max "
              f"{result['unwritten_max']}, at the end {result['unwritten_last']}")
        return 0 if ok else 1
    finally:
        target.terminate()
        target.wait()
        pg.destroy()
        shutil.rmtree(spool, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
