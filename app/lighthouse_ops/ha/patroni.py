"""A Patroni cluster as the runbooks see it: its members, a planned switchover, a failover drill.

Everything goes over SSH to the members (lighthouse_ops.backup.remote runners, from the
inventory's db group): `patronictl` for the cluster's state and for switchovers, a few lines of
Python on a surviving member to watch for the new leader (so the measurement does not include
an SSH round trip per poll). Nothing here talks to etcd or PostgreSQL from the controller.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from lighthouse_ops.aws.runbook import Plan, RunbookRefused, Step
from lighthouse_ops.backup.remote import RemoteError, Runner, as_user, runner_from_inventory

PATRONI_CONFIG = "/etc/patroni/config.yml"
# Roles patronictl prints for members that follow the leader.
FOLLOWER_ROLES = ("Replica", "Sync Standby")
KILL_MODES = ("postgres", "node")


class HaError(RuntimeError):
    """The cluster cannot be read or did not reach the state a step waits for."""


@dataclass(frozen=True)
class Member:
    name: str
    host: str
    role: str  # Leader, Replica, Sync Standby, ...
    state: str  # running, streaming, stopped, starting, ...
    timeline: int | None
    lag_mb: int | None  # None: unknown (patronictl prints "unknown" or nothing)
    pending_restart: bool

    @property
    def streaming(self) -> bool:
        return self.role in FOLLOWER_ROLES and self.state == "streaming"

    def line(self) -> str:
        known = "?" if self.lag_mb is None else self.lag_mb
        lag = "" if self.role == "Leader" else f", lag {known} MB"
        pending = ", restart pending" if self.pending_restart else ""
        return (f"{self.name} ({self.host}): {self.role}, {self.state}, "
                f"timeline {self.timeline}{lag}{pending}")


def parse_members(text: str) -> list[Member]:
    """`patronictl list -f json` -> members (a clear error for anything else)."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HaError(f"patronictl list did not print JSON: {text[:300]!r}") from exc
    if not isinstance(rows, list):
        raise HaError(f"patronictl list printed {type(rows).__name__}, not a list of members")
    members = []
    for row in rows:
        lag = row.get("Lag in MB")
        tl = row.get("TL")
        members.append(Member(
            name=str(row["Member"]), host=str(row.get("Host", "")), role=str(row.get("Role", "")),
            state=str(row.get("State", "")), timeline=tl if isinstance(tl, int) else None,
            lag_mb=lag if isinstance(lag, int) else None,
            pending_restart=bool(row.get("Pending restart"))))
    return members


def leader_of(members: list[Member]) -> Member | None:
    leaders = [m for m in members if m.role == "Leader" and m.state == "running"]
    return leaders[0] if len(leaders) == 1 else None


def db_members(inventory: Path) -> list[str]:
    """The db group's hosts of a YAML inventory (a file, or a directory with hosts.yml)."""
    hosts_file = inventory / "hosts.yml" if inventory.is_dir() else inventory
    doc = yaml.safe_load(hosts_file.read_text()) or {}
    hosts = (((doc.get("all") or {}).get("children") or {}).get("db") or {}).get("hosts") or {}
    return list(hosts)


