#!/usr/bin/env python3
"""Our HTTP checks/s per core vs Prometheus blackbox_exporter probes/s per core.

Same local nginx target (1 worker, pinned to core 1), same run, a new connection per check on
both sides. Each prober is pinned to core 0; blackbox_exporter runs with GOMAXPROCS=1 and is
driven by wrk (pinned to core 1, beside nginx) through /probe. "Per core" is probes divided by
the CPU seconds the prober process itself used (user+sys), which stays meaningful when other
work shares the machine; the wall-clock rate on the pinned core is printed too.

    .venv/bin/python bench/prober_vs_blackbox.py                 # 3 rounds of 10 s per side
    .venv/bin/python bench/prober_vs_blackbox.py --profile       # + where our time goes
    .venv/bin/python bench/prober_vs_blackbox.py --before /tmp/old  # + another checkout's prober

blackbox_exporter runs its default http module for plain HTTP (no tls_config: a CA file makes
every probe load and parse it); with --https both sides verify against the same trustme CA.
Rounds are interleaved (blackbox, ours, [before], blackbox, ...) so drift hits every side alike;
figures are min / median / max over the rounds, with the load average before and after.

Installs nginx-light, prometheus-blackbox-exporter and wrk with apt-get when missing.
Results: docs/benchmarks.md ("Checks: prober vs blackbox_exporter").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APT = {"nginx": "nginx-light", "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
       "wrk": "wrk"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in APT.items() if shutil.which(tool) is None
               and not Path("/usr/sbin", tool).exists()]
    if missing:
        print(f"installing {missing} with apt-get", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
                       check=True, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """user+sys CPU of pid and its reaped children, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def nginx_requests(status_port: int) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{status_port}/", timeout=5).read().decode()
    return int(text.splitlines()[2].split()[2])


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ listen 127.0.0.1:{port} backlog=4096 {ssl}; {ssl_conf}
           location / {{ return 200 "ok\\n"; }} }}
  server {{ listen 127.0.0.1:{status_port}; location / {{ stub_status; }} }}
}}
"""

BLACKBOX_CONF = """
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: [200]
"""
BLACKBOX_TLS = """      tls_config:
        ca_file: {ca_file}
