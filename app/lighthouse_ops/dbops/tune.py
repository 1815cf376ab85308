"""Runbook 3 settings computed from the database host, applied with ALTER SYSTEM.

The seed's figures for a t4g.small (2 vCPU, 2 GiB) are shared_buffers 512MB, effective_cache_size
1536MB, maintenance_work_mem 128MB, work_mem 16MB, max_connections 100; the rules below give
exactly those on that host and scale with RAM/CPU elsewhere. The seed reloads afterwards, but
shared_buffers and max_connections (context `postmaster`) only take effect after a restart: we
reload, then read pg_settings.pending_restart to say which settings are live and which wait.

Host facts come from the server itself (`pg_read_file('/proc/meminfo')`, cgroup CPU quota or
/proc/cpuinfo), so tuning a remote server measures that server, not the controller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class HostFacts:
    ram_bytes: int
    cpus: int


@dataclass(frozen=True)
class Setting:
    name: str
    value: str  # as written to ALTER SYSTEM, e.g. '512MB'
    why: str


def _mb(n_bytes: float) -> str:
    return f"{max(1, int(n_bytes // MiB))}MB"


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def recommend(host: HostFacts, *, max_connections: int = 100) -> list[Setting]:
    """The settings for `host`; on 2 GiB / 2 vCPU they equal the seed's runbook 3 values."""
    ram = host.ram_bytes
    return [
        Setting("shared_buffers", _mb(_clamp(ram / 4, 128 * MiB, 8 * GiB)), "25% of RAM"),
        Setting("effective_cache_size", _mb(ram * 3 / 4), "75% of RAM (planner hint)"),
        Setting("maintenance_work_mem", _mb(_clamp(ram / 16, 64 * MiB, 2 * GiB)),
                "RAM/16, at most 2GB (VACUUM, CREATE INDEX)"),
        Setting("work_mem", _mb(_clamp(ram / 128, 4 * MiB, 256 * MiB)),
                "RAM/128 per sort/hash node"),
        Setting("max_connections", str(max_connections), "prober pool + operators"),
        Setting("max_worker_processes", str(max(8, host.cpus + 4)),
                "CPUs + TimescaleDB background workers"),
        Setting("max_parallel_workers", str(host.cpus), "one per CPU"),
        Setting("max_parallel_workers_per_gather", str(max(1, host.cpus // 2)),
                "half the CPUs for one query"),
    ]


def parse_meminfo(text: str) -> int:
    m = re.search(r"^MemTotal:\s+(\d+)\s+kB", text, re.M)
    if not m:
        raise ValueError("MemTotal not found in /proc/meminfo")
    return int(m.group(1)) * 1024


def parse_cpus(cpuinfo: str, cpu_max: str | None = None) -> int:
    """CPUs from /proc/cpuinfo, lowered by a cgroup v2 quota ('max 100000' = none)."""
    n = len(re.findall(r"^processor\s*:", cpuinfo, re.M)) or 1
    if cpu_max:
        quota, _, period = cpu_max.strip().partition(" ")
        if quota != "max" and period:
            n = min(n, max(1, int(quota) // int(period)))
    return n


def host_facts(conn: psycopg.Connection) -> HostFacts:
    """RAM and CPUs of the server's host (needs superuser or pg_read_server_files)."""
    def read(path: str) -> str | None:
        try:
            with conn.transaction():
                return conn.execute("SELECT pg_read_file(%s)", (path,)).fetchone()[0]
        except psycopg.Error:
            return None

    meminfo = read("/proc/meminfo")
    cpuinfo = read("/proc/cpuinfo")
    if meminfo is None or cpuinfo is None:
        raise PermissionError("cannot read /proc on the database host through the server; "
                              "connect as a superuser or pass --ram and --cpus")
    return HostFacts(parse_meminfo(meminfo), parse_cpus(cpuinfo, read("/sys/fs/cgroup/cpu.max")))


_UNITS = {"B": 1, "kB": 1024, "MB": MiB, "GB": GiB, "TB": 1024 * GiB}


def to_base(value: str, unit: str | None) -> float:
    """A setting value in its natural base (bytes for memory, the number itself otherwise)."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([kMGT]?B)?\s*", value)
    if not m:
        return float("nan")
    number = float(m.group(1))
    if m.group(2):
        return number * _UNITS[m.group(2)]
    if unit:
        um = re.fullmatch(r"(\d+)?([kMGT]?B)", unit)
        if um:
            return number * int(um.group(1) or 1) * _UNITS[um.group(2)]
    return number


@dataclass
class Change:
    name: str
    current: str
    wanted: str
    context: str
    why: str
    state: str = "planned"  # planned | live | pending restart | unchanged

    @property
    def needs_restart(self) -> bool:
        return self.context == "postmaster"


def plan_changes(conn: psycopg.Connection, settings: list[Setting]) -> list[Change]:
    changes = []
    for s in settings:
        row = conn.execute("SELECT setting, unit, context FROM pg_settings WHERE name = %s",
                           (s.name,)).fetchone()
        if row is None:
            raise ValueError(f"server has no setting {s.name}")
        setting, unit, context = row
        current = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(s.name))).fetchone()[0]
        same = to_base(setting, unit) == to_base(s.value, unit)
        changes.append(Change(s.name, current, s.value, context, s.why,
                              "unchanged" if same else "planned"))
    return changes


def apply_changes(dsn: str, changes: list[Change]) -> list[Change]:
    """ALTER SYSTEM for each planned change, reload, then classify live vs pending restart."""
    todo = [c for c in changes if c.state == "planned"]
    if not todo:
        return changes
    with psycopg.connect(dsn, autocommit=True) as conn:
        for c in todo:
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                sql.Identifier(c.name), sql.Literal(c.wanted)))
        conn.execute("SELECT pg_reload_conf()")
    # A new session sees the reloaded values; pending_restart marks postmaster-context ones.
    with psycopg.connect(dsn, autocommit=True) as conn:
        for c in todo:
            pending, setting, unit = conn.execute(
                "SELECT pending_restart, setting, unit FROM pg_settings WHERE name = %s",
                (c.name,)).fetchone()
            live = to_base(setting, unit) == to_base(c.wanted, unit)
            c.state = "live" if live and not pending else "pending restart"
    return changes


def render(host: HostFacts, changes: list[Change]) -> str:
    lines = [f"host: {host.ram_bytes / GiB:.1f} GiB RAM, {host.cpus} CPUs",
             f"{'setting':34} {'current':>10} {'wanted':>10}  {'applies by':10} state"]
    for c in changes:
        how = "restart" if c.needs_restart else "reload"
        lines.append(f"{c.name:34} {c.current:>10} {c.wanted:>10}  {how:10} {c.state}")
    pending = [c.name for c in changes if c.state == "pending restart"]
    if pending:
        lines.append("restart needed for: " + ", ".join(pending) +
                     " (systemctl restart postgresql on the db host, or the restart handler "
                     "of the timescaledb role)")
    return "\n".join(lines)
