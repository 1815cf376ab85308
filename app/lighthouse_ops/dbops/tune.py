"""`invoke db.tune`: compare a live server with the one tuning rule set and fix the difference.

The rules are `tuning.py`'s (timescaledb-tune's), the same ones the timescaledb role renders into
conf.d/50-lighthouse.conf, so the runbook never holds a second opinion:

- on a host the role manages (the server reports settings from that file), the file owns the
  settings. db.tune never ALTER SYSTEMs them; it removes stale ALTER SYSTEM entries that shadow
  the file (`ALTER SYSTEM RESET`) and says where the file and the rules disagree (RAM or CPUs
  changed since the role ran, or a timescaledb_tune_overrides entry): rerun the role.
- elsewhere (a server the role does not manage), it applies the rules with ALTER SYSTEM.

shared_buffers and max_connections (context `postmaster`) take effect only after a restart: we
reload, then read pg_settings.pending_restart to say which settings are live and which wait.
Host facts come from the server itself (`pg_read_file('/proc/meminfo')`, cgroup CPU quota or
/proc/cpuinfo), so tuning a remote server measures that server, not the controller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from lighthouse.db.connect import one
from psycopg import sql

from lighthouse_ops.dbops import tuning

MiB = 1024 * 1024
GiB = 1024 * MiB

# The drop-in the timescaledb role renders (roles/timescaledb/tasks/config.yml); a unit test
# keeps the two names equal.
ROLE_CONF_NAME = "50-lighthouse.conf"

_WHY = {
    "shared_buffers": "25% of RAM",
    "effective_cache_size": "75% of RAM (planner hint)",
    "maintenance_work_mem": "128 MB per GB of RAM, at most 2047 MB",
    "work_mem": "per sort/hash node, from RAM, connections and CPUs",
    "max_connections": "prober pool + operators",
    "timescaledb.max_background_workers": "TimescaleDB jobs (compression, retention, rollups)",
    "max_worker_processes": "3 built-in + TimescaleDB background workers + CPUs",
    "max_parallel_workers": "one per CPU",
    "max_parallel_workers_per_gather": "half the CPUs for one query",
    "wal_buffers": "from RAM, at most 16 MB",
    "max_wal_size": "checkpoint spacing",
    "min_wal_size": "half of max_wal_size",
    "max_locks_per_transaction": "chunks touched by one query, from RAM",
}


@dataclass(frozen=True)
class HostFacts:
    ram_bytes: int
    cpus: int


@dataclass(frozen=True)
class Setting:
    name: str
    value: str  # as written to ALTER SYSTEM, e.g. '512MB'
    why: str


def recommend(host: HostFacts, *, max_connections: int = tuning.DEFAULT_MAX_CONNECTIONS,
              background_workers: int = tuning.DEFAULT_BACKGROUND_WORKERS) -> list[Setting]:
    """The rule set's settings for `host`, exactly what the role renders for the same inputs."""
    values = tuning.timescaledb_tune(host.ram_bytes // MiB, host.cpus,
                                     max_connections=max_connections,
                                     background_workers=background_workers)
    return [Setting(k, v, _WHY.get(k, "timescaledb-tune default")) for k, v in values.items()]


def server_inputs(conn: psycopg.Connection) -> tuple[int, int]:
    """max_connections and TimescaleDB's background workers as the server runs them now."""
    conns = int(one(conn, "SHOW max_connections")[0])
    row = conn.execute("SELECT setting FROM pg_settings "
                       "WHERE name = 'timescaledb.max_background_workers'").fetchone()
    return conns, int(row[0]) if row else tuning.DEFAULT_BACKGROUND_WORKERS


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
                return one(conn, "SELECT pg_read_file(%s)", (path,))[0]
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
    wanted: str  # the value the rules give
    context: str
    why: str
    source: str = "default"  # live value from: default, role file, ALTER SYSTEM, file
    action: str = "none"  # none | set (ALTER SYSTEM SET) | reset (ALTER SYSTEM RESET)
    expect: str = ""  # the value that should be live after the action
    state: str = "unchanged"  # unchanged | planned | role differs | live | pending restart

    @property
    def needs_restart(self) -> bool:
        return self.context == "postmaster"


