"""Data shared by checks, scheduler, storage and alerting.

One CheckResult becomes one check_history row (see sql/); keep the two in step.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PUSH_CADENCE_S = 60


class Status(enum.StrEnum):
    """Mirrors the `check_status` SQL enum."""

    SUCCESS = "success"
    FAILURE = "failure"  # target answered, but not as expected (status code, assertion, latency)
    TIMEOUT = "timeout"
    ERROR = "error"  # could not talk to the target (dns, refused, tls, protocol, ssrf)


@dataclass(slots=True)
class Monitor:
    """An active subscription as the scheduler sees it."""

    id: uuid.UUID
    name: str
    type: str  # monitor_type enum: "http" | "tcp" | "tls" (+ seed types not probed here)
    config: dict[str, Any]  # subscriptions.target_config
    interval_s: int
    # Where it is checked from (None: every location with a live prober) and how many of
    # them must agree on down/up (None: a majority). subscriptions.locations / .quorum.
    locations: tuple[str, ...] | None = None
    quorum: int | None = None
    # The config as checks parsed it, (context, parsed): parsed once per load, not per check.
    # A changed subscription arrives as a new Monitor, so this never goes stale.
    parsed: Any = field(default=None, compare=False, repr=False)

    @property
    def cadence_s(self) -> int:
        """How often the prober runs the check. A push monitor's interval is its job's period
        (a nightly backup: 86400), so it is looked at every PUSH_CADENCE_S instead: a missed
        push is noticed within a minute of interval + grace, not a day later."""
        return min(self.interval_s, PUSH_CADENCE_S) if self.type == "push" else self.interval_s


@dataclass(slots=True)
class CheckResult:
    subscription_id: uuid.UUID
    time: datetime  # UTC, when the check started
    status: Status
    latency_ms: int | None = None
    http_status: int | None = None
    error_code: str | None = None  # dns, refused, tls, status, assertion, timeout, ssrf...
    error_message: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # dns/connect/tls/ttfb/total ms
    response_snippet: str | None = None  # at most 1 KiB
    cert_days_left: int | None = None  # TLS checks
    cert_expires_at: float | None = None  # notAfter, epoch seconds (metrics; rows keep days)
    alert_triggered: bool = False  # set by alerting before the row is written
    location: str = ""  # fleet.location of the prober that ran it ("" outside a fleet)
