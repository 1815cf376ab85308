"""Waiters: exponential backoff capped at max, deadline honoured, last state reported."""

from __future__ import annotations

import pytest
from lighthouse_ops.aws.waiters import Backoff, WaitFailed, WaitTimeout, wait_until

from tests.integration.aws.fakes import FakeClock


def test_returns_first_done_state_and_backs_off_exponentially():
    states = iter(["pending"] * 5 + ["running"])
    clock = FakeClock()
    got = wait_until(lambda: next(states), what="x", done=lambda s: s == "running",
                     backoff=Backoff(timeout_s=100, initial_s=1, max_s=5, factor=2), clock=clock)
    assert got == "running"
    assert clock.sleeps == [1, 2, 4, 5, 5]


def test_timeout_reports_what_and_last_state_and_never_oversleeps_the_deadline():
    clock = FakeClock()
    with pytest.raises(WaitTimeout) as err:
        wait_until(lambda: "pending", what="instance i-1 to be running", done=lambda s: False,
                   backoff=Backoff(timeout_s=10, initial_s=3, max_s=30), clock=clock)
    assert err.value.last_state == "pending"
    assert err.value.waited_s == pytest.approx(10)
    assert "instance i-1 to be running" in str(err.value)
    assert clock.sleeps == [3, 6, 1]  # the last delay is cut to the time remaining


def test_failed_state_stops_waiting_at_once():
    clock = FakeClock()
    with pytest.raises(WaitFailed, match="terminated"):
        wait_until(lambda: "terminated", what="x", done=lambda s: s == "running",
                   failed=lambda s: s == "terminated", clock=clock)
    assert clock.sleeps == []


def test_on_poll_sees_every_state():
    seen = []
    states = iter(["a", "b", "c"])
    wait_until(lambda: next(states), what="x", done=lambda s: s == "c", clock=FakeClock(),
               on_poll=lambda s, _w: seen.append(s))
    assert seen == ["a", "b", "c"]
