"""Monitors reload without restart: LISTEN/NOTIFY for each change, a full poll as fallback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
from lighthouse.models import CheckResult, Monitor, Status
from lighthouse.scheduler import Scheduler
from lighthouse.source import MonitorSource

from tests.integration.prober.conftest import add_monitor


async def wait_until(pred, timeout: float = 15.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


def test_changes_reach_the_scheduler_without_restart(lh_dsn, monkeypatch):
    first = add_monitor(lh_dsn, "first", {"url": "http://127.0.0.1:9/"})
    add_monitor(lh_dsn, "paused one", {"url": "http://127.0.0.1:9/"}, status="paused")
    # A prober older than the schema skips the types it does not know.
    monkeypatch.setattr("lighthouse.source.PROBED_TYPES", ("http", "tcp", "tls"))
    add_monitor(lh_dsn, "not probed here", {"x": 1}, type_="balance")

    async def main():
        checked: list = []

        async def check(m: Monitor) -> CheckResult:
            checked.append(m.id)
            return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS)

        sched = Scheduler(check, lambda m, r: None, max_concurrency=2)
        src = MonitorSource(lh_dsn, sched, poll_s=3600)
        assert await src.initial_load() == 1
        sched.start()
        task = asyncio.create_task(src.run())
        assert await wait_until(lambda: src.listening)
        names = lambda: sorted(m.name for m in sched.monitors())  # noqa: E731

        # INSERT -> NOTIFY -> scheduled and (added at run time) checked at once
        second = await asyncio.to_thread(add_monitor, lh_dsn, "second",
                                         {"url": "http://127.0.0.1:9/"})
        assert await wait_until(lambda: names() == ["first", "second"])
        assert await wait_until(lambda: second in checked)

        with psycopg.connect(lh_dsn, autocommit=True) as conn:
            conn.execute("UPDATE subscriptions SET check_interval_seconds = 300, name = 'one' "
                         "WHERE id = %s", (first,))
            assert await wait_until(lambda: names() == ["one", "second"])
            assert {m.name: m.interval_s for m in sched.monitors()}["one"] == 300
            conn.execute("UPDATE subscriptions SET status = 'paused' WHERE id = %s", (second,))
            assert await wait_until(lambda: names() == ["one"])
            conn.execute("DELETE FROM subscriptions WHERE id = %s", (first,))
            assert await wait_until(lambda: names() == [])
            # A change NOTIFY does not announce (trigger off) is found by the periodic poll.
            conn.execute("ALTER TABLE subscriptions DISABLE TRIGGER subscriptions_notify")
            conn.execute("UPDATE subscriptions SET status = 'active' WHERE id = %s", (second,))
            await asyncio.sleep(0.5)
            assert names() == []
            src.poll_s = 0.2
            assert await wait_until(lambda: names() == ["second"])
        src.stop()
        await task
        await sched.stop(grace_s=1)
        assert src.notifications >= 4

    asyncio.run(main())


def test_wake_ends_the_reconnect_backoff_at_once(lh_dsn):
    """A source whose connection failed waits out its backoff, unless woken (the prober wakes it
    when the writer reaches the database again): LISTEN follows within a second, not a minute."""
    async def main():
        sched = Scheduler(lambda m: None, lambda m, r: None, max_concurrency=1)
        src = MonitorSource(lh_dsn, sched, poll_s=3600)
        src.first_backoff_s = 120.0  # without wake() this test would wait two minutes
        real_connect, failures = src._connect, []

        async def flaky_connect():
            if not failures:
                failures.append(1)
                raise OSError("database restarting")
            return await real_connect()

        src._connect = flaky_connect
        task = asyncio.create_task(src.run())
        assert await wait_until(lambda: failures, timeout=5)
        await asyncio.sleep(0.5)
        assert not src.listening  # waiting out the 120 s backoff
        t0 = asyncio.get_running_loop().time()
        src.wake()
        assert await wait_until(lambda: src.listening, timeout=5)
        assert asyncio.get_running_loop().time() - t0 < 5
        src.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
