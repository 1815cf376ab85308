"""Reading `patronictl list -f json` and the refusals a switchover or drill plan makes before
anything changes. The output below is Patroni 4.0.7's (Debian trixie), taken from a sandbox
cluster; the runs themselves are in tests/hosts/test_ha_patroni.py."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import pytest
from lighthouse_ops.aws.runbook import RunbookRefused
from lighthouse_ops.ha.patroni import (
    Cluster,
    HaError,
    leader_of,
    parse_members,
    plan_failover_drill,
    plan_switchover,
)


def row(member, role, state, lag=0, tl=4):
    r = {"Cluster": "lighthouse", "Member": member, "Host": f"10.0.0.{member[-1]}",
         "Role": role, "State": state, "TL": tl}
    if role != "Leader":
        r["Lag in MB"] = lag
    return r


HEALTHY = [row("db-1", "Replica", "streaming"), row("db-2", "Leader", "running"),
           row("db-3", "Replica", "streaming", lag=3)]


@dataclass
class Recorded:
    """A member that answers `patronictl list` with fixed output and records other commands."""

    name: str
    listing: list
    python: str = "python3"

    def __post_init__(self) -> None:
        self.commands: list[str] = []

    def run(self, command, *, input_text=None, check=True, timeout=3600):
        self.commands.append(command)
        return subprocess.CompletedProcess(command, 0, json.dumps(self.listing), "")


def cluster(listing) -> Cluster:
    return Cluster({n: Recorded(n, listing) for n in ("db-1", "db-2", "db-3")})


def test_members_are_read_with_roles_lag_and_leader():
    members = parse_members(json.dumps(HEALTHY))
    assert [(m.name, m.role, m.streaming, m.lag_mb) for m in members] == [
        ("db-1", "Replica", True, 0), ("db-2", "Leader", False, None),
        ("db-3", "Replica", True, 3)]
    assert leader_of(members).name == "db-2"
    assert members[2].line() == "db-3 (10.0.0.3): Replica, streaming, timeline 4, lag 3 MB"
    with pytest.raises(HaError, match="did not print JSON"):
        parse_members("Error: Can not find suitable configuration of distributed configuration")


def test_switchover_goes_to_the_least_lagging_replica_and_changes_nothing_while_planning():
    c = cluster(HEALTHY)
    plan = plan_switchover(c)
    assert plan.steps[0].title == "switch over from db-2 to db-1"
    assert all("switchover" not in cmd for r in c.runners.values() for cmd in r.commands)


@pytest.mark.parametrize(("listing", "candidate", "reason"), [
    ([row("db-1", "Replica", "streaming"), row("db-2", "Replica", "streaming")], None,
     "no single running leader"),
    ([row("db-1", "Leader", "running"), row("db-2", "Replica", "stopped")], None,
     "no replica is streaming"),
    (HEALTHY, "db-3", "lags 3 MB"),
    (HEALTHY, "db-2", "already is the leader"),
    (HEALTHY, "db-9", "is not a member"),
])
def test_switchover_refusals(listing, candidate, reason):
    with pytest.raises(RunbookRefused, match=reason):
        plan_switchover(cluster(listing), candidate)


def test_a_drill_needs_a_replica_to_promote_and_a_known_kill_mode():
    lonely = [row("db-1", "Leader", "running"), row("db-2", "Replica", "starting")]
    with pytest.raises(RunbookRefused, match="no replica is streaming"):
        plan_failover_drill(cluster(lonely), "node")
    with pytest.raises(RunbookRefused, match="--kill must be one of"):
        plan_failover_drill(cluster(HEALTHY), "power")
    plan, _ = plan_failover_drill(cluster(HEALTHY), "node")
    assert [s.title for s in plan.steps][:2] == ["kill db-2", "wait for a writable leader"]
