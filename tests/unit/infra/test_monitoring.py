"""Monitoring: SNS, alarms (thresholds, dimensions, actions), dashboard."""

import json

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def test_dev_has_no_alarms_and_no_dashboard(dev):
    assert dev.of_type(ALARM) == []
    assert dev.of_type("aws:cloudwatch/dashboard:Dashboard") == []
    assert dev.of_type("aws:sns/topicSubscription:TopicSubscription") == []
    assert dev.outputs["dashboard_url"] is None
    assert dev.outputs["sns_topic_arn"].endswith(":lighthouse-dev-alerts")


def _alarms(prod):
    return {a.name: a.inputs for a in prod.of_type(ALARM)}


def test_prod_alarm_set_matches_config(prod):
    assert set(_alarms(prod)) == set(prod.cfg.alarm_names) == {
        "db-cpu", "db-status", "db-disk", "db-memory", "backup-failed", "prober-1-status",
        "db-connections", "wal-archive-lag", "wal-archive-failing", "units-failed",
        "prober-heartbeat"}
    assert prod.outputs["alarm_names"] == [f"lighthouse-prod-{n}" for n in prod.cfg.alarm_names]


def test_prod_thresholds_and_dimensions(prod):
    a, db_id = _alarms(prod), prod.outputs["db_instance_id"]
    cpu = a["db-cpu"]
    assert (cpu["namespace"], cpu["metricName"], cpu["statistic"]) == (
        "AWS/EC2", "CPUUtilization", "Average")
    assert (cpu["threshold"], cpu["period"], cpu["evaluationPeriods"]) == (80, 300, 3)
    assert cpu["comparisonOperator"] == "GreaterThanThreshold"
    assert cpu["dimensions"] == {"InstanceId": db_id}
    disk = a["db-disk"]
    assert (disk["namespace"], disk["metricName"], disk["threshold"]) == (
        "CWAgent", "disk_used_percent", 85)
    assert disk["dimensions"] == {"InstanceId": db_id, "path": "/data", "fstype": "ext4"}
    mem = a["db-memory"]
    assert (mem["metricName"], mem["threshold"]) == ("mem_used_percent", 90)
    backup = a["backup-failed"]
    assert (backup["namespace"], backup["metricName"]) == ("AWS/Backup",
                                                          "NumberOfBackupJobsFailed")
    assert backup["dimensions"] == {"BackupVaultName": "lighthouse-prod-vault"}
    assert backup["treatMissingData"] == "notBreaching"


def test_status_alarms_auto_recover_and_notify(prod):
    a, topic = _alarms(prod), prod.outputs["sns_topic_arn"]
    for name, instance_id in (("db-status", prod.outputs["db_instance_id"]),
                              ("prober-1-status", prod.outputs["prober_instance_ids"][0])):
        status = a[name]
        assert status["metricName"] == "StatusCheckFailed_System"
        assert status["alarmActions"] == ["arn:aws:automate:us-east-1:ec2:recover", topic]
        assert status["dimensions"] == {"InstanceId": instance_id}
    for name, alarm in a.items():
        assert topic in alarm["alarmActions"], name
        assert alarm["okActions"] == [topic], name


def test_email_subscription_and_encrypted_topic(prod):
    sub = prod.one("aws:sns/topicSubscription:TopicSubscription")
    assert (sub.inputs["protocol"], sub.inputs["endpoint"]) == ("email", "ops@example.com")
    assert sub.inputs["topic"] == prod.outputs["sns_topic_arn"]
    assert prod.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"] == "alias/aws/sns"


def test_dashboard_charts_the_db_host(prod):
    dash = prod.one("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dash.inputs["dashboardBody"])
    metrics = [m for w in body["widgets"] for m in w["properties"]["metrics"]]
    assert ["AWS/EC2", "CPUUtilization", "InstanceId", prod.outputs["db_instance_id"]] in metrics
    assert prod.outputs["dashboard_url"].endswith("#dashboards:name=lighthouse-prod")


def test_host_metric_alarms_read_the_contract_and_the_heartbeat_breaches_when_missing(prod):
    from lighthouse_ops.hostmetrics import contract as hm

    a, db_id = _alarms(prod), prod.outputs["db_instance_id"]
    names = {m.name for m in hm.ALL}
    for alarm in ("db-connections", "wal-archive-lag", "wal-archive-failing", "units-failed",
                  "prober-heartbeat"):
        assert a[alarm]["namespace"] == hm.NAMESPACE and a[alarm]["metricName"] in names
        assert a[alarm]["dimensions"] == {hm.DIMENSION: db_id}
    assert a["db-connections"]["threshold"] == 80
    assert a["wal-archive-lag"]["threshold"] == 120  # 2 x archive_timeout
    assert a["prober-heartbeat"]["treatMissingData"] == "breaching"
    assert a["prober-heartbeat"]["comparisonOperator"] == "LessThanThreshold"
    assert a["wal-archive-lag"]["treatMissingData"] == "notBreaching"  # archiving may be off
