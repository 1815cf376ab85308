"""Egress for hosts in the private subnets (``lighthouse:network.nat``): apt mirrors, SSM, the
CloudWatch agent and Secrets Manager. S3 needs none of it (the gateway endpoint).

``gateway``: AWS's managed NAT gateway (the seeds' choice): no host to look after, $0.045/hour
plus $0.045 per GB. ``instance``: a t4g.nano that forwards and masquerades with nftables, an
eighth of the price; automatic recovery brings it back after a hardware fault, and while it is
gone only egress stops (the database and the probers' path to it stay inside the VPC). One NAT,
in db-1's zone, for every zone: a second would double the cost for an egress-only path.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra import host
from infra.common import child, tags
from infra.config import NAT_INSTANCE_TYPE, NAT_ROOT_GB, StackConfig


def nat_cloud_init(vpc_cidr: str) -> str:
    """Forwarding + masquerade for the VPC's addresses, security updates on their own."""
    rules = ("table ip lighthouse_nat {\n"
             "  chain postrouting {\n"
             "    type nat hook postrouting priority srcnat; policy accept;\n"
             f"    ip saddr {vpc_cidr} ip daddr != {vpc_cidr} masquerade\n"
             "  }\n"
             "}\n")
    doc = {
        "package_update": True,
        "packages": ["nftables", "unattended-upgrades"],
        "write_files": [
            {"path": "/etc/sysctl.d/90-lighthouse-nat.conf",
             "content": "net.ipv4.ip_forward = 1\n"},
            {"path": "/etc/nftables.conf", "content": "#!/usr/sbin/nft -f\nflush ruleset\n"
             + rules},
        ],
        # nothing to log in to: a broken NAT instance is replaced, not repaired
        "runcmd": [["sysctl", "--system"], ["systemctl", "enable", "--now", "nftables"],
                   ["systemctl", "disable", "--now", "ssh"]],
    }
    return "#cloud-config\n" + json.dumps(doc, indent=2) + "\n"


def forwarded_ports(cfg: StackConfig) -> list[tuple[int, int]]:
    """TCP port ranges the NAT forwards: what the private hosts' SGs let out. The db hosts
    send HTTP(S) only; a private prober (publicSubnet: false, or architecture A on a private
    db host) checks targets on any port."""
    net = cfg.network
    if not net.public_subnet or cfg.probers.architecture == "A":
        return [(1, 65535)]
    return [(80, 80), (443, 443)]


def create_nat(cfg: StackConfig, parent: pulumi.Resource, vpc_id: pulumi.Input[str],
               public_subnet_id: pulumi.Input[str], route_table_id: pulumi.Input[str]) -> None:
    """The NAT ``cfg.network.nat`` names and the private route table's default route to it."""
    kind, cidr = cfg.network.nat, cfg.network.vpc_cidr
    if kind == "gateway":
        eip = aws.ec2.Eip("nat", domain="vpc", tags=tags(cfg, "nat"), opts=child(parent))
        gw = aws.ec2.NatGateway("nat", allocation_id=eip.id, subnet_id=public_subnet_id,
                                connectivity_type="public", tags=tags(cfg, "nat"),
                                opts=child(parent))
        aws.ec2.Route("private-default", route_table_id=route_table_id,
                      destination_cidr_block="0.0.0.0/0", nat_gateway_id=gw.id,
                      opts=child(parent))
        return
    sg = aws.ec2.SecurityGroup(
        "nat", vpc_id=vpc_id, description="NAT instance: forwards the VPC's egress",
        tags=tags(cfg, "nat"), opts=child(parent),
        egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0,
                                                cidr_blocks=["0.0.0.0/0"],
                                                description="forwarded egress")])
    for port_from, port_to in forwarded_ports(cfg):
        aws.vpc.SecurityGroupIngressRule(
            f"nat-from-vpc-{port_from}" + ("" if port_to == port_from else f"-{port_to}"),
            security_group_id=sg.id, ip_protocol="tcp", from_port=port_from, to_port=port_to,
            cidr_ipv4=cidr, description="egress of the VPC's private hosts", opts=child(parent))
    inst = aws.ec2.Instance(
        "nat", ami=host.lookup_ami("debian-12", parent), instance_type=NAT_INSTANCE_TYPE,
        subnet_id=public_subnet_id, vpc_security_group_ids=[sg.id],
        associate_public_ip_address=True,
        source_dest_check=False,  # it forwards packets that are not addressed to it
        metadata_options=host.METADATA_OPTIONS,
        maintenance_options=aws.ec2.InstanceMaintenanceOptionsArgs(auto_recovery="default"),
        root_block_device=host.root_volume(NAT_ROOT_GB, tags(cfg, "nat-root")),
        user_data=nat_cloud_init(cidr), tags=tags(cfg, "nat", role="nat"),
        opts=child(parent, ignore_changes=["ami"]))
    aws.ec2.Route("private-default", route_table_id=route_table_id,
                  destination_cidr_block="0.0.0.0/0",
                  network_interface_id=inst.primary_network_interface_id, opts=child(parent))
