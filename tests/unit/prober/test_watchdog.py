"""The watchdog: a stalled event loop or scheduler ends the process (exit 70), with stacks."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from lighthouse.watchdog import EXIT_STALLED, Watchdog

from tests.unit.checks.aio import run_async

pytestmark = pytest.mark.unit


def test_stalled_reports_the_loop_and_the_scheduler():
    dog = Watchdog(5.0, scheduler_tick=lambda: None)
    dog.beat = 100.0
    assert dog.stalled(now=104.0) is None
    assert dog.stalled(now=106.0).startswith("event loop stalled for 6.0 s")
    dog = Watchdog(5.0, scheduler_tick=lambda: 90.0)
    dog.beat = 100.0
    assert dog.stalled(now=101.0).startswith("scheduler stalled for 11.0 s")


def test_a_healthy_loop_is_left_alone_and_pings_systemd(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "90000000")
    exits: list[int] = []

    async def go():
        dog = Watchdog(0.5, exit_fn=exits.append, beat_s=0.05)
        dog.start()
        await asyncio.sleep(1.0)  # twice the stall limit, but the loop kept beating
        await dog.stop()

    run_async(go())
    assert exits == []
    assert sock.recv(64) == b"WATCHDOG=1"
    sock.close()


def test_a_blocked_loop_exits_70_with_a_stack_dump():
    """A real process whose event loop is held by a busy loop: it must die, not hang."""
    script = textwrap.dedent("""
        import asyncio
        from lighthouse.watchdog import Watchdog

        def spin_forever():
            while True:
                pass

        async def main():
            Watchdog(0.5, beat_s=0.1).start()
            await asyncio.sleep(0.2)
            spin_forever()

        asyncio.run(main())
    """)
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONFAULTHANDLER": ""})
    assert out.returncode == EXIT_STALLED, out.stderr
    assert 'msg="event loop stalled for' in out.stderr
    assert "spin_forever" in out.stderr  # the stack names the culprit
    assert time.monotonic() - started < 30


def test_a_loop_that_ended_without_stop_is_not_a_stall():
    """A start-up that failed after start() leaves no thread that later kills the process."""
    exits: list[int] = []
    dog = Watchdog(0.2, exit_fn=exits.append, beat_s=0.05)

    async def go():
        dog.start()
        await asyncio.sleep(0.1)
        dog._task.cancel()  # what a closing loop does to its tasks, minus the warning

    run_async(go())  # the loop closes without dog.stop()
    dog._thread.join(timeout=5)
    assert not dog._thread.is_alive() and exits == []
