"""The one verdict of a monitor checked from several locations, and its one alert.

Each location's owner keeps its own view with the usual thresholds (AlertPolicy); when that
view changes it reports it here. The report and the decision run in one transaction that holds
the monitor's monitor_verdicts row lock, so however many probers report at once they decide one
after the other, each seeing the others' committed views:
- down when at least `quorum` locations see it down, up when at least `quorum` see it up,
  otherwise it stays as it was ("degraded" when some locations see it down);
- only views held by live probers count (a dead prober's view is not a vote);
- the prober whose report changes the verdict sends the one alert (unless a maintenance window
  mutes it; `notified` remembers what was last sent, and a sweep every lease sends the current
  state once the window is over, as the local policy does after flapping);
- flap damping as a single location's state machine has it: more verdict changes than
  `flap_max_transitions` within `flap_window_s` (kept in the row: whoever decides next sees
  them) holds the alert back; once calm, the sweep sends the current state once if it differs
  from the last one sent.
If the database cannot be reached for longer than the lease, a prober falls back to its own
location's view and sends that alert itself: during a database outage an alert may come from
each location, rather than none at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg_pool import AsyncConnectionPool

from lighthouse.alerting.state import Alert, Change, Health
from lighthouse.fleet.membership import Membership, live
from lighthouse.logs import event
from lighthouse.metrics import Metrics
from lighthouse.models import CheckResult, Monitor, Status
from lighthouse.redact import redact, target_of

log = logging.getLogger("lighthouse.fleet.verdict")

ENSURE_SQL = "INSERT INTO monitor_verdicts (subscription_id) VALUES (%s) ON CONFLICT DO NOTHING"
LOCK_SQL = ("SELECT health, notified, transitions FROM monitor_verdicts "
            "WHERE subscription_id = %s FOR UPDATE")
REPORT_SQL = """
INSERT INTO location_verdicts (subscription_id, location, health, since, prober, error_code,
                               detail)
VALUES (%(id)s, %(location)s, %(health)s, %(since)s, %(prober)s, %(code)s, %(detail)s)
ON CONFLICT (subscription_id, location) DO UPDATE
  SET health = EXCLUDED.health, since = EXCLUDED.since, prober = EXCLUDED.prober,
      error_code = EXCLUDED.error_code, detail = EXCLUDED.detail, updated_at = now()
"""
VIEWS_SQL = f"""
SELECT v.location, v.health, v.since, v.error_code, v.detail
FROM location_verdicts v
JOIN probers p ON p.name = v.prober AND {live("p")}
WHERE v.subscription_id = %s
"""
DECIDE_SQL = """
UPDATE monitor_verdicts
SET health = %(health)s, notified = %(notified)s, since = coalesce(%(since)s, since),
    locations_down = %(down)s, locations_up = %(up)s, decided_by = %(prober)s,
    transitions = %(transitions)s, updated_at = now()
