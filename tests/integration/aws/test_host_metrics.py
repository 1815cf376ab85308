"""lighthouse-host-metrics against PostgreSQL 15 and moto's CloudWatch: what it publishes is
what each of the prod stack's host-metric alarms queries (namespace, metric, dimensions taken
from the mocked stack's alarm resources), and PostgreSQL being down loses only its metrics.
(Archive metrics need a server that archives: tests/hosts/test_host_metrics.py, db-1.)"""

from __future__ import annotations

import io
import warnings
from datetime import UTC, datetime, timedelta

import boto3
import httpx
import psycopg
import pytest
from lighthouse.db.migrate import migrate
from lighthouse_ops.hostmetrics import contract as hm
from lighthouse_ops.hostmetrics import emit
from psycopg.conninfo import conninfo_to_dict

from tests.integration.aws.builders import REGION
from tests.integration.prober.conftest import add_monitor


@pytest.fixture(scope="module")
def prod_alarms():
    from infra.config import load_stack_file, repo_stack_file
    from tests.unit.infra.mocks import run_stack

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run = run_stack(load_stack_file(repo_stack_file("prod")))
    alarms = [a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if a.inputs["namespace"] == hm.NAMESPACE]
    return run.outputs["db_instance_id"], alarms


@pytest.fixture
def cloudwatch(moto_url, monkeypatch):
    """moto reset; boto3's own environment points the emitter at it, as on the host."""
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10)
    for key, value in {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    return boto3.client("cloudwatch", region_name=REGION, endpoint_url=moto_url)


def _args(dsn: str, instance_id: str) -> list[str]:
    p = conninfo_to_dict(dsn)
    return ["--instance-id", instance_id, "--socket-dir", p.get("host", "127.0.0.1"),
            "--port", str(p.get("port", 5432)), "--database", p["dbname"]]


def test_each_alarm_finds_the_published_metric(prod_alarms, cloudwatch, pg15_db, monkeypatch):
    instance_id, alarms = prod_alarms
    assert len(alarms) == 5
    migrate(pg15_db, out=io.StringIO())
    sid = add_monitor(pg15_db, "m", {"url": "http://127.0.0.1:9/"})
    with psycopg.connect(pg15_db, autocommit=True) as conn:  # one stored check: a live prober
        conn.execute("INSERT INTO check_history (time, subscription_id, status)"
                     " VALUES (now(), %s, 'success')", (sid,))
    monkeypatch.setattr(emit, "failed_units", lambda units=hm.WATCHED_UNITS: 0)
    monkeypatch.setattr(emit, "_dsn", lambda args: pg15_db)  # the test server needs a password
    assert emit.main(_args(pg15_db, instance_id)) == 0

    now = datetime.now(UTC)
    published = {m["MetricName"] for m in cloudwatch.list_metrics(
        Namespace=hm.NAMESPACE)["Metrics"]}
    # the test server archives nothing: archive metrics are left out, not faked
    assert published == {hm.CONNECTIONS_USED.name, hm.RECENT_CHECKS.name, hm.UNITS_FAILED.name}
    for alarm in alarms:
        got = cloudwatch.get_metric_statistics(
            Namespace=alarm["namespace"], MetricName=alarm["metricName"],
            Dimensions=[{"Name": k, "Value": v} for k, v in alarm["dimensions"].items()],
            StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1),
            Period=int(alarm["period"]), Statistics=[alarm["statistic"]])["Datapoints"]
        assert bool(got) == (alarm["metricName"] in published), alarm["metricName"]
        if alarm["metricName"] == hm.RECENT_CHECKS.name:  # a live prober does not page
            assert got[0][alarm["statistic"]] >= alarm["threshold"]
        if alarm["metricName"] == hm.CONNECTIONS_USED.name:
            assert 0 < got[0][alarm["statistic"]] < alarm["threshold"]


def test_postgres_down_still_publishes_the_unit_count(cloudwatch, pg15_db, monkeypatch, capsys):
    monkeypatch.setattr(emit, "failed_units", lambda units=hm.WATCHED_UNITS: 2)
    monkeypatch.setattr(emit, "_dsn", lambda args: "host=127.0.0.1 port=1 dbname=x")
    assert emit.main(_args(pg15_db, "i-0abc")) == 1
    err = capsys.readouterr().err
    assert err.startswith("lighthouse-host-metrics: postgresql: ") and err.count("\n") == 1
    metrics = cloudwatch.list_metrics(Namespace=hm.NAMESPACE)["Metrics"]
    assert [m["MetricName"] for m in metrics] == [hm.UNITS_FAILED.name]
    assert metrics[0]["Dimensions"] == [{"Name": hm.DIMENSION, "Value": "i-0abc"}]
