"""The whole program: typed config in, components built, outputs returned.

``__main__.py`` calls :func:`config_from_pulumi` and :func:`build` and exports the result;
the tests call :func:`build` under ``pulumi.runtime.set_mocks`` with the committed stack files.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra import cost
from infra.backup import Backup, BackupArgs
from infra.config import NAMESPACE, SECTIONS, StackConfig, parse_stack_config
from infra.database import DatabaseHost, DatabaseHostArgs
from infra.inventory import HostFacts, render_inventory
from infra.monitoring import Monitoring, MonitoringArgs
from infra.network import Network, NetworkArgs
from infra.probers import ProberFleet, ProberFleetArgs
from infra.rds import RdsDatabase, RdsDatabaseArgs
from infra.regions import RemoteProbers, RemoteProbersArgs
from infra.secrets import Secrets, SecretsArgs
from infra.security import SecurityGroups, SecurityGroupsArgs


def config_from_pulumi(stack: str | None = None) -> StackConfig:
    """Read ``aws:region`` and the ``lighthouse:*`` objects from the Pulumi config."""
    stack = stack or pulumi.get_stack()
    ours = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {"aws:region": pulumi.Config("aws").get("region")}
    for key in ("deletionProtection", "tags", *SECTIONS):
        value = ours.get_object(key)
        if value is not None:
            raw[f"{NAMESPACE}:{key}"] = value
    return parse_stack_config(raw, stack, f"Pulumi.{stack}.yaml")


def build(cfg: StackConfig) -> dict[str, Any]:
    """Create every component for ``cfg``; return the stack outputs by name."""
    network = Network("network", NetworkArgs(cfg))
    sgs = SecurityGroups("security", SecurityGroupsArgs(cfg, network.vpc_id))
    secrets = Secrets("secrets", SecretsArgs(cfg))
    backup = Backup("backup", BackupArgs(cfg))
    # Architecture A: the prober runs on the db host, which then also needs the prober SG.
    db_sgs: list[pulumi.Input[str]] = (
        [sgs.db_sg_id, sgs.prober_sg_id] if cfg.probers.architecture == "A" else [sgs.db_sg_id])
    members = [DatabaseHost("database" if host == "db-1" else f"database{host[2:]}",
                            DatabaseHostArgs(
        cfg, subnet_id=subnet, availability_zone=zone, security_group_ids=db_sgs,
        bucket_arn=backup.bucket_arn, secret_arn=secrets.secret_arn,
        public_ip=cfg.network.database_public,
        hostname=host))
        for host, subnet, zone in zip(cfg.database.hostnames, network.member_subnet_ids,
                                      network.member_zones, strict=True)]
    db = members[0]
    probers = ProberFleet("probers", ProberFleetArgs(
        cfg, subnet_id=network.prober_subnet_id, availability_zone=network.availability_zone,
        security_group_id=sgs.prober_sg_id, secret_arn=secrets.secret_arn,
        public_ip=cfg.network.public_subnet))
    remote = [RemoteProbers(f"probers-{where.region}", RemoteProbersArgs(
        cfg, where, vpc_id=network.vpc_id, route_table_ids=network.route_table_ids,
        db_sg_id=sgs.db_sg_id, profile_name=probers.profile_name or ""))
        for where in cfg.probers.regions]
    # every prober host: (name, region or None for the stack's own, instance id, private IP)
    prober_hosts: list[tuple[str, str | None, pulumi.Output[str], pulumi.Output[str]]] = [
        (f"prober-{i + 1}", None, iid, ip)
        for i, (iid, ip) in enumerate(zip(probers.instance_ids, probers.private_ips, strict=True))]
    prober_hosts += [(name, where.region, iid, ip)
                     for where, fleet in zip(cfg.probers.regions, remote, strict=True)
                     for name, iid, ip in zip(fleet.hostnames, fleet.instance_ids,
                                              fleet.private_ips, strict=True)]
    instance_ids = {host: m.instance_id for host, m in zip(cfg.database.hostnames, members,
                                                           strict=True)}
    instance_ids |= {f"prober-{i + 1}": pid for i, pid in enumerate(probers.instance_ids)}
    monitoring = Monitoring("monitoring", MonitoringArgs(
        cfg, instance_ids=instance_ids, vault_name=backup.vault_name))

    rds = RdsDatabase("rds", RdsDatabaseArgs(
        cfg, vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids,
        client_sg_ids=[sgs.prober_sg_id, sgs.db_sg_id], password=secrets.db_password),
    ) if cfg.rds.enabled else None

    estimate = cost.estimate(cfg)
    n = len(members)
    facts = [m.instance_id for m in members] + [m.private_ip for m in members] + [
        m.data_volume_id for m in members]
    prober_ids = pulumi.Output.all(*[iid for _, _, iid, _ in prober_hosts])
    prober_ips = pulumi.Output.all(*[ip for _, _, _, ip in prober_hosts])
    inventory = pulumi.Output.all(
        backup.bucket_name, secrets.secret_name, prober_ids, prober_ips, backup.vault_name,
        backup.role_arn, rds.address if rds else None, *facts,
    ).apply(lambda v: render_inventory(
        cfg, [HostFacts(*f) for f in zip(v[7:7 + n], v[7 + n:7 + 2 * n], v[7 + 2 * n:],
                                         strict=True)],
        [HostFacts(i, ip, hostname=name if region else None, region=region)
         for (name, region, _, _), i, ip in zip(prober_hosts, v[2], v[3], strict=True)],
        bucket=v[0], secret_name=v[1], backup_vault=v[4], backup_role_arn=v[5],
        rds_address=v[6]))
    return {
        "db_instance_id": db.instance_id,
        "db_private_ip": db.private_ip,
        "data_volume_id": db.data_volume_id,
        "availability_zone": db.availability_zone,
        # every db host, db-1 first (one entry without ha)
        "db_instance_ids": pulumi.Output.all(*[m.instance_id for m in members]),
        "db_private_ips": pulumi.Output.all(*[m.private_ip for m in members]),
        "data_volume_ids": pulumi.Output.all(*[m.data_volume_id for m in members]),
        "db_availability_zones": pulumi.Output.all(*[m.availability_zone for m in members]),
        # every prober host, the stack's region's first, then probers.regions in order
        "prober_instance_ids": prober_ids,
        "prober_private_ips": prober_ips,
        "prober_locations": {name: region or cfg.region for name, region, _, _ in prober_hosts},
        "backup_vault_name": backup.vault_name,
        "backup_role_arn": backup.role_arn,
        "backup_bucket": backup.bucket_name,
        "sns_topic_arn": monitoring.topic_arn,
        "alarm_names": monitoring.alarm_names,
        "dashboard_url": monitoring.dashboard_url,
        "log_group_name": monitoring.log_group_name,
        "ssm_session_command": db.instance_id.apply(
            lambda i: f"aws ssm start-session --target {i} --region {cfg.region}"),
        "ansible_inventory": inventory,
        # RDS (rds.enabled): the migration target's endpoint (host:port), else null
        "rds_endpoint": rds.endpoint if rds else None,
        "db_secret_arn": secrets.secret_arn,
        "db_password": secrets.db_password,
        "estimated_monthly_cost_usd": float(estimate.monthly),
        "cost_breakdown": estimate.format(),
    }
