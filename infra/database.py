"""Database host: a t4g instance plus a separate encrypted gp3 data volume.

The data volume lives apart from the instance (same AZ, fixed device name) so the instance can
be replaced, resized or interrupted (spot: persistent request, stop on interruption) without
touching the data. In prod the volume is protected and retained on delete, carries a final
snapshot, and the instance has API termination protection.

IAM: SSM core + CloudWatch agent + S3 limited to the backup bucket (pgBackRest, dumps) + read
of its own secret, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import host
from infra.common import COMPONENT_PREFIX, child, stateful, tags
from infra.config import StackConfig


@dataclass(frozen=True)
class DatabaseHostArgs:
    cfg: StackConfig
    subnet_id: pulumi.Input[str]
    availability_zone: pulumi.Input[str]
    security_group_ids: Sequence[pulumi.Input[str]]
    bucket_arn: pulumi.Input[str]
    secret_arn: pulumi.Input[str]
    public_ip: bool
    # inventory name: db-1 (the only db host, or the member that bootstraps a cluster), db-2...
    hostname: str = "db-1"


def bucket_statements(bucket_arn: pulumi.Input[str]) -> pulumi.Output[list[dict]]:
    return pulumi.Output.from_input(bucket_arn).apply(lambda arn: [
        {"Sid": "BackupBucketList", "Effect": "Allow",
         "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": arn},
        {"Sid": "BackupBucketObjects", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                    "s3:AbortMultipartUpload"],  # dumps go up multipart
         "Resource": f"{arn}/*"},
    ])


class DatabaseHost(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    data_volume_id: pulumi.Output[str]
    availability_zone: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseHostArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:DatabaseHost", name, None, opts)
        cfg, db = args.cfg, args.cfg.database
        # db-1 keeps the resource names a single-host stack always had: turning on ha keeps
        # its instance and data volume (Patroni takes over the cluster on it)
        sfx = "" if args.hostname == "db-1" else args.hostname.removeprefix("db")
        statements = pulumi.Output.all(
            bucket_statements(args.bucket_arn), host.read_secret_statement(args.secret_arn),
        ).apply(lambda parts: [*parts[0], parts[1], host.SEND_SMS_STATEMENT])  # A: prober here
        profile = host.instance_role(f"db{sfx}", cfg, self, statements)

        instance = aws.ec2.Instance(
            f"db{sfx}",
            ami=host.lookup_ami(db.os, self),
            instance_type=db.instance_type,
            subnet_id=args.subnet_id,
            availability_zone=args.availability_zone,
            vpc_security_group_ids=args.security_group_ids,
            iam_instance_profile=profile.name,
            associate_public_ip_address=args.public_ip,
            metadata_options=host.METADATA_OPTIONS,
            root_block_device=host.root_volume(db.root_volume_gb, tags(cfg, f"db{sfx}-root")),
            instance_market_options=host.spot_options(db.spot_max_price) if db.spot else None,
            disable_api_termination=cfg.deletion_protection and not db.spot,
            ebs_optimized=True,
            user_data=host.cloud_init(db.os, f"{cfg.name_prefix}-db{sfx}", cfg.region),
            user_data_replace_on_change=False,
            tags=tags(cfg, f"db{sfx}", role="db", host=args.hostname),
            # A newer AMI must not replace a running database host: rebuilds are a runbook.
            opts=child(self, ignore_changes=["ami", "userData"]))
        key, value = cfg.backup_tag
        vol = db.data_volume
        data = aws.ebs.Volume(
            f"data{sfx}",
            availability_zone=args.availability_zone,
            type="gp3", size=vol.size_gb, iops=vol.iops, throughput=vol.throughput_mibps,
            encrypted=True,
            final_snapshot=cfg.deletion_protection,
            tags=tags(cfg, f"data{sfx}", role="db-data", host=args.hostname, **{key: value}),
            opts=stateful(self, cfg))
        aws.ec2.VolumeAttachment(
            f"data{sfx}", device_name=vol.device_name, volume_id=data.id, instance_id=instance.id,
            stop_instance_before_detaching=True, opts=child(self))

        self.instance_id = instance.id
        self.private_ip = instance.private_ip
        self.data_volume_id = data.id
        self.availability_zone = data.availability_zone
        self.register_outputs({"instance_id": self.instance_id, "private_ip": self.private_ip,
                               "data_volume_id": self.data_volume_id})