WHERE subscription_id = %(id)s
"""
# Verdicts an alert is still owed for (a window ended, a fallback): re-decided every lease.
OWED_SQL = "SELECT subscription_id FROM monitor_verdicts WHERE health <> notified"


@dataclass(frozen=True, slots=True)
class View:
    location: str
    health: str  # up | down
    since: datetime
    error_code: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    monitor: Monitor
    health: Health  # the combined verdict after this decision
    previous: Health
    notify: bool  # this prober sends the alert for `health`
    down: tuple[str, ...]  # locations that see it down / up (live views only)
    up: tuple[str, ...]
    quorum: int
    of: int  # locations that vote: listed (or all) and with a live prober
    since: datetime | None  # first failing check of the outage / the recovery's check
    first_down: View | None
    flapping: bool = False  # too many verdict changes in the flap window: alert held back

    @property
    def changed(self) -> bool:
        return self.health is not self.previous

    @property
    def degraded(self) -> bool:
        return self.health is not Health.DOWN and bool(self.down)


def combine(views: list[View], checked_from: tuple[str, ...], quorum: int,
            current: Health) -> tuple[Health, tuple[str, ...], tuple[str, ...]]:
    """(verdict, locations down, locations up) from the live views of the listed locations."""
    wanted = set(checked_from)
    down = tuple(sorted(v.location for v in views if v.location in wanted and v.health == "down"))
    up = tuple(sorted(v.location for v in views if v.location in wanted and v.health == "up"))
    if len(down) >= quorum:
        return Health.DOWN, down, up
    if len(up) >= quorum:
        return Health.UP, down, up
    return current, down, up


def recent_transitions(transitions: list[datetime], changed: bool, now: datetime,
                       window_s: float) -> list[datetime]:
    """The verdict's changes within the flap window, this one included (unknown -> a state is
    not a change, as in the local state machine)."""
    kept = [t for t in transitions if (now - t).total_seconds() <= window_s]
    return [*kept, now] if changed else kept


def owed(health: Health, notified: Health) -> bool:
    """Whether an alert is due for `health` given the last one sent (unknown -> up is silent)."""
    return health is Health.DOWN and notified is not Health.DOWN or (
        health is Health.UP and notified is Health.DOWN)


class Verdicts:
    """Reports location views and decides the combined verdicts, on its own task."""

    def __init__(self, pool: AsyncConnectionPool, membership: Membership, metrics: Metrics, *,
                 on_decision: Callable[[Decision], None],
                 monitor: Callable[[uuid.UUID], Monitor | None],
                 muted: Callable[[uuid.UUID, datetime], bool] | None = None,
                 retry_s: float = 2.0, flap_window_s: float = 3600.0,
                 flap_max_transitions: int = 4) -> None:
        self.pool = pool
        self.membership = membership
        self.metrics = metrics
        self.on_decision = on_decision
        self.monitor = monitor
        self.muted = muted
        self.retry_s = retry_s
        self.flap_window_s = flap_window_s
        self.flap_max_transitions = flap_max_transitions
        self._pending: dict[uuid.UUID, Change] = {}  # latest view per monitor
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._unreachable_since: float | None = None
        self._fallback_sent: dict[uuid.UUID, Health] = {}
        self._last_sweep = 0.0

    def report(self, change: Change) -> None:
        if change.health is Health.UNKNOWN or change.monitor is None:
            return
        self._pending.pop(change.subscription_id, None)  # keep arrival order of the latest
        self._pending[change.subscription_id] = change
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def decide(self, monitor: Monitor, change: Change | None) -> Decision:
        """One report (or none: a re-decision) and the decision, in one locked transaction."""
        members = self.membership.current
        checked_from = members.voting(monitor.locations)
        quorum = members.quorum(monitor.locations, monitor.quorum)
        mid = monitor.id
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(ENSURE_SQL, (mid,))
            row = await (await conn.execute(LOCK_SQL, (mid,))).fetchone()
            assert row is not None  # ENSURE_SQL made it
            health_s, notified_s, transitions = row
            if change is not None:
                bad = change.first_bad
                await conn.execute(REPORT_SQL, {
                    "id": mid, "location": members.location, "health": str(change.health),
                    "since": change.at, "prober": members.me,
                    "code": bad.error_code if bad else None,
                    "detail": _detail(bad)})
            views = [View(*r) for r in await (await conn.execute(VIEWS_SQL, (mid,))).fetchall()]
            previous, notified = Health(health_s), Health(notified_s)
            health, down, up = combine(views, checked_from, quorum, previous)
            down_views = sorted((v for v in views if v.location in down), key=lambda v: v.since)
            first_down = down_views[0] if down_views else None
            since: datetime | None = None
            if health is not previous:
                since = (first_down.since if health is Health.DOWN and first_down
                         else change.at if change else datetime.now(UTC))
            now = datetime.now(UTC)
            recent = recent_transitions(list(transitions or ()),
                                        health is not previous and previous is not Health.UNKNOWN,
                                        now, self.flap_window_s)
            flapping = len(recent) > self.flap_max_transitions
            notify = owed(health, notified) and not flapping and not (
                self.muted is not None and self.muted(mid, now))
            if notify or (health is Health.UP and notified is Health.UNKNOWN):
                notified = health
            await conn.execute(DECIDE_SQL, {
                "id": mid, "health": str(health), "notified": str(notified), "since": since,
                "down": list(down), "up": list(up), "prober": members.me,
                "transitions": recent})
        decision = Decision(monitor, health, previous, notify, down, up, quorum,
                            len(checked_from), since, first_down, flapping)
        self.metrics.fleet_verdicts.labels("changed" if decision.changed else "same").inc()
        return decision

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()
            ok = await self.drain()
            if ok and loop.time() - self._last_sweep >= self.membership.lease_s:
                self._last_sweep = loop.time()
                ok = await self._sweep()
            if not ok:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.retry_s)

    async def drain(self) -> bool:
        """Decides every pending report; False if the database failed (they stay pending)."""
        while self._pending:
            mid, change = next(iter(self._pending.items()))
            assert change.monitor is not None  # report() keeps only changes with a monitor
            tried = asyncio.get_running_loop().time()
            try:
                decision = await self.decide(change.monitor, change)
            except psycopg.errors.ForeignKeyViolation:
                self._pending.pop(mid, None)  # the monitor was deleted meanwhile
                continue
            except Exception as exc:  # database unreachable: retry, then fall back
                return self._unreachable(exc, tried)
            self._unreachable_since = None
            if self._pending.get(mid) is change:
                del self._pending[mid]
            self._announce(decision)
        return True

    async def _sweep(self) -> bool:
        members = self.membership.current
        tried = asyncio.get_running_loop().time()
        try:
            async with self.pool.connection() as conn:
                ids = [r[0] for r in await (await conn.execute(OWED_SQL)).fetchall()]
        except Exception as exc:
            return self._unreachable(exc, tried)
        for mid in ids:
            monitor = self.monitor(mid)  # only a monitor this prober checks
            if monitor is None or not members.leads(monitor.locations):
                continue
            tried = asyncio.get_running_loop().time()
            try:
                decision = await self.decide(monitor, None)
            except psycopg.errors.ForeignKeyViolation:
                continue
            except Exception as exc:
                return self._unreachable(exc, tried)
            self._announce(decision)
        return True

    def _announce(self, decision: Decision) -> None:
        mid = decision.monitor.id
        sent = self._fallback_sent.pop(mid, None)  # what we alerted alone, database away
        if decision.notify and sent is decision.health:
            decision = dataclasses.replace(decision, notify=False)  # already sent
        elif sent is Health.DOWN and decision.health is Health.UP and not decision.notify:
            # we paged "down" from our view alone; the fleet says up: say so once
            decision = dataclasses.replace(decision, notify=True)
        if decision.changed or decision.notify:
            event(log, "fleet verdict", monitor=mid, health=str(decision.health),
                  down=",".join(decision.down), up=",".join(decision.up),
                  quorum=f"{decision.quorum}/{decision.of}", alert=decision.notify,
                  flapping=decision.flapping)
        self.on_decision(decision)

    def _unreachable(self, exc: BaseException, tried: float) -> bool:
        """A failed attempt that began at `tried` (the outage counts from the first one, so
        the pool's own connect timeout does not add to the lease)."""
        loop = asyncio.get_running_loop()
        if self._unreachable_since is None:
            self._unreachable_since = tried
            event(log, "fleet verdict not decided yet (database); will retry", logging.WARNING,
                  error=type(exc).__name__, pending=len(self._pending))
        if loop.time() - self._unreachable_since >= self.membership.lease_s:
            self._fall_back()
        return False

    def _fall_back(self) -> None:
        """Decide from this location's view alone and send it (deduplicated per monitor)."""
        members = self.membership.current
        here = (members.location,)
        for mid, change in list(self._pending.items()):
            # stays pending: the database learns this view when it is back
            assert change.monitor is not None
            previous = self._fallback_sent.get(mid, Health.UNKNOWN)
            muted = self.muted is not None and self.muted(mid, datetime.now(UTC))
            if not owed(change.health, previous) or muted:
                continue
            self._fallback_sent[mid] = change.health
            down = change.health is Health.DOWN
            bad = change.first_bad
            view = View(members.location, "down", change.at, bad.error_code if bad else None,
                        _detail(bad)) if down else None
            self.on_decision(Decision(change.monitor, change.health, previous, True,
                                      here if down else (), () if down else here, 1, 1,
                                      change.at, view))
            event(log, "fleet verdict from this location alone (database unreachable)",
                  logging.WARNING, monitor=mid, health=str(change.health))

    def stop(self) -> None:
        self._stopping = True
        self._stop.set()
        self._wake.set()


def _detail(bad: CheckResult | None) -> str | None:
    if bad is None:
        return None
    return redact(bad.error_message or str(bad.status))[:1000]


def first_bad_result(decision: Decision) -> CheckResult | None:
    """The outage's first failing check as an incident records it (from its location's view)."""
    v = decision.first_down
    if decision.health is not Health.DOWN or v is None:
        return None
    return CheckResult(decision.monitor.id, v.since, Status.FAILURE, error_code=v.error_code,
                       error_message=v.detail)


def alert_for(decision: Decision) -> Alert:
    """The one downtime / recovery alert of a combined verdict."""
    m = decision.monitor
    target = target_of(m)
    at = decision.since or datetime.now(UTC)
    if decision.health is Health.DOWN:
        where = ", ".join(decision.down)
        why = decision.first_down.detail if decision.first_down else None
        return Alert(m.id, m.name, "downtime", "critical", f"{m.name} is DOWN",
                     f"{m.name} ({target}) is failing from {len(decision.down)} of "
                     f"{decision.of} locations ({where}; quorum {decision.quorum})"
                     + (f": {why}" if why else ""), at, target)
    where = ", ".join(decision.up)
    return Alert(m.id, m.name, "recovery", "info", f"{m.name} is UP again",
                 f"{m.name} ({target}) passes from {len(decision.up)} of {decision.of} "
                 f"locations ({where}; quorum {decision.quorum})", at, target)
