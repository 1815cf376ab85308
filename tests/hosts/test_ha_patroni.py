"""Architecture C on sandbox hosts: three database members run by Patroni (leader lock in a
three-member etcd), converged by site.yml with lighthouse_db_ha=patroni, one prober writing
through a multi-host DSN (target_session_attrs=read-write).

- The cluster: one leader, two streaming replicas, etcd healthy on every member (and refusing a
  client without a member certificate), testinfra's view of each member, TimescaleDB
  on every member (replicated), replication and pg_rewind admitted between members only, one
  CA for all member certificates; a second converge of the members changes nothing, and
  `--check --diff` reports nothing either.
- Under the prober's writes (a 1 s monitor): `db.switchover` moves the leader, then
  `db.failover-drill` kills the new leader's Patroni and PostgreSQL together (a crash) and
  starts it again. Measured: time to a writable leader, the killed member streaming again;
  counted from check_history: checks lost (slots with no row) and doubled, and alerts sent.

Its own sandbox (three db hosts + one prober), so the shared one stays architecture A.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from lighthouse_ops.aws.runbook import TerminalConsole, execute
from lighthouse_ops.deploy.ansible_run import changed_tasks
from lighthouse_ops.deploy.demo import psql as demo_psql
from lighthouse_ops.deploy.local import LocalDeployment, prepare_sandbox
from lighthouse_ops.ha.patroni import Cluster, leader_of, plan_failover_drill, plan_switchover
from lighthouse_ops.sandbox import Sandbox

from tests.hosts.conftest import own_sandbox_name, sandbox_capability_or_skip, session_lock

ROOT = Path(__file__).resolve().parents[2]
HA = {"lighthouse_db_ha": "patroni"}
INTERVAL_S = 1
MEMBERS = ("db-1", "db-2", "db-3")


@pytest.fixture(scope="module")
def ha() -> Iterator[tuple[Sandbox, LocalDeployment, Cluster]]:
    sandbox_capability_or_skip()
    name = own_sandbox_name("ha")
    with session_lock(name):
        sb = Sandbox(name)
        sb.down()
        try:
            sb.up(db=3, prober=1)
            dep = prepare_sandbox(sb, backups=False)
            first = dep.playbook("site.yml", HA, echo=False)
            assert first.ok, first.output[-4000:]
            yield sb, dep, Cluster.from_inventory(sb.inventory_path)
        finally:
            sb.down()


def sql(sb: Sandbox, cluster: Cluster, query: str, member: str | None = None) -> list[list[str]]:
    """Rows of `query` on `member` (default: the leader), as postgres over the local socket."""
    host = member or (leader_of(cluster.members()) or cluster.members()[0]).name
    out = demo_psql(sb, host, query)
    return [line.split("|") for line in out.splitlines() if line.strip()]


def test_cluster_converges_healthy_and_a_second_run_changes_nothing(ha) -> None:
    sb, dep, cluster = ha
    members = cluster.members()
    assert sorted(m.name for m in members) == list(MEMBERS)
    leader = leader_of(members)
    assert leader is not None and leader.name == "db-1"  # the first member's cluster was kept
    replicas = [m for m in members if m.name != leader.name]
    assert all(m.streaming and m.lag_mb == 0 for m in replicas), [m.line() for m in members]

    tls = ("etcdctl --cacert=/etc/etcd/tls/ca.crt --cert=/etc/etcd/tls/member.crt "
           "--key=/etc/etcd/tls/member.key --endpoints=https://127.0.0.1:2379")
    health = sb.ssh("db-2", f"{tls} endpoint health --cluster -w simple 2>&1").stdout
    assert health.count("is healthy") == 3, health
    # without a member's certificate etcd answers nothing (the leader key is not for anyone)
    anon = sb.ssh("db-2", "etcdctl --cacert=/etc/etcd/tls/ca.crt --endpoints=https://127.0.0.1:2379"
                          " --dial-timeout=3s get --prefix /lighthouse --keys-only 2>&1",
                  check=False)
    assert anon.returncode != 0, anon.stdout

    # TimescaleDB reached every member with the data (replicas are read-only copies)
    for m in MEMBERS:
        rows = sql(sb, cluster, "SELECT extname, pg_is_in_recovery() FROM pg_extension "
                                "WHERE extname = 'timescaledb'", member=m)
        assert rows == [["timescaledb", "f" if m == leader.name else "t"]], (m, rows)

    # replication and rewind from the members' /32s only; one CA signs every member's cert
    hba = sb.ssh("db-3", "grep -E '^hostssl (replication|postgres) ' "
                         "/etc/postgresql/17/main/pg_hba.conf").stdout.split("\n")
    member_ips = {sb.host(m).ip for m in MEMBERS}
    assert {line.split()[3] for line in hba if line} == {f"{ip}/32" for ip in member_ips}, hba
    fingerprints = {sb.ssh(m, "openssl x509 -noout -fingerprint -in "
                              "/etc/lighthouse-db-ca/ca.crt").stdout for m in MEMBERS}
    assert len(fingerprints) == 1
    # testinfra on every member: Patroni and etcd run and start at boot; the postgresql@ unit is
    # masked (nothing but Patroni starts a postmaster on that data directory); each listens on
    # the member's own address; the file with the passwords is postgres-only
    for m in MEMBERS:
        host, ip = sb.testinfra_host(m), sb.host(m).ip
        for unit in ("patroni", "etcd"):
            assert host.service(unit).is_running and host.service(unit).is_enabled, (m, unit)
        assert host.service("postgresql@17-main").is_masked, m
        for port in (5432, 8008, 2379, 2380):
            assert host.socket(f"tcp://{ip}:{port}").is_listening, (m, port)
        cfg = host.file("/etc/patroni/config.yml")
        assert (cfg.user, cfg.group, cfg.mode) == ("postgres", "postgres", 0o600), m
        assert host.file("/etc/etcd/tls/member.key").mode == 0o600, m

    again = dep.playbook("db.yml", HA, echo=False)
    assert again.ok, again.output[-3000:]
    assert changed_tasks(again.output) == []
    plan = dep.playbook("db.yml", HA, echo=False, check=False, options=("--check", "--diff"))
    assert plan.ok, plan.output[-3000:]
    assert changed_tasks(plan.output) == []


def _monitor(sb: Sandbox, cluster: Cluster) -> str:
    sql(sb, cluster, "ALTER TABLE subscriptions DROP CONSTRAINT IF EXISTS "
                     "subscriptions_check_interval_min")
    rows = sql(sb, cluster, f"""
