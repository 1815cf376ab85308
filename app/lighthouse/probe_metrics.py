"""Per-monitor Prometheus series under blackbox_exporter's names, so the dashboards and alert
rules people already have for blackbox work on a Lighthouse prober unchanged.

Series (labels `monitor_id`, `monitor` (name), `type`), from each monitor's latest check:
  probe_success                      1 when the check succeeded, else 0
  probe_duration_seconds             total time of the check
  probe_http_duration_seconds{phase} dns / connect / tls / ttfb phases (blackbox's name for
                                     per-phase time; phases a check did not go through are absent)
  probe_http_status_code             last HTTP status (HTTP checks that got a response)
  probe_ssl_earliest_cert_expiry     unix time the peer certificate's notAfter (checks that
                                     only report days left: the start of the last whole day)

A collector that reads a dict at scrape time: on_result is one dict assignment per check, not
label lookups on metric children (50,000 monitors would pay that on every check). At most
`max_monitors` monitors get series (the first ones seen); past that, the rest are counted in
lighthouse_probe_series_capped_monitors and logged once — a scrape of a 100,000-monitor
prober would otherwise be tens of megabytes. Monitors removed from the schedule lose their
series.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lighthouse.logs import event
from lighthouse.models import CheckResult, Monitor

log = logging.getLogger("lighthouse.metrics")

PHASES = ("dns", "connect", "tls", "ttfb")
LABELS = ("monitor_id", "monitor", "type")


@dataclass(slots=True)
class _Latest:
    labels: tuple[str, str, str]
    success: bool
    total_s: float | None
    phases: dict[str, float]
    http_status: int | None
    cert_expiry: float | None


class ProbeCollector(Collector):
    def __init__(self, max_monitors: int = 1000) -> None:
        self.max_monitors = max_monitors
        self._latest: dict[uuid.UUID, _Latest] = {}
        self._capped: set[uuid.UUID] = set()
        self._lock = threading.Lock()  # scrapes run in the web thread

    def observe(self, monitor: Monitor, result: CheckResult) -> None:
        mid = monitor.id
        if mid not in self._latest and len(self._latest) >= self.max_monitors:
            if mid not in self._capped:
                self._capped.add(mid)
                if len(self._capped) == 1:
                    event(log, "per-monitor metrics capped; further monitors get none",
                          logging.WARNING, max_monitors=self.max_monitors)
            return
        timings = result.timings or {}
        total_ms = timings.get("total", result.latency_ms)
        latest = _Latest(
            labels=(str(mid), monitor.name, monitor.type),
            success=str(result.status) == "success",
            total_s=None if total_ms is None else total_ms / 1000.0,
            phases={p: timings[p] / 1000.0 for p in PHASES if p in timings},
            http_status=result.http_status,
            cert_expiry=result.cert_expires_at if result.cert_expires_at is not None
            else None if result.cert_days_left is None
            else result.time.timestamp() + result.cert_days_left * 86400.0)
        with self._lock:
            self._latest[mid] = latest
            self._capped.discard(mid)  # admitted once a slot freed

    def forget(self, monitor_id: uuid.UUID) -> None:
        with self._lock:
            self._latest.pop(monitor_id, None)
            self._capped.discard(monitor_id)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            latest = list(self._latest.values())
            capped = len(self._capped)
        success = GaugeMetricFamily("probe_success", "1 if the monitor's last check succeeded",
                                    labels=LABELS)
        duration = GaugeMetricFamily("probe_duration_seconds",
                                     "Duration of the monitor's last check", labels=LABELS)
        phases = GaugeMetricFamily("probe_http_duration_seconds",
                                   "Duration of each phase of the last check",
                                   labels=(*LABELS, "phase"))
        status = GaugeMetricFamily("probe_http_status_code", "HTTP status of the last check",
                                   labels=LABELS)
        expiry = GaugeMetricFamily("probe_ssl_earliest_cert_expiry",
                                   "Unix time the peer certificate expires",
                                   labels=LABELS)
        for m in latest:
            labels = list(m.labels)
            success.add_metric(labels, 1.0 if m.success else 0.0)
            if m.total_s is not None:
                duration.add_metric(labels, m.total_s)
            for phase, seconds in m.phases.items():
                phases.add_metric([*labels, phase], seconds)
            if m.http_status is not None:
                status.add_metric(labels, float(m.http_status))
            if m.cert_expiry is not None:
                expiry.add_metric(labels, m.cert_expiry)
        yield from (success, duration, phases, status, expiry)
        yield GaugeMetricFamily("lighthouse_probe_series_capped_monitors",
                                "Monitors without per-monitor series (over the cap)",
                                value=capped)
