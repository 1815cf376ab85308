"""Network: an existing VPC/subnet from config, or a small VPC of our own.

Hosts in the public subnet reach apt mirrors and AWS APIs through their public IPv4 (no
inbound rule admits the internet). Hosts in the private subnets (``privateDatabase``, or
``publicSubnet: false``) go through the NAT ``lighthouse:network.nat`` names (infra/nat.py).
S3 is a free gateway endpoint for both; SSM and friends can also be interface endpoints
(``interfaceEndpoints``, each costs money) so that they keep working without the NAT.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import COMPONENT_PREFIX, child, tags
from infra.config import StackConfig
from infra.nat import create_nat


@dataclass(frozen=True)
class NetworkArgs:
    cfg: StackConfig


class Network(pulumi.ComponentResource):
    """``member_subnet_ids``/``member_zones``: one per database member, db-1's first;
    ``prober_subnet_id``/``availability_zone``: where the probers go (db-1's zone)."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    prober_subnet_id: pulumi.Output[str]
    availability_zone: pulumi.Output[str]
    member_subnet_ids: list[pulumi.Output[str]]
    member_zones: list[pulumi.Output[str]]
    # one per zone (RDS's subnet group): the created private subnets, or the given subnets
    private_subnet_ids: list[pulumi.Output[str]]
    # the created VPC's route tables (public, private): routes to peered regions go in both
    route_table_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:Network", name, None, opts)
        cfg, net = args.cfg, args.cfg.network
        members = cfg.database.member_count
        if not net.create_vpc:
            subnets = [aws.ec2.get_subnet_output(id=sid, opts=pulumi.InvokeOptions(parent=self))
                       for sid in net.subnet_ids[:cfg.zone_count]]
            vpc = aws.ec2.get_vpc_output(id=net.vpc_id, opts=pulumi.InvokeOptions(parent=self))
            self.vpc_id = pulumi.Output.from_input(net.vpc_id or "")
            self.vpc_cidr = vpc.cidr_block
            self.member_subnet_ids = [s.id for s in subnets[:members]]
            self.member_zones = [s.availability_zone for s in subnets[:members]]
            self.private_subnet_ids = [s.id for s in subnets]
            self.prober_subnet_id = subnets[0].id
            self.route_table_ids = []  # not ours (config refuses probers.regions here)
        else:
            self._create(cfg)
        self.subnet_id = self.member_subnet_ids[0]
        self.availability_zone = self.member_zones[0]
        self.register_outputs({"vpc_id": self.vpc_id, "subnet_id": self.subnet_id,
                               "availability_zone": self.availability_zone})

    def _create(self, cfg: StackConfig) -> None:
        net, members = cfg.network, cfg.database.member_count
        zones: list[pulumi.Output[str]]
        if cfg.zone_count > 1:  # config: the zones named, db-1's first
            zones = [pulumi.Output.from_input(z) for z in net.availability_zones]
        elif net.availability_zone:
            zones = [pulumi.Output.from_input(net.availability_zone)]
        else:
            zones = [aws.get_availability_zones_output(
                state="available", opts=pulumi.InvokeOptions(parent=self)).names[0]]
        vpc = aws.ec2.Vpc("vpc", cidr_block=net.vpc_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags=tags(cfg, "vpc"), opts=child(self))
        igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, tags=tags(cfg, "igw"),
                                      opts=child(self))
        public_rt = aws.ec2.RouteTable(
            "public", vpc_id=vpc.id, tags=tags(cfg, "public"), opts=child(self),
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)])
        private_rt = aws.ec2.RouteTable("private", vpc_id=vpc.id, tags=tags(cfg, "private"),
                                        opts=child(self))
        # Two /24s per zone: .2k public, .2k+1 private (zone 0: .0 and .1, the names a
        # single-host stack always had); the db hosts go private with privateDatabase, the
        # probers where publicSubnet says.
        base = net.vpc_cidr.split("/")[0].rsplit(".", 2)[0]
        public, private = [], []
        for k, az in enumerate(zones):
            sfx = "" if k == 0 else f"-{k + 1}"
            pub = aws.ec2.Subnet(f"public{sfx}", vpc_id=vpc.id, cidr_block=f"{base}.{2 * k}.0/24",
                                 availability_zone=az, map_public_ip_on_launch=False,
                                 tags=tags(cfg, f"public{sfx}"), opts=child(self))
            priv = aws.ec2.Subnet(f"private{sfx}", vpc_id=vpc.id,
                                  cidr_block=f"{base}.{2 * k + 1}.0/24", availability_zone=az,
                                  tags=tags(cfg, f"private{sfx}"), opts=child(self))
            aws.ec2.RouteTableAssociation(f"public{sfx}", subnet_id=pub.id,
                                          route_table_id=public_rt.id, opts=child(self))
            aws.ec2.RouteTableAssociation(f"private{sfx}", subnet_id=priv.id,
                                          route_table_id=private_rt.id, opts=child(self))
            public.append(pub)
            private.append(priv)
        aws.ec2.VpcEndpoint("s3", vpc_id=vpc.id, vpc_endpoint_type="Gateway",
                            service_name=f"com.amazonaws.{cfg.region}.s3",
                            route_table_ids=[public_rt.id, private_rt.id],
                            tags=tags(cfg, "s3"), opts=child(self))
        if net.interface_endpoints:
            endpoint_sg = aws.ec2.SecurityGroup(
                "endpoints", vpc_id=vpc.id, description="HTTPS from the VPC to AWS endpoints",
                tags=tags(cfg, "endpoints"), opts=child(self))
            aws.vpc.SecurityGroupIngressRule(
                "endpoints-https", security_group_id=endpoint_sg.id, ip_protocol="tcp",
                from_port=443, to_port=443, cidr_ipv4=net.vpc_cidr,
                description="HTTPS from the VPC", opts=child(self))
            for service in net.interface_endpoints:
                aws.ec2.VpcEndpoint(
                    service, vpc_id=vpc.id, vpc_endpoint_type="Interface",
                    service_name=f"com.amazonaws.{cfg.region}.{service}",
                    subnet_ids=[p.id for p in private],  # one per zone: a zone outage
                    security_group_ids=[endpoint_sg.id],  # leaves the others reachable
                    private_dns_enabled=True, tags=tags(cfg, service), opts=child(self))
        if net.nat != "none":
            create_nat(cfg, self, vpc.id, public[0].id, private_rt.id)
        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.route_table_ids = [public_rt.id, private_rt.id]
        chosen = public if net.database_public else private
        self.member_subnet_ids = [s.id for s in chosen[:members]]
        self.prober_subnet_id = (public if net.public_subnet else private)[0].id
        self.member_zones = zones[:members]
        self.private_subnet_ids = [s.id for s in private]

