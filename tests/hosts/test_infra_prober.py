"""testinfra: the converged prober host (venv release, hardened unit, config modes, /health,
/metrics, check rows written for a local target)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.hosts.deploy_support import Converged, psql


@pytest.fixture(scope="module")
def base_url(site: Converged, sandbox_hosts) -> str:
    return f"http://{sandbox_hosts['prober-1'].ip}:8080"


def test_release_venv_and_current_link(prober, site: Converged) -> None:
    current = prober.file("/opt/lighthouse/current")
    assert current.is_symlink
    assert current.linked_to == f"/opt/lighthouse/venvs/{site.dep.release.name}"
    out = prober.check_output("/opt/lighthouse/current/bin/lighthouse --version")
    assert site.dep.release.version in out
    assert prober.package("python3-venv").is_installed


def test_service_running_enabled_as_service_user(prober) -> None:
    svc = prober.service("lighthouse-prober")
    assert svc.is_running and svc.is_enabled
    procs = prober.process.filter(comm="lighthouse")
    assert procs and all(p.user == "lighthouse" for p in procs)


def test_unit_is_hardened(prober) -> None:
    props = dict(line.split("=", 1) for line in prober.check_output(
        "systemctl show lighthouse-prober -p NoNewPrivileges -p ProtectSystem -p PrivateTmp "
        "-p User -p ProtectHome -p CapabilityBoundingSet").splitlines())
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "strict"
    assert props["PrivateTmp"] == "yes"
    assert props["ProtectHome"] == "yes"
    assert props["User"] == "lighthouse"
    assert props["CapabilityBoundingSet"] == ""


def test_config_holds_secret_with_tight_mode(prober) -> None:
    f = prober.file("/etc/lighthouse/prober.yaml")
    assert f.user == "root" and f.group == "lighthouse" and f.mode == 0o640
    assert "dsn:" in f.content_string
    d = prober.file("/etc/lighthouse")
    assert d.mode == 0o750


def test_http_listens_on_loopback_and_the_inventory_address_only(prober, sandbox_hosts) -> None:
    prober_ip = sandbox_hosts["prober-1"].ip
    listening = prober.check_output("ss -Hltn 'sport = :8080'")
    assert {line.split()[3] for line in listening.splitlines()} == {"127.0.0.1:8080",
                                                                    f"{prober_ip}:8080"}


def test_health_ok_from_controller(base_url: str) -> None:
    with urllib.request.urlopen(f"{base_url}/health", timeout=10) as resp:  # noqa: S310
        body = json.loads(resp.read())
    assert resp.status == 200 and body["status"] == "ok"
    assert body["database"]["reachable"] is True


def test_prober_is_a_fleet_member_with_a_fresh_heartbeat(base_url: str, sandbox,
                                                         site: Converged) -> None:
    """The role turns the fleet on: the prober heartbeats into the sandbox's PostgreSQL 17 +
    TimescaleDB (the 007 migration's hypertable variant ran there), owns every monitor of its
    location, and its check rows carry the location."""
    with urllib.request.urlopen(f"{base_url}/health", timeout=10) as resp:  # noqa: S310
        fleet = json.loads(resp.read())["fleet"]
    assert fleet["name"] == "prober-1" and fleet["location"] == "default"
    assert fleet["members"] == {"default": ["prober-1"]}
    rows = psql(sandbox, "SELECT name, location, heartbeat_at > now() - interval '15 seconds' "
                         "FROM probers")
    assert rows == [["prober-1", "default", "t"]]
    deadline = time.monotonic() + 90  # the first checks come within one 60 s interval
    while True:
        (counts,) = psql(sandbox, "SELECT count(*) FILTER (WHERE location = 'default'), "
                                  "count(*) FILTER (WHERE location <> 'default') "
                                  "FROM check_history WHERE time > now() - interval '3 minutes'")
        if counts[0] != "0" or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert counts[0] != "0" and counts[1] == "0"


def test_log_file_is_written_group_readable_and_followed_across_rotation(prober, sandbox,
                                                                          site: Converged
                                                                          ) -> None:
    """prober_log_file (what the CloudWatch agent ships on AWS): the hardened unit writes it
    into its LogsDirectory, 0640 for the agent's group; after logrotate moves it the prober
    writes the next line into a new file of the same mode."""
    log = "/var/log/lighthouse/prober.log"
    d = prober.file("/var/log/lighthouse")
    assert (d.user, d.group, d.mode) == ("lighthouse", "lighthouse", 0o750)
    f = prober.file(log)
    assert (f.user, f.group, f.mode) == ("lighthouse", "lighthouse", 0o640)
    assert "msg=\"prober started\"" in f.content_string
    prober.run_expect([0], "logrotate -f /etc/logrotate.d/lighthouse-prober")
    assert prober.file(f"{log}.1").exists
    # a changed monitor is logged ("monitor updated", NOTIFY): the line the new file gets
    ((monitor,),) = psql(sandbox, "UPDATE subscriptions SET name = name "
                                  "WHERE name = 'demo: web page on db-1' RETURNING id")
    line = f'msg="monitor updated" monitor={monitor}'
    deadline = time.monotonic() + 30
    while not (prober.file(log).exists and line in prober.file(log).content_string):
        assert time.monotonic() < deadline, "no line in the new log file within 30 s"
        time.sleep(0.5)
    assert prober.file(log).mode == 0o640
    # a new file, not the old one reopened: the start-up line stayed behind in .1
    assert "prober started" in prober.file(f"{log}.1").content_string
    assert "prober started" not in prober.file(log).content_string


def test_metrics_exposed(base_url: str) -> None:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as resp:  # noqa: S310
        text = resp.read().decode()
    assert resp.status == 200 and "# TYPE" in text


def test_writes_check_rows_for_local_target(sandbox, site: Converged) -> None:
    """The demo target on db-1 is checked; a success row lands in check_history (bounded wait:
    the first check comes within one 60 s interval)."""
    sql = ("SELECT count(*) FROM check_history c JOIN subscriptions s ON s.id = c.subscription_id "
           "WHERE s.name = 'demo: web page on db-1' AND c.status = 'success'")
    deadline = time.monotonic() + 120
    while True:
        count = int(psql(sandbox, sql)[0][0])
        if count > 0 or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert count > 0
    # the closed port never yields a success
    ok_down = psql(sandbox, "SELECT count(*) FROM check_history c JOIN subscriptions s "
                            "ON s.id = c.subscription_id WHERE s.name LIKE 'demo: closed port%' "
                            "AND c.status = 'success'")
    assert ok_down == [["0"]]


def test_every_demo_monitor_type_is_checked_and_up(sandbox, site: Converged) -> None:
    """One demo monitor per type (websocket, graphql, balance, canary, dns, push, http, tcp)
    against the offline demo targets; each gets a successful check (bounded wait: the first
    checks come within one 60 s interval, the push timer beats every 30 s)."""
    sql = ("SELECT s.name, s.target_type, "
           "coalesce(bool_or(c.status = 'success'), false), "
           "coalesce(max(c.error_code || ': ' || c.error_message), '') "
           "FROM subscriptions s LEFT JOIN check_history c ON c.subscription_id = s.id "
           "WHERE s.name LIKE 'demo:%' AND s.name NOT LIKE 'demo: closed port%' "
           "GROUP BY s.name, s.target_type ORDER BY s.name")
    deadline = time.monotonic() + 150
    while True:
        rows = psql(sandbox, sql)
        if (rows and all(r[2] == "t" for r in rows)) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert {r[1] for r in rows} >= {"websocket", "graphql", "balance", "canary", "dns", "push",
                                    "http", "tcp"}
    assert [r for r in rows if r[2] != "t"] == []
    balances = psql(sandbox, "SELECT s.name, (c.timings->>'balance')::numeric FROM check_history c "
                             "JOIN subscriptions s ON s.id = c.subscription_id "
                             "WHERE s.target_type = 'balance' AND c.status = 'success' "
                             "ORDER BY s.name, c.time DESC LIMIT 1")
    assert balances and float(balances[0][1]) == 1234.56  # "demo: USDC balance" sorts first
