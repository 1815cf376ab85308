"""Prometheus metrics of one prober process (exposed at /metrics).

A registry per Metrics object (not the global default) so tests can run several services in one
process without name clashes.
"""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from lighthouse import __version__
from lighthouse.probe_metrics import ProbeCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, probe_max_monitors: int = 1000) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # process_* (CPU, memory, fds, start time) and python_info, as the default registry has
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Info("lighthouse_build", "The prober's version", registry=r).info(
            {"version": __version__, "python": platform.python_version()})
        # per-monitor probe_* series under blackbox_exporter's names (lighthouse.probe_metrics)
        self.probes = ProbeCollector(probe_max_monitors)
        r.register(self.probes)
        self.checks = Counter("lighthouse_checks", "Checks completed, by result status",
                              ["status"], registry=r)
        self.check_latency = Histogram("lighthouse_check_latency_seconds",
                                       "Check latency (total time to a result)",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.lateness = Histogram("lighthouse_schedule_lateness_seconds",
                                  "How late a check started relative to its slot",
                                  buckets=LATENESS_BUCKETS, registry=r)
        self.skipped = Counter("lighthouse_checks_skipped",
                               "Due checks not run (previous still running, queue full, overdue)",
                               ["reason"], registry=r)
        self.internal_errors = Counter(
            "lighthouse_check_internal_errors",
            "Checks that ended in a prober bug (error_code internal); each is worth a report",
            registry=r)
        self.abandoned = Counter("lighthouse_checks_abandoned",
                                 "Checks abandoned past their hard deadline (ignored cancel)",
                                 registry=r)
        self.queue_depth = Gauge("lighthouse_queue_depth", "Due checks waiting for a worker",
                                 registry=r)
        self.in_flight = Gauge("lighthouse_checks_in_flight", "Checks running now", registry=r)
        self.monitors = Gauge("lighthouse_monitors", "Active monitors scheduled", registry=r)
        self.reloads = Counter("lighthouse_monitor_reloads", "Subscription reloads, by trigger",
                               ["trigger"], registry=r)
        self.write_buffer = Gauge("lighthouse_write_buffer_rows",
                                  "Results in memory waiting for a write", registry=r)
        self.rows_written = Counter("lighthouse_rows_written",
                                    "check_history rows inserted (duplicates excluded)",
                                    registry=r)
        self.write_errors = Counter("lighthouse_write_errors", "Failed batch writes", registry=r)
        self.spool_bytes = Gauge("lighthouse_spool_bytes", "Bytes in the on-disk spool",
                                 registry=r)
        self.spool_rows = Gauge("lighthouse_spool_rows", "Results in the on-disk spool",
                                registry=r)
        self.write_spilled = Counter("lighthouse_write_spilled_rows",
                                     "Results moved to the spool because the write buffer was "
                                     "full (the database slower than the checks)", registry=r)
        self.spool_lost = Counter("lighthouse_spool_lost_rows",
                                  "Results dropped because the spool was full", registry=r)
        self.db_up = Gauge("lighthouse_database_up", "1 if the last database write worked",
                           registry=r)
        self.alerts = Counter("lighthouse_alert_deliveries",
                              "Alert delivery attempts, by type, channel and outcome",
                              ["alert_type", "channel", "outcome"], registry=r)
        self.fleet_members = Gauge("lighthouse_fleet_members",
                                   "Live probers per location, as this prober last saw them",
                                   ["location"], registry=r)
        self.fleet_heartbeat_errors = Counter(
            "lighthouse_fleet_heartbeat_errors",
            "Heartbeats that did not reach the database (ownership stays as it was)", registry=r)
        self.fleet_verdicts = Counter(
            "lighthouse_fleet_verdicts",
            "Combined verdicts evaluated, by outcome (changed: this prober made the change)",
            ["outcome"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