WITH u AS (INSERT INTO users (display_name) VALUES ('ha-drill') RETURNING id)
INSERT INTO subscriptions (user_id, name, target_type, target_config, check_interval_seconds,
                           status)
SELECT id, 'ha drill', 'tcp', '{{"host": "127.0.0.1", "port": 22, "timeout_s": 2}}',
       {INTERVAL_S}, 'active' FROM u RETURNING id""")
    return rows[0][0]


def _checks(sb: Sandbox, cluster: Cluster, sid: str, since: datetime) -> list[datetime]:
    rows = sql(sb, cluster, f"SELECT time FROM lh_checks('{since.isoformat()}', now()) "
                            f"WHERE subscription_id = '{sid}' ORDER BY time")
    return [datetime.fromisoformat(r[0]) for r in rows]


def _wait_for_checks(sb: Sandbox, cluster: Cluster, sid: str, since: datetime,
                     after: datetime, timeout_s: float = 60) -> list[datetime]:
    """check_history once the prober's spool has drained past `after`."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = _checks(sb, cluster, sid, since)
        if seen and seen[-1] > after:
            return seen
        assert time.monotonic() < deadline, f"no check after {after} reached the database"
        time.sleep(1)


def test_switchover_and_crash_lose_no_check_and_send_no_alert(ha, capsys) -> None:
    sb, _, cluster = ha
    sid = _monitor(sb, cluster)
    start = datetime.fromisoformat(sql(sb, cluster, "SELECT now()")[0][0])
    _wait_for_checks(sb, cluster, sid, start, start, timeout_s=90)  # the prober picked it up

    figures: dict[str, float | str] = {}
    t0 = time.monotonic()
    execute(plan_switchover(cluster), TerminalConsole(), dry_run=False, yes=True)
    figures["switchover_s"] = time.monotonic() - t0
    after_switch = leader_of(cluster.members())
    assert after_switch is not None and after_switch.name != "db-1"

    plan, results = plan_failover_drill(cluster, "node")
    execute(plan, TerminalConsole(), dry_run=False, yes=True)
    drill = results[0]
    assert drill.killed == after_switch.name and drill.new_leader != drill.killed
    members = {m.name: m for m in drill.members_after}
    assert members[drill.killed].streaming, drill.members_after  # rejoined without manual steps
    assert sum(1 for m in drill.members_after if m.role == "Leader") == 1

    end = datetime.fromisoformat(sql(sb, cluster, "SELECT now()")[0][0])
    window, gaps, expected, lost, doubled, alerts = _tally(sb, cluster, sid, start, end)
    with capsys.disabled():
        print(f"\nHA drill: switchover {figures['switchover_s']:.1f} s; crash of "
              f"{drill.killed}: {drill.new_leader} writable after "
              f"{drill.seconds_to_writable:.1f} s,"
              f" {drill.killed} streaming {drill.seconds_to_rejoin:.1f} s after its start; "
              f"checks {len(window)} of {expected} slots, lost {lost}, doubled {doubled}, "
              f"largest gap {max(gaps):.1f} s, alerts {alerts}")
    assert lost == 0 and doubled == 0, (gaps, window[:3])
    assert alerts == 0


