"""The prober fleet on sandbox hosts: four probers converged by site.yml (each host its own
network namespace) against the one database, in three locations, monitors with quorum 2.

- Cut location c's route to the target (a blackhole route inside both of c's hosts'
  namespaces): no downtime alert, the fleet says "degraded".
- Cut b's as well: exactly one downtime alert per monitor, not two or three; restore: one
  recovery each.
- Start a second prober in location c: ownership splits, nothing checked twice outside the
  change; kill it (SIGKILL, no goodbye): the other prober of c takes its monitors over once
  the lease runs out.
Duplicates and losses are counted from check_history, alerts from alert_history.

This module reshapes the shared sandbox (two more probers, other locations, 5 s monitors), so
tests/hosts/conftest.py runs it after every other host test.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
from lighthouse_ops.deploy.demo import DEMO_API_PORT
from lighthouse_ops.deploy.local import prepare_sandbox
from lighthouse_ops.sandbox import Sandbox
from lighthouse_ops.sandbox.commands import run

from tests.hosts.deploy_support import Converged, psql
from tests.integration.prober.test_prober_alert_channels import Recorder
from tests.support.pgserver import wait_for

LOCATIONS = {"prober-1": "loc-a", "prober-2": "loc-b", "prober-3": "loc-c", "prober-4": "loc-c"}
LEASE_S = 6
INTERVAL_S = 5
MONITORS = 6


def block(sandbox: Sandbox, host: str, ip: str, on: bool) -> None:
    """A location's route to the target cut (or restored) inside the host's namespace."""
    netns = sandbox.host(host).netns
    run(["ip", "netns", "exec", netns, "ip", "route", "add" if on else "del", "blackhole",
         f"{ip}/32"])


@pytest.fixture(scope="module")
def fleet(sandbox: Sandbox, site: Converged):
    sandbox.up(db=1, prober=4)
    dep = prepare_sandbox(sandbox)
    hooks = Recorder(host="0.0.0.0")  # noqa: S104 - reached over every host's sandbox link
    extra = {
        # per host: Ansible templates extra vars for each host it runs on
        "prober_fleet_location": "{{ " + json.dumps(LOCATIONS) + "[inventory_hostname] }}",
        "prober_fleet_lease_s": LEASE_S,
        "prober_config_extra": {"alerting": {"failure_threshold": 2, "success_threshold": 1}},
    }
    converged = dep.playbook("site.yml", extra, echo=False)
    assert converged.ok, converged.output[-3000:]
    # the fourth prober joins later: stopped until then
    sandbox.ssh("prober-4", "systemctl stop lighthouse-prober")
    target = sandbox.host("prober-1").ip
    hook_url = f"http://{sandbox.host('db-1').controller_ip}:{hooks.port}/hook"
    psql(sandbox, "ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_check_interval_min")
    psql(sandbox, "DELETE FROM subscriptions WHERE name LIKE 'demo:%'")  # only ours checked
    for i in range(MONITORS):
        psql(sandbox, f"""
WITH u AS (INSERT INTO users (display_name) VALUES ('fleet-{i}') RETURNING id),
     s AS (INSERT INTO subscriptions (user_id, name, target_type, target_config,
                                      check_interval_seconds, status, quorum)
           SELECT id, 'fleet {i}', 'tcp',
                  '{{"host": "{target}", "port": {DEMO_API_PORT}, "timeout_s": 2}}',
                  {INTERVAL_S}, 'active', 2 FROM u RETURNING id)
INSERT INTO alert_channels (subscription_id, channel_type, channel_config)
SELECT id, 'webhook', '{{"url": "{hook_url}"}}' FROM s""")
    try:
        yield sandbox, hooks, target
    finally:
        hooks.close()


def owned(sandbox: Sandbox, host: str) -> int:
    """How many monitors the host's prober schedules (its /health, read on the host)."""
    out = sandbox.ssh(host, "python3 -c \"import json, urllib.request; print(json.load("
                            "urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=5))"
                            "['scheduler']['monitors'])\"", check=False)
    text = out.stdout.strip()
    return int(text) if text.isdigit() else -1  # not answering (starting, killed)


def verdicts(sandbox: Sandbox, where: str) -> int:
    return int(psql(sandbox, f"SELECT count(*) FROM monitor_verdicts v JOIN subscriptions s "
                             f"ON s.id = v.subscription_id WHERE s.name LIKE 'fleet %' "
                             f"AND {where}")[0][0])


