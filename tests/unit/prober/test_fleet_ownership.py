"""Fleet ownership (rendezvous hashing) and the combined verdict rule, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lighthouse.alerting.state import Health
from lighthouse.fleet.ownership import members, owner
from lighthouse.fleet.verdict import View, combine, owed

IDS = [uuid.UUID(int=i * 7919 + 1) for i in range(10_000)]
T = datetime(2026, 12, 3, tzinfo=UTC)


def test_every_monitor_has_exactly_one_owner_per_location():
    rows = [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b")]
    views = [members(name, loc, rows) for name, loc in rows]
    for mid in IDS[:2000]:
        owners_a = [m.me for m in views if m.location == "a" and m.owns(mid, None)]
        owners_b = [m.me for m in views if m.location == "b" and m.owns(mid, None)]
        assert len(owners_a) == 1 and owners_b == ["b1"]


def test_a_join_moves_about_one_in_n_and_only_to_the_newcomer():
    before = {mid: owner(mid, ["p1", "p2", "p3"]) for mid in IDS}
    after = {mid: owner(mid, ["p1", "p2", "p3", "p4"]) for mid in IDS}
    moved = [mid for mid in IDS if before[mid] != after[mid]]
    assert all(after[mid] == "p4" for mid in moved)
    assert 0.22 < len(moved) / len(IDS) < 0.28  # 1/4, not a reshuffle


def test_a_death_moves_only_the_dead_probers_monitors():
    before = {mid: owner(mid, ["p1", "p2", "p3"]) for mid in IDS}
    after = {mid: owner(mid, ["p1", "p3"]) for mid in IDS}
    assert {mid for mid in IDS if before[mid] != after[mid]} == {
        mid for mid in IDS if before[mid] == "p2"}


def test_checked_from_quorum_and_lead():
    m = members("b1", "b", [("a1", "a"), ("c1", "c")])
    assert m.checked_from(None) == ("a", "b", "c") and m.quorum(None, None) == 2
    # a listed location without a live prober does not vote (it cannot see the target)
    assert m.voting(("a", "b", "c", "d")) == ("a", "b", "c")
    assert m.quorum(("a", "b", "c", "d"), None) == 2 and m.quorum(("b", "d"), 2) == 1
    assert m.quorum(("a", "b"), 5) == 2  # never more than the locations it is checked from
    assert not m.owns(IDS[0], ("a", "c"))  # not checked from here
    assert m.owns(IDS[0], ("b",))  # the only prober of its location
    assert not m.leads(None) and m.leads(("b", "c")) and m.leads(("x", "b"))


def test_combined_verdict_needs_the_quorum_both_ways():
    def views(**h):
        return [View(loc, health, T) for loc, health in h.items()]

    abc = ("a", "b", "c")
    assert combine(views(a="down"), abc, 2, Health.UP) == (Health.UP, ("a",), ())
    assert combine(views(a="down", b="down", c="up"), abc, 2, Health.UP)[0] is Health.DOWN
    assert combine(views(a="up", b="down", c="down"), abc, 2, Health.DOWN)[0] is Health.DOWN
    assert combine(views(a="up", b="up", c="down"), abc, 2, Health.DOWN)[0] is Health.UP
    assert combine(views(a="up"), abc, 2, Health.UNKNOWN)[0] is Health.UNKNOWN
    # a view from a location the monitor is not checked from is no vote
    assert combine(views(x="down", a="down"), abc, 2, Health.UP)[0] is Health.UP


def test_alerts_owed():
    assert owed(Health.DOWN, Health.UNKNOWN) and owed(Health.DOWN, Health.UP)
    assert owed(Health.UP, Health.DOWN)
    assert not owed(Health.UP, Health.UNKNOWN) and not owed(Health.DOWN, Health.DOWN)


def test_a_host_name_that_is_no_prober_name_is_a_start_up_error(monkeypatch, tmp_path):
    import socket

    import pytest
    from lighthouse.config import ConfigError, load
    from lighthouse.service import Prober

    monkeypatch.setattr(socket, "gethostname", lambda: "build box #7")
    cfg = load(None, env={"LIGHTHOUSE_DATABASE__DSN": "postgresql://x@127.0.0.1:1/x",
                          "LIGHTHOUSE_FLEET__ENABLED": "true",
                          "LIGHTHOUSE_STORAGE__SPOOL_DIR": str(tmp_path / "spool")})
    with pytest.raises(ConfigError, match=r"fleet.name: the host name 'build box #7'"):
        Prober(cfg)
    with pytest.raises(ConfigError, match=r"fleet.location: lower-case"):
        load(None, env={"LIGHTHOUSE_DATABASE__DSN": "postgresql://x@127.0.0.1:1/x",
                        "LIGHTHOUSE_FLEET__LOCATION": "EU West"})