@dataclass
class Cluster:
    """The members' runners; commands go to the first member that answers."""

    runners: dict[str, Runner]

    @classmethod
    def from_inventory(cls, inventory: Path) -> Cluster:
        names = db_members(inventory)
        if len(names) < 2:
            raise RunbookRefused(f"{inventory} has {len(names)} host(s) in group db: a Patroni "
                                 "cluster has at least 2 (architecture C: 3)")
        return cls({n: runner_from_inventory(inventory, n) for n in names})

    def members(self, *, avoid: str | None = None) -> list[Member]:
        errors = []
        for name, runner in self.runners.items():
            if name == avoid:
                continue
            try:
                out = runner.run(as_user("postgres", ["patronictl", "-c", PATRONI_CONFIG,
                                                      "list", "-f", "json"]), timeout=30)
                return parse_members(out.stdout)
            except (RemoteError, OSError, HaError) as exc:
                errors.append(f"{name}: {str(exc).splitlines()[0][:200]}")
        raise HaError("no member answered `patronictl list`: " + "; ".join(errors))

    def writable(self, name: str) -> bool:
        out = self.runners[name].run(as_user("postgres", [
            "psql", "-X", "-tAc", "SELECT NOT pg_is_in_recovery()"]), check=False, timeout=30)
        return out.returncode == 0 and out.stdout.strip() == "t"

    def wait(self, what: str, ready: Callable[[list[Member]], bool], timeout_s: float, *,
             avoid: str | None = None, poll_s: float = 0.5) -> list[Member]:
        deadline = time.monotonic() + timeout_s
        last: list[Member] = []
        while True:
            try:
                last = self.members(avoid=avoid)
                if ready(last):
                    return last
            except HaError:
                pass
            if time.monotonic() > deadline:
                seen = "; ".join(m.line() for m in last) or "no member answered"
                raise HaError(f"{what} did not happen within {timeout_s:.0f} s (last seen: {seen})")
            time.sleep(poll_s)


# ---- switchover --------------------------------------------------------------------------

def plan_switchover(cluster: Cluster, candidate: str | None = None, *,
                    max_lag_mb: int = 1, timeout_s: float = 120) -> Plan:
    """A planned leader change to `candidate` (default: the streaming replica with least lag)."""
    members = cluster.members()
    leader = leader_of(members)
    if leader is None:
        raise RunbookRefused("no single running leader: " + "; ".join(m.line() for m in members))
    followers = [m for m in members if m.name != leader.name]
    if candidate is None:
        streaming = sorted((m for m in followers if m.streaming),
                           key=lambda m: (m.lag_mb if m.lag_mb is not None else 1 << 30, m.name))
        if not streaming:
            raise RunbookRefused("no replica is streaming; a switchover would have nowhere to go")
        target = streaming[0]
    else:
        found = [m for m in members if m.name == candidate]
        if not found:
            names = ", ".join(m.name for m in members)
            raise RunbookRefused(f"{candidate!r} is not a member ({names})")
        target = found[0]
        if target.name == leader.name:
            raise RunbookRefused(f"{candidate} already is the leader")
        if not target.streaming:
            raise RunbookRefused(f"{candidate} is not a streaming replica ({target.line()})")
    if target.lag_mb is None or target.lag_mb > max_lag_mb:
        raise RunbookRefused(f"{target.name} lags {target.lag_mb} MB (> {max_lag_mb} MB): wait for "
                             "it to catch up or pass --max-lag-mb")
    plan = Plan("db.switchover")
    plan.facts += [m.line() for m in members]
    plan.facts.append(f"the leader moves from {leader.name} to {target.name}; writes pause "
                      "while it moves (the prober's spool holds its results)")

    def switch() -> str:
        t0 = time.monotonic()
        cluster.runners[leader.name].run(as_user("postgres", [
            "patronictl", "-c", PATRONI_CONFIG, "switchover", "--leader", leader.name,
            "--candidate", target.name, "--force"]), timeout=timeout_s)
        cluster.wait(f"{target.name} leading", lambda ms: (leader_of(ms) or leader).name
                     == target.name, timeout_s)
        if not cluster.writable(target.name):
            raise HaError(f"{target.name} leads but does not accept writes")
        took = time.monotonic() - t0
        cluster.wait(f"{leader.name} streaming from {target.name}",
                     lambda ms: any(m.name == leader.name and m.streaming for m in ms), timeout_s)
        return (f"{target.name} accepts writes {took:.1f} s after the request; "
                f"{leader.name} streams from it after {time.monotonic() - t0:.1f} s")

    plan.steps.append(Step(f"switch over from {leader.name} to {target.name}", switch,
                           "the cluster picks a leader on its own (patronictl list shows it)",
                           "invoke db.cluster, then db.switchover again if needed"))
    return plan


# ---- failover drill --------------------------------------------------------------------