def series(sandbox: Sandbox, since: float) -> dict[tuple[str, str], list[float]]:
    rows = psql(sandbox, "SELECT s.name, c.location, extract(epoch FROM c.time) FROM "
                         "check_history c JOIN subscriptions s ON s.id = c.subscription_id "
                         f"WHERE s.name LIKE 'fleet %' AND c.time > to_timestamp({since}) "
                         "ORDER BY 1, 2, 3")
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for name, loc, t in rows:
        out[name, loc].append(float(t))
    return out


def gaps(times: list[float], windows: list[tuple[float, float]]) -> tuple[int, int]:
    """(doubled, lost) checks of one monitor in one location, outside the windows."""
    dup = lost = 0
    for t0, t1 in zip(times, times[1:], strict=False):
        if any(lo <= t1 and t0 <= hi for lo, hi in windows):
            continue
        if t1 - t0 < INTERVAL_S / 2:
            dup += 1
        elif t1 - t0 > INTERVAL_S * 1.5:
            lost += round((t1 - t0) / INTERVAL_S) - 1
    return dup, lost


def test_fleet_on_sandbox_hosts_one_verdict_one_alert_and_takeover(fleet):
    sandbox, hooks, target = fleet

    def alerts(kind: str) -> int:
        return hooks.alert_types().count(kind)

    start = time.time()
    assert wait_for(lambda: verdicts(sandbox, "v.health = 'up' AND cardinality(v.locations_up) "
                                          "= 3") == MONITORS, 60, interval=1.0), \
        "every location sees it up"

    block(sandbox, "prober-3", target, True)  # location c: its only running prober
    assert wait_for(lambda: verdicts(sandbox, "v.locations_down = '{loc-c}'") == MONITORS, 40,
                    interval=1.0)
    time.sleep(INTERVAL_S)
    assert verdicts(sandbox, "v.health = 'up'") == MONITORS and alerts("downtime") == 0

    block(sandbox, "prober-2", target, True)  # two locations of three: one alert each
    assert wait_for(lambda: alerts("downtime") >= MONITORS, 40, interval=1.0)
    time.sleep(2 * INTERVAL_S)
    assert alerts("downtime") == MONITORS and verdicts(sandbox, "v.health = 'down'") == \
        MONITORS
    for host in ("prober-2", "prober-3"):
        block(sandbox, host, target, False)
    assert wait_for(lambda: alerts("recovery") >= MONITORS, 40, interval=1.0)
    time.sleep(2 * INTERVAL_S)
    assert alerts("recovery") == MONITORS and alerts("downtime") == MONITORS
    rows = psql(sandbox, "SELECT a.alert_type, count(*) FROM alert_history a JOIN subscriptions "
                         "s ON s.id = a.subscription_id WHERE s.name LIKE 'fleet %' GROUP BY 1 "
                         "ORDER BY 1")
    assert rows == [["downtime", str(MONITORS)], ["recovery", str(MONITORS)]]

    joined = time.time()  # a second prober in location c: ownership splits
    sandbox.ssh("prober-4", "systemctl start lighthouse-prober")
    assert wait_for(lambda: owned(sandbox, "prober-4") > 0
                    and owned(sandbox, "prober-3") + owned(sandbox, "prober-4") == MONITORS, 60,
                    interval=1.0)
    join_done = time.time()
    time.sleep(3 * INTERVAL_S)

    crashed = time.time()  # no goodbye: SIGKILL, and no restart
    sandbox.ssh("prober-4", "systemctl kill --signal=SIGKILL lighthouse-prober; "
                            "systemctl stop lighthouse-prober")
    assert wait_for(lambda: owned(sandbox, "prober-3") == MONITORS, 4 * LEASE_S, interval=0.5)
    takeover_s = time.time() - crashed
    time.sleep(3 * INTERVAL_S)
    end = time.time()

    windows = [(joined - 1, join_done + INTERVAL_S), (crashed - 1, crashed + takeover_s
                                                      + 2 * INTERVAL_S)]
    dup = lost = 0
    for ts in series(sandbox, start + 15).values():
        d, x = gaps([t for t in ts if t < end], windows)
        dup, lost = dup + d, lost + x
    print(f"fleet on sandbox hosts: takeover {takeover_s:.1f} s; outside the change windows "
          f"{dup} doubled, {lost} lost checks")
    assert takeover_s <= LEASE_S + LEASE_S / 3 + 3
    assert dup == 0 and lost == 0
