"""Runs every monitor once per interval, spread over the interval, with bounded concurrency.

Spreading: a monitor's checks fall on the wall-clock slots `k * interval + offset`, where the
offset comes from its UUID (`stable_offset`). Offsets are uniform over the interval, so 50,000
monitors at 60 s arrive as ~833 checks/s rather than 50,000 at once; they are the same after a
restart and on every prober, so restarts do not bunch checks either.

Mechanics: one dispatcher task keeps a heap of (due time, monitor) and moves due checks into a
queue; `max_concurrency` worker tasks take them off and run the check function. Lateness (start
minus slot) is recorded per check. A monitor is never run twice at once; a due check whose
previous run is still going, or that waited longer than its interval, is skipped and counted.

Hard deadline: each check runs under `check_timeout_s(monitor)`. A check that does not end by
then plus `abandon_grace_s` (it ignored cancellation) is abandoned: recorded as a timeout,
counted, its monitor freed for its next slot and its worker replaced, so no check can take
capacity away for good. (A check that holds the event loop itself is the watchdog's case.)
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lighthouse.logs import event
from lighthouse.metrics import Metrics
from lighthouse.models import CheckResult, Monitor, Status

log = logging.getLogger("lighthouse.scheduler")

CheckFn = Callable[[Monitor], Awaitable[CheckResult]]
ResultFn = Callable[[Monitor, CheckResult], None]
TICK_MIN = 0.005  # seconds; the dispatcher's finest granularity
TICK_MAX = 0.05  # seconds; longest dispatcher sleep (new run_now monitors wait at most this)


def stable_offset(monitor_id: uuid.UUID, interval_s: float) -> float:
    """Seconds into each interval at which this monitor runs (millisecond resolution)."""
    span = max(int(interval_s * 1000), 1)
    return (monitor_id.int % span) / 1000.0


def next_slot(monitor_id: uuid.UUID, interval_s: float, after: float) -> float:
    """The first slot time (epoch seconds) strictly after `after`."""
    offset = stable_offset(monitor_id, interval_s)
    slot = ((after - offset) // interval_s + 1) * interval_s + offset
    if slot - interval_s > after:  # float rounding put us one interval too far
        slot -= interval_s
    return slot if slot > after else slot + interval_s


@dataclass(slots=True)
class _Flight:
    monitor: Monitor
    entry: _Entry
    started: datetime
    deadline: float  # monotonic
    hard_s: float


@dataclass(slots=True)
class _Entry:
    monitor: Monitor
    gen: int = 0  # bumped when the schedule changes; stale heap items are ignored
    running: bool = False
    off_phase: bool = False  # first check run at once (added at run time): realign after it


@dataclass
class LatenessWindow:
    """The last N lateness samples, for /health and the capacity bench."""

    size: int = 100_000
    samples: deque[float] = field(default_factory=deque)

    def add(self, value: float) -> None:
        if len(self.samples) >= self.size:
            self.samples.popleft()
        self.samples.append(value)

    def quantile(self, q: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Scheduler:
    def __init__(self, check: CheckFn, on_result: ResultFn, *, max_concurrency: int = 500,
                 max_queue: int = 100_000, metrics: Metrics | None = None,
                 check_timeout_s: Callable[[Monitor], float] | None = None,
                 abandon_grace_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.check = check
        self.on_result = on_result
        self.max_concurrency = max_concurrency
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.check_timeout_s = check_timeout_s or (lambda m: 60.0)
        self.abandon_grace_s = abandon_grace_s
        self.abandoned = 0
        self._abandoned_tasks: set[asyncio.Task[None]] = set()  # kept referenced, not awaited
        self._next_reap = 0.0
        self.lateness = LatenessWindow()
        self.started = 0  # checks started
        self.completed = 0
        self.skipped: dict[str, int] = {"running": 0, "overdue": 0, "queue_full": 0}
        self.last_tick: float | None = None  # monotonic time of the last dispatcher loop
        self._entries: dict[uuid.UUID, _Entry] = {}
        self._heap: list[tuple[float, int, uuid.UUID, int]] = []
        self._seq = itertools.count()
        self._queue: asyncio.Queue[tuple[float, _Entry]] = asyncio.Queue(max_queue)
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: dict[asyncio.Task[None], _Flight] = {}
        self._stopping = False
        self._status_counters: dict[Status, Any] = {}
        self.on_remove: Callable[[uuid.UUID], None] | None = None  # e.g. drop alert state
        self.running = False
        # Gauges read at scrape time: setting them per check costs more than the check's
        # bookkeeping itself at ~1,000 checks/s.
        self.metrics.monitors.set_function(lambda: len(self._entries))
        self.metrics.queue_depth.set_function(lambda: self._queue.qsize())
        self.metrics.in_flight.set_function(lambda: len(self._in_flight))

    # -- monitor set -------------------------------------------------------------------
    @property
    def monitor_count(self) -> int:
        return len(self._entries)

    def ids(self) -> list[uuid.UUID]:
        return list(self._entries)

    def has(self, monitor_id: uuid.UUID) -> bool:
        return monitor_id in self._entries

    def monitors(self) -> list[Monitor]:
        return [e.monitor for e in self._entries.values()]

    def get(self, monitor_id: uuid.UUID) -> Monitor | None:
        entry = self._entries.get(monitor_id)
        return entry.monitor if entry else None

    def _schedule(self, entry: _Entry, due: float) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), entry.monitor.id, entry.gen))

    def upsert(self, monitor: Monitor, run_now: bool = False, not_before: float = 0.0) -> None:
        """Adds or updates a monitor. `run_now`: a new monitor gets its first check at once;
        `not_before`: its first slot is after this time (start-up: let the loading finish)."""
        entry = self._entries.get(monitor.id)
        now = max(self.clock(), not_before)
        if entry is None:
            entry = self._entries[monitor.id] = _Entry(monitor, off_phase=run_now)
            self._schedule(entry, now if run_now else next_slot(monitor.id, monitor.cadence_s,
                                                               now))
        else:
            interval_changed = entry.monitor.cadence_s != monitor.cadence_s
            entry.monitor = monitor  # config changes apply from the next check
            if interval_changed:
                entry.gen += 1
                self._schedule(entry, next_slot(monitor.id, monitor.cadence_s, now))

    def remove(self, monitor_id: uuid.UUID) -> bool:
        gone = self._entries.pop(monitor_id, None) is not None
        if gone and self.on_remove is not None:
            self.on_remove(monitor_id)
        return gone

    def replace_all(self, monitors: Iterable[Monitor], run_new_now: bool = False,
                    not_before: float = 0.0) -> dict[str, int]:
        """Makes the scheduled set equal to `monitors` (a full reload); returns the diff sizes."""
        wanted = {m.id: m for m in monitors}
        removed = [mid for mid in self._entries if mid not in wanted]
        for mid in removed:
            self.remove(mid)
        added = 0
        changed = 0
        for m in wanted.values():
            old = self._entries.get(m.id)
            if old is None:
                added += 1
            elif old.monitor != m:
                changed += 1
            else:
                continue
            self.upsert(m, run_now=run_new_now, not_before=not_before)
        return {"added": added, "changed": changed, "removed": len(removed)}

    # -- running -----------------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        self._tasks.append(asyncio.create_task(self._dispatch(), name="lh-dispatch"))
        for i in range(self.max_concurrency):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"lh-worker-{i}"))

    async def _dispatch(self) -> None:
        while not self._stopping:
            self.last_tick = tick = time.monotonic()
            if tick >= self._next_reap:
                self._next_reap = tick + 1.0
                self._reap_overruns(tick)
            now = self.clock()
            while self._heap and self._heap[0][0] <= now:
                due, _, mid, gen = heapq.heappop(self._heap)
                entry = self._entries.get(mid)
                if entry is None or entry.gen != gen:
                    continue  # removed or rescheduled
                if entry.off_phase:  # then on the monitor's stable slots, as after a restart
                    entry.off_phase = False
                    self._schedule(entry, next_slot(mid, entry.monitor.cadence_s, due))
                else:
                    self._schedule(entry, due + entry.monitor.cadence_s)
                if entry.running:
                    self._skip("running", entry.monitor)
                    continue
                try:
                    self._queue.put_nowait((due, entry))
                except asyncio.QueueFull:
                    self._skip("queue_full", entry.monitor)
            # Sleep until the next slot, but at least TICK_MIN (dispatch in small batches:
            # at ~1,000 checks/s a wake-up per check costs more than the check's lateness)
            # and at most TICK_MAX (how soon a monitor added with run_now starts).
            delay = self._heap[0][0] - self.clock() if self._heap else TICK_MAX
            await asyncio.sleep(min(max(delay, TICK_MIN), TICK_MAX))

    def _skip(self, reason: str, monitor: Monitor) -> None:
        self.skipped[reason] += 1
        self.metrics.skipped.labels(reason).inc()
        if self.skipped[reason] in (1, 10, 100) or self.skipped[reason] % 1000 == 0:
            event(log, "check skipped", logging.WARNING, reason=reason, monitor=monitor.id,
                  skipped_total=self.skipped[reason])

    async def _worker(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while True:
            due, entry = await self._queue.get()
            monitor = entry.monitor
            late = self.clock() - due
            if entry.monitor.id not in self._entries or entry.running:
                continue
            if late > monitor.cadence_s:
                self._skip("overdue", monitor)
                continue
            self.lateness.add(late)
            self.metrics.lateness.observe(max(late, 0.0))
            entry.running = True
            self.started += 1
            hard = self.check_timeout_s(monitor)
            self._in_flight[me] = _Flight(monitor, entry, datetime.now(UTC),
                                          time.monotonic() + hard, hard)
            # Cancellation (stop) propagates from here: stop() records what was in flight.
            result = await self._run_one(monitor, hard)
            if self._in_flight.pop(me, None) is None:
                return  # abandoned meanwhile: recorded, and a new worker took this one's place
            entry.running = False
            self._deliver(monitor, result)

    async def _run_one(self, monitor: Monitor, hard_s: float) -> CheckResult:
        started = datetime.now(UTC)
        try:
            async with asyncio.timeout(hard_s):  # no extra task
                return await self.check(monitor)
        except TimeoutError:
            return CheckResult(monitor.id, started, Status.TIMEOUT, error_code="timeout",
                               error_message="check exceeded the scheduler's hard deadline")
        except Exception as exc:  # run_check never raises; an injected function might
            log.exception("check function raised", extra={"kv": {"monitor": monitor.id}})
            return CheckResult(monitor.id, started, Status.ERROR, error_code="internal",
                               error_message=f"{type(exc).__name__}: {exc}"[:500])

    def _reap_overruns(self, now: float) -> None:
        """Abandon checks still running abandon_grace_s past their hard deadline."""
        for task, flight in list(self._in_flight.items()):
            overrun = now - flight.deadline
            if overrun <= self.abandon_grace_s:
                continue
            del self._in_flight[task]
            flight.entry.running = False
            task.cancel()  # once more; it did not honour the deadline's cancellation
            self._tasks.remove(task)
            self._abandoned_tasks.add(task)
            task.add_done_callback(self._abandoned_tasks.discard)
            self._tasks.append(asyncio.create_task(self._worker(), name=task.get_name()))
            self.abandoned += 1
            self.metrics.abandoned.inc()
            event(log, "check abandoned", logging.ERROR, monitor=flight.monitor.id,
                  hard_deadline_s=flight.hard_s, overrun_s=round(overrun, 1))
            self._deliver(flight.monitor, CheckResult(
                flight.monitor.id, flight.started, Status.TIMEOUT, error_code="timeout",
                error_message=f"check abandoned: still running {overrun:.0f} s after its "
                              f"{flight.hard_s:g} s hard deadline"))

    def _deliver(self, monitor: Monitor, result: CheckResult) -> None:
        self.completed += 1
        counter = self._status_counters.get(result.status)
        if counter is None:
            counter = self._status_counters[result.status] = self.metrics.checks.labels(
                str(result.status))
        counter.inc()
        if result.error_code == "internal":
            self.metrics.internal_errors.inc()
        if result.latency_ms is not None:
            self.metrics.check_latency.observe(result.latency_ms / 1000)
        try:
            self.on_result(monitor, result)
        except Exception:
            log.exception("result handler failed", extra={"kv": {"monitor": monitor.id}})

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def stop(self, grace_s: float = 10.0) -> dict[str, int]:
        """Stops dispatching, lets in-flight checks finish for up to `grace_s`, then records
        the rest as errors (error_code "shutdown") so no started check goes unrecorded."""
        self._stopping = True
        dropped = 0
        while not self._queue.empty():  # not started yet: nothing to record
            self._queue.get_nowait()
            dropped += 1
        deadline = time.monotonic() + grace_s
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        aborted = list(self._in_flight.values())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for flight in aborted:
            monitor = flight.monitor
            self._deliver(monitor, CheckResult(
                monitor.id, flight.started, Status.ERROR, error_code="shutdown",
                error_message="prober stopped before the check finished"))
        self._in_flight.clear()
        self.running = False
        summary = {"not_started": dropped, "aborted": len(aborted)}
        event(log, "scheduler stopped", **summary, completed=self.completed)
        return summary
