"""What the db host publishes to CloudWatch beside the agent, and what the stack's alarms read:
defined once here (stdlib only, so the Pulumi program imports it too).

The CloudWatch agent covers disk and memory (namespace AGENT_NAMESPACE); `lighthouse-host-metrics`
(a one-minute timer on the db host) covers what only PostgreSQL and systemd know.
"""

from __future__ import annotations

from dataclasses import dataclass

AGENT_NAMESPACE = "CWAgent"
NAMESPACE = "Lighthouse/Host"
DIMENSION = "InstanceId"


@dataclass(frozen=True)
class HostMetric:
    name: str
    unit: str
    help: str


CONNECTIONS_USED = HostMetric(
    "pg_connections_used_percent", "Percent",
    "client backends as a share of max_connections minus superuser_reserved_connections")
ARCHIVE_AGE = HostMetric(
    "pg_archive_age_seconds", "Seconds",
    "seconds since WAL was last archived successfully (the RPO right now)")
ARCHIVE_FAILING = HostMetric(
    "pg_archive_failing", "Count",
    "1 while the newest archive attempt failed (pg_stat_archiver), else 0")
UNITS_FAILED = HostMetric(
    "lighthouse_units_failed", "Count",
    "backup, dump and prober units in systemd's failed state")
RECENT_CHECKS = HostMetric(
    "lighthouse_checks_last_5m", "Count",
    "check results stored in the last 5 minutes: 0 means no prober is checking")

ALL = (CONNECTIONS_USED, ARCHIVE_AGE, ARCHIVE_FAILING, UNITS_FAILED, RECENT_CHECKS)
# published only while PostgreSQL archives WAL (archive_mode on)
ARCHIVE_METRICS = (ARCHIVE_AGE, ARCHIVE_FAILING)

# The units whose failure is an alarm (globs as systemctl takes them).
WATCHED_UNITS = ("pgbackrest-backup@*.service", "lighthouse-dump.service",
                 "lighthouse-prober.service")
