"""RDS for PostgreSQL (seed option C2): a Multi-AZ instance the live database can move to.

It stands beside the db host (capability level 3: vanilla PostgreSQL, no TimescaleDB; the
schema has a vanilla variant) as the target of ``invoke db.migrate-to``. Encrypted storage
(gp3, autoscaling up to ``maxAllocatedStorageGb``), never publicly accessible, TLS required
(``rds.force_ssl``), automated backups kept ``backupRetentionDays`` (CrossGuard refuses fewer
than 7), deletion protection and a final snapshot where the stack protects its data. Reached
on 5432 from the prober SG and the db host's SG (the migration copies from there) only.

The master user is the application's ``lighthouse`` with the stack secret's password (the
same JSON the db host reads; the endpoint is a stack output and an inventory variable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import COMPONENT_PREFIX, child, stateful, tags
from infra.config import StackConfig
from infra.secrets import DB_NAME, DB_USER
from infra.security import POSTGRES_PORT


@dataclass(frozen=True)
class RdsDatabaseArgs:
    cfg: StackConfig
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]  # private, in at least two zones
    client_sg_ids: Sequence[pulumi.Input[str]]  # who may reach 5432
    password: pulumi.Input[str]


def parameter_family(engine_version: str) -> str:
    return f"postgres{engine_version.split('.')[0]}"


class RdsDatabase(pulumi.ComponentResource):
    endpoint: pulumi.Output[str]
    address: pulumi.Output[str]
    instance_id: pulumi.Output[str]

    def __init__(self, name: str, args: RdsDatabaseArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:RdsDatabase", name, None, opts)
        cfg, r = args.cfg, args.cfg.rds
        subnets = aws.rds.SubnetGroup(
            "rds", name=f"{cfg.name_prefix}-rds", subnet_ids=list(args.subnet_ids),
            description="Lighthouse RDS: private subnets, one per zone",
            tags=tags(cfg, "rds-subnets"), opts=child(self))
        sg = aws.ec2.SecurityGroup("rds", vpc_id=args.vpc_id, description="Lighthouse RDS",
                                   tags=tags(cfg, "rds"), opts=child(self))
        for i, source in enumerate(args.client_sg_ids):
            aws.vpc.SecurityGroupIngressRule(
                f"rds-postgres-from-{i}", security_group_id=sg.id, ip_protocol="tcp",
                from_port=POSTGRES_PORT, to_port=POSTGRES_PORT,
                referenced_security_group_id=source, description="PostgreSQL from Lighthouse",
                tags=tags(cfg, f"rds-postgres-from-{i}"), opts=child(self))
        params = aws.rds.ParameterGroup(
            "rds", name=f"{cfg.name_prefix}-rds", family=parameter_family(r.engine_version),
            description="Lighthouse: TLS only, slow statements logged",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement",
                                                    value="1000"),
            ],
            tags=tags(cfg, "rds-params"), opts=child(self))
        protect = cfg.deletion_protection
        instance = aws.rds.Instance(
            "rds", identifier=f"{cfg.name_prefix}-db", engine="postgres",
            engine_version=r.engine_version, instance_class=r.instance_class,
            allocated_storage=r.allocated_storage_gb,
            max_allocated_storage=r.max_allocated_storage_gb, storage_type="gp3",
            storage_encrypted=True, multi_az=r.multi_az, publicly_accessible=False,
            db_subnet_group_name=subnets.name, vpc_security_group_ids=[sg.id],
            parameter_group_name=params.name, db_name=DB_NAME, username=DB_USER,
            password=args.password, port=POSTGRES_PORT,
            backup_retention_period=r.backup_retention_days, backup_window=r.backup_window,
            maintenance_window=r.maintenance_window, copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True, allow_major_version_upgrade=False,
            deletion_protection=protect, skip_final_snapshot=not protect,
            final_snapshot_identifier=f"{cfg.name_prefix}-db-final" if protect else None,
            enabled_cloudwatch_logs_exports=["postgresql"],
            tags=tags(cfg, "rds", role="rds"),
            opts=stateful(self, cfg, additional_secret_outputs=["password"]))
        self.endpoint = instance.endpoint
        self.address = instance.address
        self.instance_id = instance.identifier
        self.register_outputs({"endpoint": self.endpoint})
