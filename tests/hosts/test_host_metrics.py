"""lighthouse-host-metrics on the converged db host publishes to the sandbox's moto CloudWatch
(the same endpoint as its S3, through the TLS front with the host's CA): every contract metric
with the host's InstanceId, archive metrics from a server that really archives (pgBackRest),
and a failed backup unit is counted."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from lighthouse_ops.deploy import s3
from lighthouse_ops.hostmetrics import contract as hm
from lighthouse_ops.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY


@pytest.fixture(scope="module")
def cloudwatch(site, sandbox, sandbox_hosts):
    state = s3.ensure_s3(sandbox)
    return boto3.client(
        "cloudwatch", verify=state["ca_file"], region_name=REGION,
        endpoint_url=f"https://{sandbox_hosts['db-1'].controller_ip}:{state['port']}",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def _latest(cloudwatch, metric: hm.HostMetric, stat: str = "Maximum",
            since: datetime | None = None) -> float | None:
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=hm.NAMESPACE, MetricName=metric.name,
        Dimensions=[{"Name": hm.DIMENSION, "Value": "db-1"}],
        StartTime=since or now - timedelta(minutes=30), EndTime=now + timedelta(minutes=1),
        Period=60, Statistics=[stat])["Datapoints"]
    return max(p[stat] for p in points) if points else None


def test_the_timer_publishes_every_contract_metric(site, sandbox, db_host, cloudwatch) -> None:
    timer = db_host.service("lighthouse-host-metrics.timer")
    assert timer.is_enabled and timer.is_running
    sandbox.ssh("db-1", "systemctl start lighthouse-host-metrics.service")
    names = {m["MetricName"] for m in cloudwatch.list_metrics(
        Namespace=hm.NAMESPACE, Dimensions=[{"Name": hm.DIMENSION, "Value": "db-1"}])["Metrics"]}
    assert names == {m.name for m in hm.ALL}
    assert _latest(cloudwatch, hm.ARCHIVE_FAILING) == 0
    age = _latest(cloudwatch, hm.ARCHIVE_AGE, "Minimum")
    assert age is not None and 0 <= age < 120  # below the wal-archive-lag threshold
    assert 0 < _latest(cloudwatch, hm.CONNECTIONS_USED) < 80


def _failed_units(sandbox) -> list[str]:
    units = " ".join(f"'{u}'" for u in hm.WATCHED_UNITS)
    out = sandbox.ssh("db-1", "systemctl list-units --all --state=failed --plain --no-legend "
                              f"--no-pager {units}").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_a_failed_backup_unit_is_counted(site, sandbox, cloudwatch) -> None:
    # the minute timer off: a run it started before the unit failed would publish the old
    # count inside the window (and `systemctl start` would join that run instead of a new one)
    sandbox.ssh("db-1", "systemctl stop lighthouse-host-metrics.timer")
    try:
        # a backup type pgBackRest refuses: the templated unit fails like a real failed backup
        sandbox.ssh("db-1", "systemctl start pgbackrest-backup@bogus.service || true")
        failed = _failed_units(sandbox)
        assert "pgbackrest-backup@bogus.service" in failed
        sandbox.ssh("db-1", "systemctl start lighthouse-host-metrics.service")  # ends any run
        time.sleep(1.1)
        since = datetime.now(UTC).replace(microsecond=0)  # after that run's datapoints
        sandbox.ssh("db-1", "systemctl start lighthouse-host-metrics.service")
        # the count is what systemd lists (an earlier test's failure would be counted too)
        assert _latest(cloudwatch, hm.UNITS_FAILED, "Minimum", since) == len(failed), failed
        assert _latest(cloudwatch, hm.UNITS_FAILED, "Maximum", since) == len(failed), failed
    finally:
        sandbox.ssh("db-1", "systemctl reset-failed 'pgbackrest-backup@*'; "
                            "systemctl start lighthouse-host-metrics.timer")
