"""Network: an existing VPC/subnet from config, or a small VPC of our own.

No NAT gateway (about $33/month before traffic). Instances reach apt mirrors and AWS APIs
through a public IPv4 in the public subnet (no inbound rule admits the internet), or, in the
private subnet, through VPC endpoints: S3 as a free gateway endpoint, SSM and friends as
interface endpoints chosen in ``lighthouse:network.interfaceEndpoints`` (each costs money).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import COMPONENT_PREFIX, child, tags
from infra.config import StackConfig


@dataclass(frozen=True)
class NetworkArgs:
    cfg: StackConfig


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    availability_zone: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:Network", name, None, opts)
        cfg, net = args.cfg, args.cfg.network
        if not net.create_vpc:
            subnet = aws.ec2.get_subnet_output(id=net.subnet_ids[0], opts=pulumi.InvokeOptions(
                parent=self))
            vpc = aws.ec2.get_vpc_output(id=net.vpc_id, opts=pulumi.InvokeOptions(parent=self))
            self.vpc_id = pulumi.Output.from_input(net.vpc_id or "")
            self.vpc_cidr = vpc.cidr_block
            self.subnet_id = subnet.id
            self.availability_zone = subnet.availability_zone
        else:
            self._create(cfg)
        self.register_outputs({"vpc_id": self.vpc_id, "subnet_id": self.subnet_id,
                               "availability_zone": self.availability_zone})

    def _create(self, cfg: StackConfig) -> None:
        net = cfg.network
        az = net.availability_zone or aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOptions(parent=self)).names[0]
        vpc = aws.ec2.Vpc("vpc", cidr_block=net.vpc_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags=tags(cfg, "vpc"), opts=child(self))
        # Two /24s: .0 public, .1 private; the db host goes where publicSubnet says.
        base = net.vpc_cidr.split("/")[0].rsplit(".", 2)[0]
        public = aws.ec2.Subnet("public", vpc_id=vpc.id, cidr_block=f"{base}.0.0/24",
                                availability_zone=az, map_public_ip_on_launch=False,
                                tags=tags(cfg, "public"), opts=child(self))
        private = aws.ec2.Subnet("private", vpc_id=vpc.id, cidr_block=f"{base}.1.0/24",
                                 availability_zone=az, tags=tags(cfg, "private"),
                                 opts=child(self))
        igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, tags=tags(cfg, "igw"),
                                      opts=child(self))
        public_rt = aws.ec2.RouteTable(
            "public", vpc_id=vpc.id, tags=tags(cfg, "public"), opts=child(self),
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)])
        private_rt = aws.ec2.RouteTable("private", vpc_id=vpc.id, tags=tags(cfg, "private"),
                                        opts=child(self))
        aws.ec2.RouteTableAssociation("public", subnet_id=public.id,
                                      route_table_id=public_rt.id, opts=child(self))
        aws.ec2.RouteTableAssociation("private", subnet_id=private.id,
                                      route_table_id=private_rt.id, opts=child(self))
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
                    subnet_ids=[private.id], security_group_ids=[endpoint_sg.id],
                    private_dns_enabled=True, tags=tags(cfg, service), opts=child(self))
        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.subnet_id = public.id if net.public_subnet else private.id
        self.availability_zone = pulumi.Output.from_input(az)