# Runs on a surviving member: reads the cluster from its own REST API every 0.1 s and prints
# when a member other than the old leader leads (the controller's SSH round trips stay out of
# the measurement; times are the member's wall clock, NTP-synced like the controller's).
_WATCH = r'''
import json, sys, time, urllib.request, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
url = "http://" + cfg["restapi"]["connect_address"] + "/cluster"
old, deadline = sys.argv[2], time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        members = json.load(urllib.request.urlopen(url, timeout=2))["members"]
    except Exception:
        members = []
    new = [m["name"] for m in members
           if m.get("role") == "leader" and m.get("state") == "running" and m["name"] != old]
    if new:
        print(json.dumps({"leader": new[0], "at": time.time()}))
        sys.exit(0)
    time.sleep(0.1)
sys.exit(3)
'''


@dataclass
class DrillResult:
    killed: str
    mode: str
    new_leader: str
    seconds_to_writable: float
    seconds_to_rejoin: float | None
    members_after: list[Member]


def _kill_command(mode: str) -> str:
    if mode == "postgres":
        # the postmaster only: Patroni on the same host sees it gone and starts it again
        return ("set -e; d=$(runuser -u postgres -- psql -X -tAc 'SHOW data_directory'); "
                "kill -KILL \"$(head -1 \"$d/postmaster.pid\")\"")
    # the whole member at once, as a crash would (no goodbye to the DCS, no clean shutdown);
    # masked for this boot so systemd's Restart=on-failure does not bring Patroni straight back
    return ("set -e; systemctl mask --runtime patroni >/dev/null 2>&1; "
            "systemctl kill --signal=SIGKILL --kill-whom=all patroni")


def plan_failover_drill(cluster: Cluster, mode: str = "node", *, timeout_s: float = 180,
                        rejoin: bool = True) -> tuple[Plan, list[DrillResult]]:
    """Kill the leader (its PostgreSQL, or the whole member) and measure the way back."""
    if mode not in KILL_MODES:
        raise RunbookRefused(f"--kill must be one of {', '.join(KILL_MODES)} (got {mode!r})")
    members = cluster.members()
    leader = leader_of(members)
    if leader is None:
        raise RunbookRefused("no single running leader: " + "; ".join(m.line() for m in members))
    if mode == "node" and not any(m.streaming for m in members):
        raise RunbookRefused("no replica is streaming: killing the leader would leave no one to "
                             "promote")
    plan = Plan(f"db.failover-drill --kill {mode}")
    plan.facts += [m.line() for m in members]
    plan.facts.append(
        f"{leader.name}: its PostgreSQL is killed (SIGKILL); Patroni there restarts it"
        if mode == "postgres" else
        f"{leader.name}: Patroni and PostgreSQL are killed together (SIGKILL), as in a crash; "
        f"a replica takes over once the leader lock expires (ttl)")
    results: list[DrillResult] = []
    state: dict[str, float | str] = {}

    def kill() -> str:
        state["t0"] = time.time()
        cluster.runners[leader.name].run(_kill_command(mode), timeout=60)
        return f"killed at {time.strftime('%H:%M:%S', time.gmtime(float(state['t0'])))} UTC"

    def wait_writable() -> str:
        t0 = float(state["t0"])
        if mode == "node":
            survivor = next(m.name for m in members if m.streaming)
            out = cluster.runners[survivor].run(
                "python3 -c " + shlex.quote(_WATCH) + f" {PATRONI_CONFIG} "
                + shlex.quote(leader.name) + f" {timeout_s:.0f}", timeout=timeout_s + 30,
                check=False)
            if out.returncode != 0:
                raise HaError(f"no new leader within {timeout_s:.0f} s of the kill")
            seen = json.loads(out.stdout.strip().splitlines()[-1])
            new = str(seen["leader"])
        else:
            cluster.wait(f"{leader.name} running again", lambda ms: leader_of(ms) is not None,
                         timeout_s, poll_s=0.2)
            new = (leader_of(cluster.members()) or leader).name
        deadline = time.monotonic() + timeout_s
        while not cluster.writable(new):
            if time.monotonic() > deadline:
                raise HaError(f"{new} leads but accepted no write within {timeout_s:.0f} s")
            time.sleep(0.1)
        state["writable"] = time.time() - t0
        state["new"] = new
        return f"{new} accepts writes {state['writable']:.1f} s after the kill"

    def bring_back() -> str:
        t1 = time.monotonic()
        cluster.runners[leader.name].run(
            "systemctl unmask --runtime patroni >/dev/null 2>&1; systemctl start patroni",
            timeout=60)
        cluster.wait(f"{leader.name} streaming again",
                             lambda ms: any(m.name == leader.name and m.streaming for m in ms),
                             timeout_s)
        state["rejoin"] = time.monotonic() - t1
        return f"{leader.name} streams from {state['new']} {state['rejoin']:.1f} s after its start"

    def record() -> str:
        after = cluster.members()
        results.append(DrillResult(
            killed=leader.name, mode=mode, new_leader=str(state["new"]),
            seconds_to_writable=float(state["writable"]),
            seconds_to_rejoin=float(state["rejoin"]) if "rejoin" in state else None,
            members_after=after))
        return "; ".join(m.line() for m in after)

    plan.steps.append(Step(f"kill {'PostgreSQL on ' if mode == 'postgres' else ''}{leader.name}",
                           kill, "nothing killed if this failed", "run the drill again"))
    plan.steps.append(Step("wait for a writable leader", wait_writable,
                           "the cluster is without a writable leader",
                           "invoke db.cluster; patronictl list on a member"))
    if mode == "node" and rejoin:
        plan.steps.append(Step(f"start {leader.name} again (it rejoins as a replica, pg_rewind "
                               "if its timeline diverged)", bring_back,
                               f"{leader.name}'s Patroni is stopped (masked for this boot)",
                               f"ssh {leader.name} 'systemctl unmask --runtime patroni; "
                               "systemctl start patroni'"))
    plan.steps.append(Step("record the cluster after the drill", record, "-", "-"))
    return plan, results


