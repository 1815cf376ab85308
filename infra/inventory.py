"""The Ansible inventory for a deployed stack, as YAML text (a stack output).

Pure function, no Pulumi import: ``__main__`` feeds it resolved outputs. Groups ``db`` and
``prober`` match ``playbooks/site.yml``; hosts are reached over SSM Session Manager
(``amazon.aws.aws_ssm``; the backup bucket doubles as its transfer bucket, which the role
policy already allows). Architecture A puts the db host in the ``prober`` group as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from infra.config import AGENT_NAMESPACE, DUMPS_PREFIX, HOST_ARCH, OS_PYTHON, StackConfig

SSH_USERS = {"debian-12": "admin", "ubuntu-24.04": "ubuntu"}


@dataclass(frozen=True)
class HostFacts:
    instance_id: str
    private_ip: str
    data_volume_id: str | None = None
    # a prober in another region (probers.regions): its name and region
    hostname: str | None = None
    region: str | None = None


def render_inventory(cfg: StackConfig, dbs: Sequence[HostFacts], probers: Sequence[HostFacts],
                     bucket: str, secret_name: str, backup_vault: str | None = None,
                     backup_role_arn: str | None = None, rds_address: str | None = None) -> str:
    """Everything a stack decides, as inventory variables: they sit below the committed
    group_vars in Ansible's precedence only for `all.vars`, so inventories/aws/group_vars must
    not set any of these (tests/unit/infra/test_aws_contract.py checks both). `dbs` are the
    db hosts in cfg.database.hostnames order (db-1 first)."""
    mount = cfg.monitoring.data_mount_path
    db = dbs[0]

    def db_vars(facts: HostFacts) -> dict:
        return {"ansible_host": facts.instance_id, "private_ip": facts.private_ip,
                # the InstanceId dimension lighthouse-host-metrics publishes (host_metrics role)
                "lighthouse_instance_id": facts.instance_id,
                "data_volume_ebs_volume_id": facts.data_volume_id,
                "data_volume_mount_point": mount,
                # the fstype dimension of the disk alarm is the filesystem the role makes
                "data_volume_fstype": cfg.monitoring.data_fs_type,
                # host vars: above group_vars/prober.yml when the db host is also a prober (A)
                "cloudwatch_agent_mount_points": ["/", mount],
                # each prober host and nothing wider (arch A: the prober is local, loopback);
                # under ha every member admits them (any member may become the primary)
                "timescaledb_hba_allowed_cidrs": [] if cfg.probers.architecture == "A"
                else [f"{p.private_ip}/32" for p in probers]}

    def prober_vars(facts: HostFacts) -> dict:
        out = {"ansible_host": facts.instance_id, "private_ip": facts.private_ip,
               "cloudwatch_agent_mount_points": ["/"]}
        if facts.region:  # another region: another fleet location, its own SSM endpoint
            out |= {"lighthouse_location": facts.region, "ansible_aws_ssm_region": facts.region}
        return out

    prober_hosts: dict[str, dict] = {p.hostname or f"prober-{i + 1}": prober_vars(p)
                                     for i, p in enumerate(probers)}
    if cfg.probers.architecture == "A":
        prober_hosts = {"db-1": {}}
    doc = {"all": {
        "vars": {
            "ansible_connection": "amazon.aws.aws_ssm",
            "ansible_aws_ssm_region": cfg.region,
            "ansible_aws_ssm_bucket_name": bucket,
            "ansible_user": SSH_USERS[cfg.database.os],
            "lighthouse_stack": cfg.stack,
            # the hosts' interpreter and CPU: what `invoke aws.release` builds the wheelhouse
            # for (the prober role checks the host's Python against it)
            "prober_python_version": OS_PYTHON[cfg.database.os],
            "lighthouse_host_arch": HOST_ARCH,
            "lighthouse_aws_region": cfg.region,
            # the probers' fleet.location (prober role): one location per region
            "lighthouse_location": cfg.region,
            "lighthouse_db_secret_id": secret_name,
            "cloudwatch_agent_namespace": AGENT_NAMESPACE,
            "cloudwatch_agent_log_group": cfg.log_group_name,
            # A: the prober shares the db host and connects over loopback (hba allows it)
            "prober_db_host": "127.0.0.1" if cfg.probers.architecture == "A"
            else db.private_ip,
            "lighthouse_db_private_ip": db.private_ip,
            "pgbackrest_repo_s3_bucket": bucket,
            "pgbackrest_repo_s3_region": cfg.region,
            "logical_dump_s3_url": f"s3://{bucket}/{DUMPS_PREFIX}",
            # read by the aws.backup-now / aws.recovery-points runbooks (null: backups off)
            "lighthouse_backup_vault": backup_vault,
            "lighthouse_backup_role_arn": backup_role_arn,
            # architecture C: the db hosts are one Patroni cluster (roles etcd, patroni);
            # WAL archiving to S3 (pgBackRest) only on a single db host (cfg.archiving)
            "lighthouse_db_ha": cfg.database.ha,
            "lighthouse_pgbackrest_enabled": cfg.archiving,
            # RDS (rds.enabled): where `invoke db.migrate-to` moves the database (null: none)
            "lighthouse_rds_host": rds_address,
        },
        "children": {
            "db": {"hosts": {name: db_vars(facts) for name, facts in zip(
                cfg.database.hostnames, dbs, strict=True)}},
            "prober": {"hosts": prober_hosts},
        },
    }}
    header = (f"# Ansible inventory for Pulumi stack {cfg.stack!r} "
              "(generated: pulumi stack output ansible_inventory)\n")
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
