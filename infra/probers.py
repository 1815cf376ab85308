"""Prober fleet. Architecture A: the prober runs on the db host (no instances here, the
inventory puts the db host in the ``prober`` group). Architecture B: ``count`` instances in
their own security group, reading the DB secret and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import host
from infra.common import COMPONENT_PREFIX, child, tags
from infra.config import StackConfig


@dataclass(frozen=True)
class ProberFleetArgs:
    cfg: StackConfig
    subnet_id: pulumi.Input[str]
    availability_zone: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    secret_arn: pulumi.Input[str]
    public_ip: bool


class ProberFleet(pulumi.ComponentResource):
    instance_ids: list[pulumi.Output[str]]
    private_ips: list[pulumi.Output[str]]
    profile_name: pulumi.Output[str] | None  # also worn by the probers in other regions

    def __init__(self, name: str, args: ProberFleetArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:ProberFleet", name, None, opts)
        cfg, p = args.cfg, args.cfg.probers
        self.instance_ids, self.private_ips = [], []
        self.profile_name = None
        if p.instance_count:
            profile = host.instance_role(
                "prober", cfg, self, host.read_secret_statement(args.secret_arn).apply(
                    lambda st: [st, host.SEND_SMS_STATEMENT]))
            self.profile_name = profile.name
            ami = host.lookup_ami(cfg.database.os, self)
            for i in range(p.instance_count):
                hostname = f"prober-{i + 1}"
                inst = aws.ec2.Instance(
                    hostname, ami=ami, instance_type=p.instance_type,
                    subnet_id=args.subnet_id, availability_zone=args.availability_zone,
                    vpc_security_group_ids=[args.security_group_id],
                    iam_instance_profile=profile.name,
                    associate_public_ip_address=args.public_ip,
                    metadata_options=host.METADATA_OPTIONS,
                    root_block_device=host.root_volume(cfg.database.root_volume_gb,
                                                       tags(cfg, f"{hostname}-root")),
                    instance_market_options=host.spot_options(None) if p.spot else None,
                    ebs_optimized=True,
                    user_data=host.cloud_init(cfg.database.os, f"{cfg.name_prefix}-{hostname}",
                                              cfg.region),
                    # location: the fleet.location its prober checks from (lighthouse.fleet)
                    tags=tags(cfg, hostname, role="prober", location=cfg.region),
                    opts=child(self, ignore_changes=["ami", "userData"]))
                self.instance_ids.append(inst.id)
                self.private_ips.append(inst.private_ip)
        self.register_outputs({"instance_ids": self.instance_ids})
