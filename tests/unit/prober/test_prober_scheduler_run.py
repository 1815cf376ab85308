"""The scheduler with an injected check function: bounded concurrency, no overlap, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

from lighthouse.models import CheckResult, Monitor, Status
from lighthouse.scheduler import Scheduler


def monitors(n: int, interval: int = 1) -> list[Monitor]:
    return [Monitor(uuid.uuid4(), f"m{i}", "tcp", {"host": "x", "port": 1}, interval)
            for i in range(n)]


async def wait_until(pred, timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.01)
    return pred()


def test_runs_every_monitor_with_bounded_concurrency():
    async def main():
        running = 0
        peak = 0
        seen: dict[uuid.UUID, int] = {}
        results: list[CheckResult] = []

        async def check(m: Monitor) -> CheckResult:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1
            seen[m.id] = seen.get(m.id, 0) + 1
            return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS, latency_ms=20)

        s = Scheduler(check, lambda m, r: results.append(r), max_concurrency=5)
        ms = monitors(40)
        s.replace_all(ms)
        s.start()
        assert await wait_until(lambda: len(seen) == 40 and min(seen.values()) >= 2)
        summary = await s.stop(grace_s=2)
        assert peak <= 5
        assert len(results) == s.completed == sum(seen.values())
        assert summary["aborted"] == 0
        assert s.lateness.quantile(0.5) is not None

    asyncio.run(main())


def test_a_slow_check_is_never_run_twice_at_once():
    async def main():
        active: set[uuid.UUID] = set()
        overlap = False
        runs = 0

        async def check(m: Monitor) -> CheckResult:
            nonlocal overlap, runs
            overlap |= m.id in active
            active.add(m.id)
            await asyncio.sleep(1.6)  # longer than the 1 s interval
            active.discard(m.id)
            runs += 1
            return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS)

        s = Scheduler(check, lambda m, r: None, max_concurrency=4)
        s.replace_all(monitors(1), run_new_now=True)
        s.start()
        assert await wait_until(lambda: s.skipped["running"] >= 1 and runs >= 1)
        await s.stop(grace_s=3)
        assert not overlap

    asyncio.run(main())


def test_stop_waits_for_in_flight_then_records_the_rest():
    async def main():
        results: list[CheckResult] = []
        release = asyncio.Event()

        async def check(m: Monitor) -> CheckResult:
            if m.name == "stuck":
                await asyncio.sleep(3600)
            await release.wait()
            return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS)

        quick, stuck = monitors(2, interval=60)
        stuck.name = "stuck"
        s = Scheduler(check, lambda m, r: results.append(r), max_concurrency=4,
                      check_timeout_s=lambda m: 7200)
        s.upsert(quick, run_now=True)
        s.upsert(stuck, run_now=True)
        s.start()
        assert await wait_until(lambda: s.in_flight == 2)
        asyncio.get_running_loop().call_later(0.1, release.set)
        summary = await s.stop(grace_s=0.5)
        by_id = {r.subscription_id: r for r in results}
        assert by_id[quick.id].status is Status.SUCCESS  # finished within the grace period
        assert by_id[stuck.id].error_code == "shutdown"  # recorded, not lost
        assert summary["aborted"] == 1

    asyncio.run(main())


def test_reload_adds_changes_and_removes():
    async def main():
        calls: list[uuid.UUID] = []

        async def check(m: Monitor) -> CheckResult:
            calls.append(m.id)
            return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS)

        s = Scheduler(check, lambda m, r: None, max_concurrency=2)
        a, b = monitors(2, interval=60)
        assert s.replace_all([a, b]) == {"added": 2, "changed": 0, "removed": 0}
        b2 = Monitor(b.id, "renamed", b.type, b.config, 120)
        assert s.replace_all([b2]) == {"added": 0, "changed": 1, "removed": 1}
        assert [m.name for m in s.monitors()] == ["renamed"]
        s.start()
        c = monitors(1, interval=60)[0]
        s.upsert(c, run_now=True)  # a monitor added at run time is checked at once
        assert await wait_until(lambda: c.id in calls)
        assert a.id not in calls
        await s.stop(grace_s=1)

    asyncio.run(main())


def test_a_raising_check_function_becomes_an_error_result():
    async def main():
        results: list[CheckResult] = []

        async def check(m: Monitor) -> CheckResult:
            raise RuntimeError("boom")

        s = Scheduler(check, lambda m, r: results.append(r), max_concurrency=1)
        s.upsert(monitors(1, 60)[0], run_now=True)
        s.start()
        assert await wait_until(lambda: results)
        await s.stop(grace_s=1)
        assert results[0].status is Status.ERROR and results[0].error_code == "internal"

    asyncio.run(main())


def test_a_check_that_ignores_its_deadline_is_abandoned_and_its_worker_replaced():
    async def main():
        stubborn, healthy = monitors(2, 60)
        results: list[CheckResult] = []
        released = asyncio.Event()

        async def check(m: Monitor) -> CheckResult:
            if m.id == stubborn.id:
                while not released.is_set():  # swallows cancellation: a bug to survive
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.sleep(10)
                raise asyncio.CancelledError
            return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS)

        # One worker: if the stubborn check kept it, the healthy monitor would never run again.
        s = Scheduler(check, lambda m, r: results.append(r), max_concurrency=1,
                      check_timeout_s=lambda m: 0.2, abandon_grace_s=0.3)
        s.upsert(stubborn, run_now=True)
        s.start()
        try:
            assert await wait_until(lambda: s.abandoned == 1, timeout=5)
            s.upsert(healthy, run_now=True)
            assert await wait_until(lambda: any(r.subscription_id == healthy.id
                                                for r in results))
            (gone,) = [r for r in results if r.subscription_id == stubborn.id]
            assert (gone.status, gone.error_code) == (Status.TIMEOUT, "timeout")
            assert "abandoned" in gone.error_message
            assert s.metrics.abandoned._value.get() == 1
            await s.stop(grace_s=0.1)  # returns although the abandoned task has not ended
        finally:
            released.set()  # let asyncio.run's clean-up end it

    asyncio.run(main())


def test_a_monitor_added_at_run_time_then_keeps_the_phase_a_restart_gives_it():
    """Checked at once, then on its stable slots (stable_offset), not `added + k * interval`:
    a restart does not move its checks (docs/prober.md: phases persist)."""
    from lighthouse.scheduler import stable_offset

    async def main():
        times: list[float] = []

        async def check(m: Monitor) -> CheckResult:
            times.append(s.clock())
            return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS)

        s = Scheduler(check, lambda m, r: None, max_concurrency=1)
        m = Monitor(uuid.UUID(int=700), "late", "tcp", {"host": "x", "port": 1}, 2)
        offset = stable_offset(m.id, 2)
        s.start()
        # added half an interval away from its phase
        await asyncio.sleep((offset + 1.0 - s.clock()) % 2)
        s.upsert(m, run_now=True)
        assert await wait_until(lambda: len(times) >= 3, timeout=8)
        await s.stop(grace_s=1)
        for t in times[1:]:
            drift = (t - offset) % 2
            assert min(drift, 2 - drift) < 0.2, (times, offset)

    asyncio.run(main())