def _file_entries(conn: psycopg.Connection) -> dict[str, list[tuple[str, str]]]:
    """name -> [(sourcefile, setting)] from the config files; {} when not allowed to read them."""
    try:
        with conn.transaction():
            rows = conn.execute("SELECT name, sourcefile, setting FROM pg_file_settings "
                                "WHERE error IS NULL ORDER BY seqno").fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return {}
    entries: dict[str, list[tuple[str, str]]] = {}
    for name, sourcefile, setting in rows:
        entries.setdefault(name, []).append((sourcefile or "", setting))
    return entries


def _same(a: str, b: str, unit: str | None) -> bool:
    return to_base(a, unit) == to_base(b, unit)


def plan_changes(conn: psycopg.Connection, settings: list[Setting]) -> list[Change]:
    """Classify each setting by who owns it and what (if anything) db.tune should do."""
    files = _file_entries(conn)
    changes = []
    for s in settings:
        row = conn.execute("SELECT setting, unit, context FROM pg_settings WHERE name = %s",
                           (s.name,)).fetchone()
        if row is None:
            if s.name.startswith("timescaledb."):
                continue  # vanilla PostgreSQL: nothing to reserve workers for
            raise ValueError(f"server has no setting {s.name}")
        setting, unit, context = row
        current = one(conn, sql.SQL("SHOW {}").format(sql.Identifier(s.name)))[0]
        entries = files.get(s.name, [])
        role = [v for f, v in entries if f.endswith("/" + ROLE_CONF_NAME)]
        auto = [v for f, v in entries if f.endswith("/postgresql.auto.conf")]
        c = Change(s.name, current, s.value, context, s.why)
        if role:
            c.source = "role file"
            c.expect = role[-1]
            if auto:  # a stale ALTER SYSTEM value shadows the file the role owns
                c.action, c.state = "reset", "planned"
            elif not _same(role[-1], s.value, unit):
                c.state = "role differs"
        else:
            c.source = "ALTER SYSTEM" if auto else ("file" if entries else "default")
            c.expect = s.value
            if not _same(setting, s.value, unit):
                c.action, c.state = "set", "planned"
        changes.append(c)
    return changes


def manages(changes: list[Change]) -> bool:
    """Whether the timescaledb role's drop-in owns this server's tuning."""
    return any(c.source == "role file" for c in changes)


def apply_changes(dsn: str, changes: list[Change]) -> list[Change]:
    """ALTER SYSTEM SET/RESET for each planned change, reload, then classify live vs restart."""
    todo = [c for c in changes if c.state == "planned"]
    if not todo:
        return changes
    with psycopg.connect(dsn, autocommit=True) as conn:
        for c in todo:
            if c.action == "reset":
                conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(c.name)))
            else:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(c.name), sql.Literal(c.wanted)))
        conn.execute("SELECT pg_reload_conf()")
    # A new session sees the reloaded values; pending_restart marks postmaster-context ones.
    with psycopg.connect(dsn, autocommit=True) as conn:
        for c in todo:
            pending, setting, unit = one(
                conn, "SELECT pending_restart, setting, unit FROM pg_settings WHERE name = %s",
                (c.name,))
            live = _same(setting, c.expect, unit)
            c.state = "live" if live and not pending else "pending restart"
    return changes


def render(host: HostFacts, changes: list[Change]) -> str:
    lines = [f"host: {host.ram_bytes / GiB:.1f} GiB RAM, {host.cpus} CPUs",
             f"{'setting':36} {'current':>9} {'rules':>9}  {'from':12} {'applies by':10} state"]
    for c in changes:
        how = "restart" if c.needs_restart else "reload"
        state = c.state + (" (ALTER SYSTEM RESET)" if c.action == "reset" else "")
        lines.append(f"{c.name:36} {c.current:>9} {c.wanted:>9}  {c.source:12} {how:10} {state}")
    differs = [c.name for c in changes if c.state == "role differs"]
    if differs:
        lines.append("the role's " + ROLE_CONF_NAME + " differs from the rules for this host in: "
                     + ", ".join(differs) + ". If RAM or CPUs changed, rerun the role "
                     "(ansible-playbook playbooks/db.yml); if they are timescaledb_tune_overrides, "
                     "nothing to do. db.tune does not override the role's file.")
    pending = [c.name for c in changes if c.state == "pending restart"]
    if pending:
        lines.append("restart needed for: " + ", ".join(pending) +
                     " (systemctl restart postgresql on the db host, or the restart handler "
                     "of the timescaledb role)")
    return "\n".join(lines)
