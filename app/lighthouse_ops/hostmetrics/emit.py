"""`lighthouse-host-metrics`: read PostgreSQL and systemd on the db host, publish to CloudWatch.

Runs every minute from a systemd timer as the cluster's owner (local socket, peer
authentication). Each metric is measured on its own: PostgreSQL being down still publishes
the unit count, and the PostgreSQL metrics then go missing, which the heartbeat alarm treats as
breaching. boto3 reads region, endpoint and credentials from its environment (the instance role
on EC2).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from typing import Any

import psycopg

from lighthouse_ops.hostmetrics.contract import (
    ARCHIVE_AGE,
    ARCHIVE_FAILING,
    CONNECTIONS_USED,
    DIMENSION,
    NAMESPACE,
    RECENT_CHECKS,
    UNITS_FAILED,
    WATCHED_UNITS,
    HostMetric,
)

log = logging.getLogger("lighthouse.hostmetrics")

POSTGRES_SQL = """
SELECT
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS clients,
  current_setting('max_connections')::int
    - current_setting('superuser_reserved_connections')::int AS usable,
  current_setting('archive_mode') <> 'off' AS archiving,
  extract(epoch FROM now() - coalesce(a.last_archived_time, pg_postmaster_start_time()))
    AS archive_age,
  (a.last_failed_time IS NOT NULL
     AND (a.last_archived_time IS NULL OR a.last_failed_time > a.last_archived_time))
    AS archive_failing,
  (SELECT count(*) FROM check_history WHERE time > now() - interval '5 minutes')
    AS recent_checks
FROM pg_stat_archiver a
"""


def postgres_values(dsn: str) -> dict[HostMetric, float]:
    with psycopg.connect(dsn, connect_timeout=5, autocommit=True,
                         application_name="lighthouse-host-metrics") as conn:
        conn.execute("SET statement_timeout = '10s'")
        row = conn.execute(POSTGRES_SQL).fetchone()
    if row is None:  # pg_stat_archiver always has its one row
        raise RuntimeError("pg_stat_archiver returned no row")
    clients, usable, archiving, age, failing, recent = row
    values = {CONNECTIONS_USED: round(100.0 * clients / max(usable, 1), 2),
              RECENT_CHECKS: float(recent)}
    if archiving:  # without archiving there is no RPO to watch
        values[ARCHIVE_AGE] = round(float(age), 1)
        values[ARCHIVE_FAILING] = 1.0 if failing else 0.0
    return values


def failed_units(units: tuple[str, ...] = WATCHED_UNITS) -> int:
    proc = subprocess.run(["systemctl", "list-units", "--all", "--state=failed", "--plain",
                           "--no-legend", "--no-pager", *units],
                          capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise RuntimeError(f"systemctl list-units failed: {proc.stderr.strip()}")
    return len([line for line in proc.stdout.splitlines() if line.strip()])


def metric_data(values: dict[HostMetric, float], instance_id: str) -> list[dict[str, Any]]:
    return [{"MetricName": m.name, "Dimensions": [{"Name": DIMENSION, "Value": instance_id}],
             "Value": v, "Unit": m.unit} for m, v in values.items()]


def collect(dsn: str) -> tuple[dict[HostMetric, float], list[str]]:
    """Every value that could be read, and one line per part that could not."""
    values: dict[HostMetric, float] = {}
    problems = []
    try:
        values.update(postgres_values(dsn))
    except (psycopg.Error, RuntimeError) as exc:
        problems.append(f"postgresql: {(str(exc).strip().splitlines() or [repr(exc)])[0]}")
    try:
        values[UNITS_FAILED] = float(failed_units())
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        problems.append(f"systemd: {exc}")
    return values, problems


def publish(values: dict[HostMetric, float], instance_id: str, namespace: str = NAMESPACE,
            client=None) -> None:
    if client is None:
        import boto3

        client = boto3.client("cloudwatch")
    client.put_metric_data(Namespace=namespace, MetricData=metric_data(values, instance_id))


def _dsn(args: argparse.Namespace) -> str:
    return f"host={args.socket_dir} port={args.port} dbname={args.database}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lighthouse-host-metrics", description=__doc__.split("\n")[0],
                                epilog="exit codes: 0 all published, 1 something could not be "
                                       "read or published (the rest was), 2 bad arguments")
    p.add_argument("--instance-id", required=True, help="InstanceId dimension (the EC2 id)")
    p.add_argument("--database", default="lighthouse", help="application database")
    p.add_argument("--port", type=int, default=5432, help="PostgreSQL port (local socket)")
    p.add_argument("--socket-dir", default="/var/run/postgresql", help="PostgreSQL socket dir")
    p.add_argument("--namespace", default=NAMESPACE, help=f"CloudWatch namespace ({NAMESPACE})")
    p.add_argument("--print", action="store_true", help="print the values, publish nothing")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    values, problems = collect(_dsn(args))
    shown = {m.name: v for m, v in values.items()}
    if args.print:
        print(json.dumps(shown, sort_keys=True))
    elif values:
        try:
            publish(values, args.instance_id, args.namespace)
        except Exception as exc:  # botocore errors: one line, not a traceback  # noqa: BLE001
            problems.append(f"cloudwatch: {type(exc).__name__}: {exc}")
        else:
            log.info("event=host_metrics_published %s",
                     " ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    for problem in problems:
        print(f"lighthouse-host-metrics: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