def _tally(sb: Sandbox, cluster: Cluster, sid: str, start: datetime, end: datetime):
    """The monitor's checks between start and end (once the spool drained): the checks, the
    gaps between them, the slots expected, slots lost, checks doubled, alerts sent."""
    seen = _wait_for_checks(sb, cluster, sid, start, end)
    window = [t for t in seen if start <= t <= end]
    gaps = [(b - a).total_seconds() for a, b in zip(window, window[1:], strict=False)]
    expected = round((window[-1] - window[0]).total_seconds() / INTERVAL_S) + 1
    lost = sum(max(0, round(g / INTERVAL_S) - 1) for g in gaps)
    doubled = len(window) - len(set(window))
    alerts = int(sql(sb, cluster, f"SELECT count(*) FROM alert_history "
                                  f"WHERE subscription_id = '{sid}'")[0][0])
    return window, gaps, expected, lost, doubled, alerts


def test_a_rolling_upgrade_restarts_every_member_and_loses_nothing(ha, capsys) -> None:
    """`invoke db.rolling-upgrade -y`: replicas restarted one by one, a switchover, the old
    leader restarted, the extension updated. (No newer packages exist in the sandbox's
    mirror: the runbook upgrades nothing and restarts every member all the same.)"""
    sb, dep, cluster = ha
    sid = sql(sb, cluster, "SELECT id FROM subscriptions WHERE name = 'ha drill'")[0][0]
    before = leader_of(cluster.members())
    assert before is not None
    start = datetime.fromisoformat(sql(sb, cluster, "SELECT now()")[0][0])
    starts = {m: sb.ssh(m, "runuser -u postgres -- psql -X -tAc "
                           "'SELECT pg_postmaster_start_time()'").stdout.strip() for m in MEMBERS}
    t0 = time.monotonic()
    done = subprocess.run([str(Path(sys.executable).with_name("invoke")), "db.rolling-upgrade",
                           "--inventory", str(sb.inventory_path), "-y"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "no newer packages" in done.stdout and "timescaledb" in done.stdout, done.stdout
    members = cluster.members()
    after = leader_of(members)
    assert after is not None and after.name != before.name
    assert all(m.streaming for m in members if m.name != after.name), [m.line() for m in members]
    for m in MEMBERS:  # every postmaster is a new one
        now = sb.ssh(m, "runuser -u postgres -- psql -X -tAc "
                        "'SELECT pg_postmaster_start_time()'").stdout.strip()
        assert now != starts[m], m
    end = datetime.fromisoformat(sql(sb, cluster, "SELECT now()")[0][0])
    window, gaps, expected, lost, doubled, alerts = _tally(sb, cluster, sid, start, end)
    with capsys.disabled():
        print(f"\nHA rolling upgrade: {took:.1f} s for 3 members, leader {before.name} -> "
              f"{after.name}; checks {len(window)} of {expected} slots, lost {lost}, "
              f"doubled {doubled}, largest gap {max(gaps):.1f} s, alerts {alerts}")
    assert lost == 0 and doubled == 0, gaps
    assert alerts == 0
