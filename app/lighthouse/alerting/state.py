"""Per-monitor alert state machine: thresholds, flap damping, latency and certificate alerts.

- `down` after `failure_threshold` consecutive bad checks; `up` again after `success_threshold`
  consecutive good ones. One blip pages nobody.
- Flapping: more than `flap_max_transitions` up/down changes within `flap_window_s` marks the
  monitor as flapping; while flapping, state changes are tracked but not sent. When it calms down
  (changes in the window drop back to the limit) the current state is sent once if it differs
  from the last one sent.
- A monitor's first state is `unknown`; unknown -> up is silent, unknown -> down alerts.
- A TLS check that fails only because the certificate expires soon (error_code cert_expiring)
  counts as up: it raises certificate_expiry instead of downtime.
- high_latency: `failure_threshold` consecutive successful checks slower than the threshold
  (monitor `alert_latency_ms`, else alerting.high_latency_ms); re-armed after
  `success_threshold` fast checks.
- push monitors go down on the first no_push/pushed_down verdict and up on the first good one
  (the verdict already waited interval + grace_s; one push proves the job ran).
- low_balance: a balance check that fails only because the balance is below min_balance
  (error_code low_balance) counts as up and raises one low_balance alert; re-armed when a
  check measures the balance at min_balance + hysteresis or more.
- certificate_expiry: when days left first drops below warn_days (monitor `warn_days`, else
  alerting.cert_warn_days), then again below 7, 3 and 1 day; re-armed when the cert is renewed.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from lighthouse.checks.balance import thresholds
from lighthouse.checks.errors import CheckError
from lighthouse.config import AlertingConfig
from lighthouse.models import CheckResult, Monitor, Status
from lighthouse.redact import redact, target_of

CERT_MILESTONES = (7, 3, 1)
# The target works; what it reports is the problem: an alert of its own, not downtime.
_STILL_UP = frozenset({"cert_expiring", "low_balance"})


class Health(enum.StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


@dataclass(slots=True)
class Alert:
    subscription_id: uuid.UUID
    monitor_name: str
    alert_type: str  # downtime | recovery | high_latency | certificate_expiry
    severity: str  # info | warning | critical
    title: str
    message: str
    check_time: datetime
    target: str = ""


@dataclass(slots=True)
class MonitorState:
    health: Health = Health.UNKNOWN
    notified: Health = Health.UNKNOWN  # last state an alert was sent for (or silently accepted)
    fails: int = 0
    oks: int = 0
    transitions: deque[float] = field(default_factory=deque)
    flapping: bool = False
    slow: int = 0
    fast: int = 0
    latency_alerted: bool = False
    cert_level: int | None = None  # smallest threshold already alerted
    balance_alerted: bool = False
    first_bad: CheckResult | None = None  # first check of the current bad streak


@dataclass(frozen=True, slots=True)
class Change:
    """A monitor's health changed (what an incident records; flapping does not hide it).
    down: `at` is the first failing check of the streak and `first_bad` that check;
    up: `at` is the check that completed the recovery (also from unknown, so an incident
    left open by a restart in the middle of an outage is closed)."""

    subscription_id: uuid.UUID
    health: Health
    at: datetime
    first_bad: CheckResult | None = None
    monitor: Monitor | None = None  # what changed (a fleet reports it to the combined verdict)


def _describe(result: CheckResult) -> str:
    parts = [str(result.status)]
    if result.error_code:
        parts.append(f"({result.error_code})")
    if result.http_status:
        parts.append(f"HTTP {result.http_status}")
    if result.error_message:
        parts.append(f"- {redact(result.error_message)[:300]}")
    return " ".join(parts)


class AlertPolicy:
    def __init__(
        self,
        cfg: AlertingConfig,
        clock=time.monotonic,
        on_change: Callable[[Change], None] | None = None,
        muted: Callable[[uuid.UUID, datetime], bool] | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.states: dict[uuid.UUID, MonitorState] = {}
        self.on_change = on_change
        # In a maintenance window: state is tracked, nothing is sent; afterwards the current
        # state is sent once if it differs from the last one sent (as after flapping).
        self.muted = muted
        # In a fleet (lighthouse.fleet): `shared(monitor)` is true when several locations check
        # it, and then up/down alerts come from the combined verdict, not from here; `leads`
        # says whether this prober sends its latency, certificate and balance alerts.
        self.shared: Callable[[Monitor], bool] | None = None
        self.leads: Callable[[Monitor], bool] | None = None

    def forget(self, monitor_id: uuid.UUID) -> None:
        self.states.pop(monitor_id, None)

    def health(self, monitor_id: uuid.UUID) -> Health:
        s = self.states.get(monitor_id)
        return s.health if s else Health.UNKNOWN

    def observe(self, monitor: Monitor, result: CheckResult) -> list[Alert]:
        """Feeds one result; returns the alerts to send (often none)."""
        s = self.states.setdefault(monitor.id, MonitorState())
        alerts: list[Alert] = []
        good = result.status is Status.SUCCESS or result.error_code in _STILL_UP
        if good:
            s.oks += 1
            s.fails = 0
            s.first_bad = None
        else:
            s.fails += 1
            s.oks = 0
            if s.first_bad is None:
                s.first_bad = result
        new = s.health
        # A push verdict is already damped by its grace, and one push proves the job ran.
        down_at, up_at = ((1, 1) if monitor.type == "push"
                          else (self.cfg.failure_threshold, self.cfg.success_threshold))
        if s.health is not Health.DOWN and s.fails >= down_at:
            new = Health.DOWN
        elif s.health is not Health.UP and s.oks >= up_at:
            new = Health.UP
        now = self.clock()
        if new is not s.health:
            if s.health is not Health.UNKNOWN:
                s.transitions.append(now)
            s.health = new
            if self.on_change is not None:
                bad = s.first_bad if new is Health.DOWN else None
                self.on_change(Change(monitor.id, new, bad.time if bad else result.time, bad,
                                      monitor))
        while s.transitions and now - s.transitions[0] > self.cfg.flap_window_s:
            s.transitions.popleft()
        s.flapping = len(s.transitions) > self.cfg.flap_max_transitions
        muted = self.muted is not None and self.muted(monitor.id, result.time)
        if self.shared is not None and self.shared(monitor):
            s.notified = s.health  # the fleet's verdict alerts; a later solo view starts here
        elif not s.flapping and not muted and s.health is not s.notified:
            alert = self._state_alert(monitor, result, s)
            if alert is not None:
                alerts.append(alert)
            s.notified = s.health
        if good and result.status is Status.SUCCESS:
            alerts.extend(self._latency(monitor, result, s))
        alerts.extend(self._cert(monitor, result, s))
        if monitor.type == "balance":
            alerts.extend(self._balance(monitor, result, s))
        if muted:
            return []  # latency/cert state advances; their alerts are held
        if self.leads is not None and not self.leads(monitor):
            return [a for a in alerts if a.alert_type in ("downtime", "recovery")]
        return alerts

    def _state_alert(self, monitor: Monitor, result: CheckResult, s: MonitorState) -> Alert | None:
        target = target_of(monitor)
        if s.health is Health.DOWN:
            return Alert(
                monitor.id,
                monitor.name,
                "downtime",
                "critical",
                f"{monitor.name} is DOWN",
                f"{monitor.name} ({target}) failed {s.fails} checks in a row: {_describe(result)}",
                result.time,
                target,
            )
        if s.health is Health.UP and s.notified is Health.DOWN:
            return Alert(
                monitor.id,
                monitor.name,
                "recovery",
                "info",
                f"{monitor.name} is UP again",
                f"{monitor.name} ({target}) passed {s.oks} checks in a row"
                + (f"; latency {result.latency_ms} ms" if result.latency_ms else ""),
                result.time,
                target,
            )
        return None  # unknown -> up: nothing to say

    def _latency(self, monitor: Monitor, result: CheckResult, s: MonitorState) -> list[Alert]:
        limit = int(monitor.config.get("alert_latency_ms") or self.cfg.high_latency_ms or 0)
        if limit <= 0 or result.latency_ms is None:
            return []
        if result.latency_ms > limit:
            s.slow += 1
            s.fast = 0
        else:
            s.fast += 1
            s.slow = 0
            if s.fast >= self.cfg.success_threshold:
                s.latency_alerted = False
        if s.slow >= self.cfg.failure_threshold and not s.latency_alerted:
            s.latency_alerted = True
            target = target_of(monitor)
            return [
                Alert(
                    monitor.id,
                    monitor.name,
                    "high_latency",
                    "warning",
                    f"{monitor.name} is slow",
                    f"{monitor.name} ({target}) took {result.latency_ms} ms "
                    f"(limit {limit} ms) on {s.slow} checks in a row",
                    result.time,
                    target,
                )
            ]
        return []

    def _cert(self, monitor: Monitor, result: CheckResult, s: MonitorState) -> list[Alert]:
        days = result.cert_days_left
        if days is None:
            return []
        warn = int(monitor.config.get("warn_days") or self.cfg.cert_warn_days)
        if days >= warn:
            s.cert_level = None  # renewed (or never close): re-arm
            return []
        thresholds = [warn, *(m for m in CERT_MILESTONES if m < warn)]
        crossed = min(t for t in thresholds if days < t)
        if s.cert_level is not None and crossed >= s.cert_level:
            return []
        s.cert_level = crossed
        target = target_of(monitor)
        severity = "critical" if days <= 3 else "warning"
        when = "has EXPIRED" if days < 0 else f"expires in {days} day{'s' if days != 1 else ''}"
        return [
            Alert(
                monitor.id,
                monitor.name,
                "certificate_expiry",
                severity,
                f"{monitor.name}: TLS certificate {when}",
                f"The certificate of {target} {when} (warning below {warn} days).",
                result.time,
                target,
            )
        ]

    def _balance(self, monitor: Monitor, result: CheckResult, s: MonitorState) -> list[Alert]:
        balance = (result.timings or {}).get("balance")
        if balance is None:
            return []  # not measured this time (endpoint down): nothing to say about it
        try:
            levels = thresholds(monitor.config)
        except CheckError:
            return []  # the check itself reports the bad config
        if levels is None:
            return []
        low, rearm = levels
        if result.error_code == "low_balance":
            if s.balance_alerted:
                return []
            s.balance_alerted = True
            target = target_of(monitor)
            return [
                Alert(
                    monitor.id,
                    monitor.name,
                    "low_balance",
                    "warning",
                    f"{monitor.name}: balance is low",
                    f"{target}: {result.error_message}",
                    result.time,
                    target,
                )
            ]
        if s.balance_alerted and balance >= float(rearm):
            s.balance_alerted = False  # topped up past the hysteresis: the next drop alerts
        return []