"""


# --------------------------------------------------------------------------- our prober (child)

async def _probe_loop(url: str, seconds: float, concurrency: int, cafile: str | None) -> dict:
    from lighthouse.checks import CheckContext, run_check
    from lighthouse.models import Monitor

    extra = {}
    if "http_transport" in CheckContext.__dataclass_fields__:  # an older checkout (--before)
        extra["http_transport"] = "lean"
    ctx = CheckContext.create(allow_cidrs=["127.0.0.0/8"], cafile=cafile, **extra)
    monitor = Monitor(uuid.uuid4(), "bench", "http", {"url": url, "timeout_s": 5}, 60)
    counts: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            result = await run_check(monitor, ctx)
            key = result.status.value if result.error_code is None else result.error_code
            counts[key] = counts.get(key, 0) + 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await ctx.aclose()
    return {"counts": counts, "wall": wall, "cpu": cpu}


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(args.app_dir or ROOT / "app")))
    import lighthouse.checks  # (imports stay out of the profile)

    assert Path(lighthouse.checks.__file__).is_relative_to(args.app_dir or ROOT / "app")
    loop = _probe_loop(args.url, args.seconds, args.concurrency, args.cafile)
    if args.profile:
        prof = cProfile.Profile()
        out = prof.runcall(asyncio.run, loop)
        out["profile"] = summarize_profile(prof)
    else:
        out = asyncio.run(loop)
    print(json.dumps(out))


def summarize_profile(prof: cProfile.Profile) -> str:
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # tottime
    groups: dict[str, float] = {}
    for (filename, _line, _fn), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        m = re.search(r"site-packages/([A-Za-z_0-9]+)", filename) or re.search(
            r"/(lighthouse)/", filename)
        if m:
            key = m.group(1)
        elif "python3" in filename or filename.startswith("~"):
            part = re.search(r"lib/python3\.\d+/([a-z_]+)", filename)
            key = f"stdlib:{part.group(1)}" if part else "builtins (C: ssl, sockets, select...)"
        else:
            key = "other"
        groups[key] = groups.get(key, 0.0) + tt
    lines = ["self time by package:"]
    for key, tt in sorted(groups.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"  {100 * tt / total:5.1f}%  {key}")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(18)
    top = [ln for ln in buf.getvalue().splitlines() if re.match(r"\s+\d", ln)]
    lines.append("top functions by self time (ncalls tottime percall cumtime percall where):")
    lines += ["  " + re.sub(r"/\S*/(site-packages|python3\.\d+|app)/", "", ln.strip())
              for ln in top]
    return "\n".join(lines)


# --------------------------------------------------------------------------- sides (parent)

def run_ours(url: str, seconds: float, concurrency: int, app_dir: str, status_port: int,
             cafile: str | None, profile: bool = False) -> dict:
    cmd = ["taskset", "-c", "0", sys.executable, __file__, "--child", "--url", url,
           "--seconds", str(seconds), "--concurrency", str(concurrency), "--app-dir", app_dir]
    if cafile:
        cmd += ["--cafile", cafile]
    if profile:
        cmd.append("--profile")
    before = nginx_requests(status_port)
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True,
                          timeout=seconds * 4 + 60)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["served"] = nginx_requests(status_port) - before - 1
    out["probes"] = sum(out["counts"].values())
    out["ok"] = out["counts"].get("success", 0)
    return out


def run_blackbox(url: str, seconds: float, concurrency: int, status_port: int,
                 tmp: Path, cafile: str, https: bool) -> dict:
    conf = tmp / "blackbox.yml"
    conf.write_text(BLACKBOX_CONF + (BLACKBOX_TLS.format(ca_file=cafile) if https else ""))
    port = free_port()
    env = dict(os.environ, GOMAXPROCS="1")
    proc = subprocess.Popen(
        ["taskset", "-c", "0", "prometheus-blackbox-exporter", f"--config.file={conf}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "blackbox.log", "w"))  # noqa: SIM115
    try:
        wait_port(port)
        probe = f"http://127.0.0.1:{port}/probe?module=http_2xx&target={url}"
        body = urllib.request.urlopen(probe, timeout=10).read().decode()
        if not re.search(r"^probe_success 1$", body, re.M):
            raise RuntimeError(f"blackbox probe failed:\n{body}")
        before, cpu0 = nginx_requests(status_port), cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        wrk = subprocess.run(
            ["taskset", "-c", "1", "wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s",
             probe], check=True, capture_output=True, text=True, timeout=seconds + 60)
        wall, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
        served = nginx_requests(status_port) - before - 1
        m = re.search(r"(\d+) requests in", wrk.stdout)
        probes = int(m.group(1)) if m else served
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk.stdout)
        return {"probes": probes, "ok": served, "wall": wall, "cpu": cpu, "served": served,
                "non2xx": int(errors.group(1)) if errors else 0}
    finally:
        proc.terminate()
        proc.wait(10)


def write_tls_files(tmp: Path, https: bool) -> tuple[str, str, str]:
    """A trustme CA + leaf for 127.0.0.1; returns (ca file, nginx listen flag, nginx ssl conf).

    Session tickets and the session cache are off so every check does a full handshake.
    """
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(tmp / "leaf.pem"))
    if not https:
        return str(tmp / "ca.pem"), "", ""
    conf = (f"ssl_certificate {tmp}/leaf.pem; ssl_certificate_key {tmp}/leaf.pem; "
            "ssl_session_tickets off; ssl_session_cache off;")
    return str(tmp / "ca.pem"), "ssl", conf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="duration per side (bounded)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (1-10)")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--before", metavar="CHECKOUT",
                    help="also run the prober of another checkout (e.g. a git worktree)")
    ap.add_argument("--profile", action="store_true", help="profile our side (cProfile)")
    ap.add_argument("--https", action="store_true",
                    help="HTTPS target (full TLS handshake per check, trustme certificate)")
    ap.add_argument("--cafile", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--app-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.seconds = min(args.seconds, 60.0)
    args.rounds = max(1, min(args.rounds, 10))
    if args.child:
        child(args)
        return
    ensure_tools()
    sides = {"lighthouse": str(ROOT / "app")}
    if args.before:
        sides["lighthouse (before)"] = str(Path(args.before).resolve() / "app")
    with tempfile.TemporaryDirectory(prefix="lh-bench-") as tmpname:
        tmp = Path(tmpname)
        port, status_port = free_port(), free_port()
        cafile, ssl_flag, ssl_conf = write_tls_files(tmp, args.https)
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(
            tmp=tmp, port=port, status_port=status_port, ssl=ssl_flag, ssl_conf=ssl_conf))
        nginx = subprocess.Popen(["taskset", "-c", "1", "nginx", "-c", str(tmp / "nginx.conf"),
                                  "-p", str(tmp)], stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            wait_port(status_port)
            url = f"{'https' if args.https else 'http'}://127.0.0.1:{port}/"
            load_before = os.getloadavg()
            rounds: list[dict[str, dict]] = []
            for _ in range(args.rounds):
                row = {"blackbox_exporter": run_blackbox(url, args.seconds, args.concurrency,
                                                         status_port, tmp, cafile, args.https)}
                for name, app_dir in sides.items():
                    row[name] = run_ours(url, args.seconds, args.concurrency, app_dir,
                                         status_port, cafile if args.https else None)
                rounds.append(row)
            report(rounds, args, load_before, os.getloadavg())
            if args.profile:
                for name, app_dir in sides.items():
                    prof = run_ours(url, min(args.seconds, 5), args.concurrency, app_dir,
                                    status_port, cafile if args.https else None, profile=True)
                    print(f"\n## profile, {name}, cProfile, "
                          f"{prof['probes']} checks\n{prof['profile']}")
        finally:
            nginx.terminate()
            nginx.wait(10)


def _spread(values: list[float], fmt: str = "{:.0f}") -> str:
    values = sorted(values)
    mid = values[len(values) // 2] if len(values) % 2 else sum(values[len(values) // 2 - 1:
                                                                    len(values) // 2 + 1]) / 2
    return " / ".join(fmt.format(v) for v in (values[0], mid, values[-1]))


def report(rounds: list[dict[str, dict]], args: argparse.Namespace,
           load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    print(f"\n{'HTTPS' if args.https else 'plain HTTP'}, new connection per check, "
          f"concurrency {args.concurrency}, {len(rounds)} interleaved rounds of "
          f"{args.seconds:g} s per side, target nginx (1 worker, core 1); load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
    for i, row in enumerate(rounds, 1):
        print(f"round {i}: " + ", ".join(
            f"{name} {r['probes']} probes ({r['ok']} ok, nginx served {r['served']}) in "
            f"{r['cpu']:.2f} CPU-s" for name, r in row.items()))
    print(f"{'prober':<22} {'per CPU-s min/median/max':>28} {'ratio min/median/max':>24}")
    for name in rounds[0]:
        rates = [row[name]["probes"] / row[name]["cpu"] for row in rounds]
        ratios = [(row[name]["probes"] / row[name]["cpu"])
                  / (row["blackbox_exporter"]["probes"] / row["blackbox_exporter"]["cpu"])
                  for row in rounds]
        print(f"{name:<22} {_spread(rates):>28} {_spread(ratios, '{:.2f}'):>24}")


if __name__ == "__main__":
    main()