# ---- rolling upgrade ---------------------------------------------------------------------

# PostgreSQL's and TimescaleDB's packages (minor releases; a major upgrade is a migration).
UPGRADE_PACKAGES = ("postgresql-17", "postgresql-client-17", "postgresql-17-timescaledb")


def _versions(runner: Runner, packages: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """package -> (installed, candidate) for the packages the member has."""
    out = runner.run("LC_ALL=C apt-cache policy " + " ".join(shlex.quote(p) for p in packages),
                     timeout=120).stdout
    found: dict[str, tuple[str, str]] = {}
    name = installed = None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            name = line.rstrip(":")
        elif line.strip().startswith("Installed:"):
            installed = line.split(":", 1)[1].strip()
        elif line.strip().startswith("Candidate:") and name and installed not in (None,
                                                                                  "(none)"):
            found[name] = (str(installed), line.split(":", 1)[1].strip())
    return found


def plan_rolling_upgrade(cluster: Cluster, *, packages: tuple[str, ...] = UPGRADE_PACKAGES,
                         refresh: bool = True, timeout_s: float = 300) -> Plan:
    """Minor upgrades of PostgreSQL and TimescaleDB, one member at a time: each replica
    upgraded and restarted (it streams again before the next), a switchover to an upgraded
    replica, then the old leader; last, `ALTER EXTENSION timescaledb UPDATE` on the leader.
    Writes pause only for the switchover (the prober's spool holds them)."""
    members = cluster.members()
    leader = leader_of(members)
    if leader is None:
        raise RunbookRefused("no single running leader: " + "; ".join(m.line() for m in members))
    lagging = [m for m in members if m.name != leader.name and not m.streaming]
    if lagging:
        raise RunbookRefused("every replica must stream before a rolling upgrade: "
                             + "; ".join(m.line() for m in lagging))
    replicas = sorted(m.name for m in members if m.name != leader.name)
    if refresh:  # the candidate versions come from the package lists: read them fresh
        for name in (leader.name, *replicas):
            cluster.runners[name].run("apt-get update -qq", timeout=300)
    versions = {name: _versions(cluster.runners[name], packages)
                for name in (leader.name, *replicas)}
    plan = Plan("db.rolling-upgrade")
    plan.facts += [m.line() for m in members]
    for name, pkgs in versions.items():
        plan.facts.append(f"{name}: " + ", ".join(
            f"{p} {i}" + (f" -> {c}" if c != i else " (current)") for p, (i, c) in pkgs.items()))
    if all(i == c for pkgs in versions.values() for i, c in pkgs.values()):
        plan.notes.append("no newer packages: each member is restarted in turn all the same "
                          "(what a settings change needing a restart also takes)")
    scope = cluster.runners[leader.name].run(
        f"sed -n 's/^scope: *//p' {PATRONI_CONFIG}", timeout=30).stdout.strip()

    def upgrade(name: str) -> Callable[[], str]:
        def run() -> str:
            runner = cluster.runners[name]
            installed = versions[name]
            if any(i != c for i, c in installed.values()):
                runner.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade "
                           "-o Dpkg::Options::=--force-confold "
                           + " ".join(shlex.quote(p) for p in installed), timeout=timeout_s)
            t0 = time.monotonic()
            runner.run(as_user("postgres", ["patronictl", "-c", PATRONI_CONFIG, "restart",
                                            "--force", scope, name]), timeout=timeout_s)
            cluster.wait(f"{name} streaming again", lambda ms: any(
                m.name == name and (m.streaming or m.role == "Leader") for m in ms), timeout_s)
            now = _versions(runner, packages)
            return (f"{name} restarted and back in {time.monotonic() - t0:.1f} s: "
                    + ", ".join(f"{p} {i}" for p, (i, _) in now.items()))
        return run

    def switch() -> str:
        step = plan_switchover(cluster, replicas[0], timeout_s=timeout_s).steps[0]
        return step.run() or "switched over"

    def extension() -> str:
        new = leader_of(cluster.members())
        if new is None:
            raise HaError("no leader to update the extension on")
        out = cluster.runners[new.name].run(as_user("postgres", [
            "psql", "-X", "-d", "lighthouse", "-v", "ON_ERROR_STOP=1", "-tAc",
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"]), timeout=60)
        before = out.stdout.strip()
        if not before:
            return "no timescaledb extension"
        # first statement of its own session, as TimescaleDB asks; replicas follow by WAL
        cluster.runners[new.name].run(as_user("postgres", [
            "psql", "-X", "-d", "lighthouse", "-v", "ON_ERROR_STOP=1", "-c",
            "ALTER EXTENSION timescaledb UPDATE"]), timeout=300)
        after = cluster.runners[new.name].run(as_user("postgres", [
            "psql", "-X", "-d", "lighthouse", "-tAc",
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"]),
            timeout=60).stdout.strip()
        return f"timescaledb {before} -> {after} on {new.name}"

    left = "the members not yet restarted run the old packages; the cluster works either way"
    for name in replicas:
        plan.steps.append(Step(f"upgrade and restart replica {name}", upgrade(name), left,
                               "invoke db.cluster, then db.rolling-upgrade again (upgraded "
                               "members are restarted once more, nothing else)"))
    plan.steps.append(Step(f"switch over from {leader.name} to {replicas[0]}", switch,
                           "the cluster picks a leader on its own (patronictl list shows it)",
                           "invoke db.cluster, then db.rolling-upgrade again"))
    plan.steps.append(Step(f"upgrade and restart {leader.name} (a replica now)",
                           upgrade(leader.name), left, "db.rolling-upgrade again"))
    plan.steps.append(Step("update the timescaledb extension on the leader", extension,
                           "the extension's SQL is older than its library until it runs",
                           "run ALTER EXTENSION timescaledb UPDATE on the leader"))
    return plan
