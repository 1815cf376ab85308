"""Monitoring: SNS topic (+ email subscription), CloudWatch alarms, a dashboard.

Alarms (thresholds from ``lighthouse:monitoring``): CPU above ``cpuThresholdPercent`` for
``cpuEvaluationPeriods`` x 5 min; data-mount disk used above ``diskUsedThresholdPercent`` and
memory used above ``memoryUsedThresholdPercent`` (CloudWatch agent metrics, namespace CWAgent);
system status check failed for 2 minutes -> EC2 auto-recover (not offered for spot) + SNS;
any failed AWS Backup job in the vault. Every alarm notifies SNS on ALARM and on OK.

The disk alarm's dimensions must match what the CloudWatch agent emits: the agent config
(Ansible) appends only ``InstanceId`` and sets ``drop_device: true`` for ``disk``, giving
``{InstanceId, path, fstype}``.

A Patroni cluster (``ha: patroni``) gets the host alarms once per member (``db-2-cpu``...),
no WAL-archive alarms (nothing archives) and one prober-heartbeat alarm over every member's
series; the dashboard draws one line per member.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from lighthouse_ops.hostmetrics import contract as hm

from infra.common import COMPONENT_PREFIX, child, tags
from infra.config import AGENT_NAMESPACE, HOST_METRIC_ALARMS, AlarmRef, StackConfig


@dataclass(frozen=True)
class MonitoringArgs:
    cfg: StackConfig
    # inventory host name -> instance id: db-1.. and prober-1..
    instance_ids: dict[str, pulumi.Output[str]]
    vault_name: pulumi.Input[str] | None


def recover_action(region: str) -> str:
    return f"arn:aws:automate:{region}:ec2:recover"


def dashboard_url(region: str, name: str) -> str:
    return (f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards:name={name}")


class Monitoring(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    alarm_names: list[str]
    dashboard_url: pulumi.Output[str] | None

    def __init__(self, name: str, args: MonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:Monitoring", name, None, opts)
        cfg, m = args.cfg, args.cfg.monitoring
        topic = aws.sns.Topic("alerts", name=f"{cfg.name_prefix}-alerts",
                              kms_master_key_id="alias/aws/sns", tags=tags(cfg, "alerts"),
                              opts=child(self))
        if m.alarm_email:
            aws.sns.TopicSubscription("alerts-email", topic=topic.arn, protocol="email",
                                      endpoint=m.alarm_email, opts=child(self))
        self.topic_arn = topic.arn
        # The agent ships PostgreSQL's and pgBackRest's logs here (cloudwatch_agent_log_*).
        logs = aws.cloudwatch.LogGroup("hosts", name=cfg.log_group_name,
                                       retention_in_days=m.log_retention_days,
                                       tags=tags(cfg, "hosts-logs"), opts=child(self))
        self.log_group_name = logs.name
        self.alarm_names = []
        for alarm in cfg.alarms:
            self._alarm(alarm, args, topic.arn)
            self.alarm_names.append(f"{cfg.name_prefix}-{alarm.name}")
        self.dashboard_url = None
        if m.dashboard:
            self._dashboard(args)
        self.register_outputs({"topic_arn": self.topic_arn, "dashboard_url": self.dashboard_url,
                               "log_group_name": self.log_group_name})

    def _alarm(self, alarm: AlarmRef, args: MonitoringArgs, topic_arn: pulumi.Output[str]):
        cfg, m, kind = args.cfg, args.cfg.monitoring, alarm.kind
        instance = args.instance_ids[alarm.host] if alarm.host else None
        dims = instance.apply(lambda i: {"InstanceId": i}) if instance else None
        actions: list = [topic_arn]
        common: dict[str, Any] = {"alarm_actions": actions, "ok_actions": [topic_arn],
                                  "treat_missing_data": "missing"}
        spec: dict[str, Any]
        if kind == "cpu":
            spec = dict(namespace="AWS/EC2", metric_name="CPUUtilization", statistic="Average",
                        period=300, evaluation_periods=m.cpu_evaluation_periods,
                        threshold=m.cpu_threshold_percent,
                        comparison_operator="GreaterThanThreshold", dimensions=dims)
        elif kind == "disk" and instance:
            spec = dict(namespace=AGENT_NAMESPACE, metric_name="disk_used_percent",
                        statistic="Average", period=300, evaluation_periods=2,
                        threshold=m.disk_used_threshold_percent,
                        comparison_operator="GreaterThanThreshold",
                        dimensions=instance.apply(
                            lambda i: {"InstanceId": i, "path": m.data_mount_path,
                                       "fstype": m.data_fs_type}))
        elif kind == "memory":
            spec = dict(namespace=AGENT_NAMESPACE, metric_name="mem_used_percent",
                        statistic="Average", period=300, evaluation_periods=3,
                        threshold=m.memory_used_threshold_percent,
                        comparison_operator="GreaterThanThreshold", dimensions=dims)
        elif kind == "status":
            spot = cfg.probers.spot if (alarm.host or "").startswith("prober") else \
                cfg.database.spot
            if not spot:
                actions.insert(0, recover_action(cfg.region))
            spec = dict(namespace="AWS/EC2", metric_name="StatusCheckFailed_System",
                        statistic="Maximum", period=60, evaluation_periods=2, threshold=0,
                        comparison_operator="GreaterThanThreshold", dimensions=dims)
        elif kind in HOST_METRIC_ALARMS:
            metric, statistic, periods, threshold, comparison, missing = HOST_METRIC_ALARMS[kind]
            spec = dict(evaluation_periods=periods, comparison_operator=comparison,
                        threshold=m.connections_used_threshold_percent if threshold is None
                        else threshold)
            if dims is not None:
                spec |= dict(namespace=hm.NAMESPACE, metric_name=metric.name,
                             statistic=statistic, period=300, dimensions=dims)
            else:  # every db member publishes it: the best of them (any member will do)
                spec["metric_queries"] = self._across_members(args, metric, statistic)
            common["treat_missing_data"] = missing
        elif kind == "backup-failed":
            spec = dict(namespace="AWS/Backup", metric_name="NumberOfBackupJobsFailed",
                        statistic="Sum", period=3600, evaluation_periods=1, threshold=0,
                        comparison_operator="GreaterThanThreshold",
                        dimensions=pulumi.Output.from_input(args.vault_name).apply(
                            lambda v: {"BackupVaultName": v}))
            common["treat_missing_data"] = "notBreaching"
        else:  # pragma: no cover - config.alarms and this method move together
            raise ValueError(alarm)
        return aws.cloudwatch.MetricAlarm(
            alarm.name, name=f"{cfg.name_prefix}-{alarm.name}",
            alarm_description=f"Lighthouse {cfg.stack}: {alarm.name}", **spec, **common,
            tags=tags(cfg, alarm.name), opts=child(self))

    @staticmethod
    def _across_members(args: MonitoringArgs, metric: hm.HostMetric, statistic: str) -> list:
        """MAX over the members' series: data while any member publishes, and missing (which
        the heartbeat alarm treats as breaching) only when none does."""
        queries = [aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=f"m{k}", return_data=False,
            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=hm.NAMESPACE, metric_name=metric.name, stat=statistic, period=300,
                dimensions=args.instance_ids[host].apply(lambda i: {hm.DIMENSION: i})))
            for k, host in enumerate(args.cfg.database.hostnames, 1)]
        ids = ", ".join(f"m{k}" for k in range(1, len(queries) + 1))
        return [*queries, aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id="best", expression=f"MAX([{ids}])", label=metric.name, return_data=True)]

    def _dashboard(self, args: MonitoringArgs) -> None:
        cfg, m = args.cfg, args.cfg.monitoring
        name = f"{cfg.name_prefix}"

        hosts = cfg.database.hostnames

        def body(ids: list[str]) -> str:
            def widget(title: str, metrics: list, x: int, y: int) -> dict:
                return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
                        "properties": {"title": title, "region": cfg.region, "stat": "Average",
                                       "period": 300, "metrics": metrics}}

            def each(namespace: str, metric: str, *dims: str) -> list:
                return [[namespace, metric, "InstanceId", i, *dims,
                         {"label": f"{h} {metric}"}] if len(ids) > 1 else
                        [namespace, metric, "InstanceId", i, *dims]
                        for h, i in zip(hosts, ids, strict=True)]
            return json.dumps({"widgets": [
                widget("CPU %", each("AWS/EC2", "CPUUtilization"), 0, 0),
                widget(f"Disk used % ({m.data_mount_path})",
                       each(AGENT_NAMESPACE, "disk_used_percent", "path", m.data_mount_path,
                            "fstype", m.data_fs_type), 12, 0),
                widget("Memory used %", each(AGENT_NAMESPACE, "mem_used_percent"), 0, 6),
                widget("EBS ops", each("AWS/EC2", "EBSReadOps") + each("AWS/EC2", "EBSWriteOps"),
                       12, 6),
            ]})

        aws.cloudwatch.Dashboard(
            "main", dashboard_name=name,
            dashboard_body=pulumi.Output.all(*[args.instance_ids[h] for h in hosts]).apply(body),
            opts=child(self))
        self.dashboard_url = pulumi.Output.from_input(dashboard_url(cfg.region, name))
