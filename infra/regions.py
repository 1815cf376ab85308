"""Probers in other regions (``probers.regions``): each region is one more fleet location.

Per region: its own provider, a small VPC (one public subnet, an internet gateway: probers
reach their targets directly), and a VPC peering with the stack's VPC, so the probers reach the
db host's private address on 5432 the way the stack's own probers do: the private database
stays private, nothing is opened to the internet. The db SG admits each remote prober's
address (/32), as pg_hba does (the generated inventory lists them). Cross-region security
group references do not exist, hence addresses. The instance profile is the stack's prober
one (IAM is global); the CloudWatch agent there publishes into the stack's region
(cloudwatch_agent_region), where the alarms, dashboard and log group are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import host
from infra.common import COMPONENT_PREFIX, child, tags
from infra.config import ProberRegion, StackConfig
from infra.security import POSTGRES_PORT


@dataclass(frozen=True)
class RemoteProbersArgs:
    cfg: StackConfig
    where: ProberRegion
    vpc_id: pulumi.Input[str]  # the stack's VPC (the peering's accepter side)
    route_table_ids: Sequence[pulumi.Input[str]]  # the stack's, to route back over the peering
    db_sg_id: pulumi.Input[str]
    profile_name: pulumi.Input[str]


class RemoteProbers(pulumi.ComponentResource):
    hostnames: list[str]
    instance_ids: list[pulumi.Output[str]]
    private_ips: list[pulumi.Output[str]]

    def __init__(self, name: str, args: RemoteProbersArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:RemoteProbers", name, None, opts)
        cfg, where, p = args.cfg, args.where, args.cfg.probers
        r = where.region
        provider = aws.Provider(f"aws-{r}", region=r, opts=child(self))

        def there(**kwargs) -> pulumi.ResourceOptions:
            return child(self, provider=provider, **kwargs)

        def tag(what: str) -> dict[str, str]:
            return tags(cfg, f"{r}-{what}", location=r)

        vpc = aws.ec2.Vpc(f"{r}-vpc", cidr_block=where.vpc_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags=tag("vpc"), opts=there())
        igw = aws.ec2.InternetGateway(f"{r}-igw", vpc_id=vpc.id, tags=tag("igw"), opts=there())
        peering = aws.ec2.VpcPeeringConnection(
            f"{r}-peering", vpc_id=vpc.id, peer_vpc_id=args.vpc_id, peer_region=cfg.region,
            tags=tag("peering"), opts=there())
        # the stack's side accepts (a cross-region request cannot accept itself)
        accepted = aws.ec2.VpcPeeringConnectionAccepter(
            f"{r}-peering-accept", vpc_peering_connection_id=peering.id, auto_accept=True,
            tags=tag("peering"), opts=child(self))
        routes = aws.ec2.RouteTable(
            f"{r}-public", vpc_id=vpc.id, tags=tag("public"),
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id),
                    aws.ec2.RouteTableRouteArgs(cidr_block=cfg.network.vpc_cidr,
                                                vpc_peering_connection_id=peering.id)],
            opts=there(depends_on=[accepted]))
        for k, table in enumerate(args.route_table_ids):
            aws.ec2.Route(f"to-{r}-{k}", route_table_id=table,
                          destination_cidr_block=where.vpc_cidr,
                          vpc_peering_connection_id=peering.id,
                          opts=child(self, depends_on=[accepted]))
        zone = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOptions(parent=self, provider=provider)).names[0]
        base = where.vpc_cidr.split("/")[0].rsplit(".", 2)[0]
        subnet = aws.ec2.Subnet(f"{r}-public", vpc_id=vpc.id, cidr_block=f"{base}.0.0/24",
                                availability_zone=zone, map_public_ip_on_launch=False,
                                tags=tag("public"), opts=there())
        aws.ec2.RouteTableAssociation(f"{r}-public", subnet_id=subnet.id,
                                      route_table_id=routes.id, opts=there())
        sg = aws.ec2.SecurityGroup(f"{r}-prober", vpc_id=vpc.id,
                                   description=f"Lighthouse probers in {r}",
                                   tags=tag("prober"), opts=there())
        aws.vpc.SecurityGroupEgressRule(
            f"{r}-prober-all-out", security_group_id=sg.id, ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0", description="checks to any target, the database over the "
            "peering", tags=tag("prober-all-out"), opts=there())
        for i, cidr in enumerate(p.http_allowed_cidrs):
            aws.vpc.SecurityGroupIngressRule(
                f"{r}-prober-http-cidr-{i}", security_group_id=sg.id, ip_protocol="tcp",
                from_port=p.http_port, to_port=p.http_port, cidr_ipv4=cidr,
                description=f"status page/metrics from {cidr}",
                tags=tag(f"prober-http-cidr-{i}"), opts=there())

        ami = host.lookup_ami(cfg.database.os, self, provider)
        self.hostnames, self.instance_ids, self.private_ips = [], [], []
        for i in range(where.count):
            hostname = where.hostname(i)
            inst = aws.ec2.Instance(
                hostname, ami=ami, instance_type=p.instance_type, subnet_id=subnet.id,
                vpc_security_group_ids=[sg.id], iam_instance_profile=args.profile_name,
                associate_public_ip_address=True, metadata_options=host.METADATA_OPTIONS,
                root_block_device=host.root_volume(cfg.database.root_volume_gb,
                                                   tags(cfg, f"{hostname}-root", location=r)),
                instance_market_options=host.spot_options(None) if p.spot else None,
                ebs_optimized=True,
                user_data=host.cloud_init(cfg.database.os, f"{cfg.name_prefix}-{hostname}", r),
                tags=tags(cfg, hostname, role="prober", location=r),
                opts=there(ignore_changes=["ami", "userData"]))
            aws.vpc.SecurityGroupIngressRule(
                f"db-postgres-from-{hostname}", security_group_id=args.db_sg_id,
                ip_protocol="tcp", from_port=POSTGRES_PORT, to_port=POSTGRES_PORT,
                cidr_ipv4=inst.private_ip.apply(lambda ip: f"{ip}/32"),
                description=f"PostgreSQL from {hostname} ({r}, over the peering)",
                tags=tags(cfg, f"db-postgres-from-{hostname}"), opts=child(self))
            self.hostnames.append(hostname)
            self.instance_ids.append(inst.id)
            self.private_ips.append(inst.private_ip)
        self.register_outputs({"instance_ids": self.instance_ids, "vpc_id": vpc.id})
