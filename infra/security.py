"""Security groups: PostgreSQL only from the prober SG and configured CIDRs; no SSH from
the internet, ever (config refuses 0.0.0.0/0 and ::/0); access is by SSM Session Manager.
A Patroni cluster's members reach each other (MEMBER_PORTS) through their own SG only.

Rules are separate ``aws.vpc.SecurityGroup{In,E}gressRule`` resources (one per rule) so each
can be asserted and changed alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import COMPONENT_PREFIX, child, tags
from infra.config import StackConfig

POSTGRES_PORT = 5432
SSH_PORT = 22
# Architecture C, between members only: replication + pg_rewind, Patroni's REST API (the
# members ask each other before a failover), etcd clients and etcd peers. The roles' defaults
# (patroni_restapi_port, etcd_client_port, etcd_peer_port) use the same numbers.
MEMBER_PORTS = {"postgres": POSTGRES_PORT, "patroni": 8008, "etcd-client": 2379,
                "etcd-peer": 2380}


@dataclass(frozen=True)
class SecurityGroupsArgs:
    cfg: StackConfig
    vpc_id: pulumi.Input[str]


class SecurityGroups(pulumi.ComponentResource):
    db_sg_id: pulumi.Output[str]
    prober_sg_id: pulumi.Output[str]

    def __init__(self, name: str, args: SecurityGroupsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:SecurityGroups", name, None, opts)
        cfg = args.cfg
        db_sg = aws.ec2.SecurityGroup(
            "db", vpc_id=args.vpc_id, description="Lighthouse database host",
            tags=tags(cfg, "db"), opts=child(self))
        prober_sg = aws.ec2.SecurityGroup(
            "prober", vpc_id=args.vpc_id, description="Lighthouse probers (and backends)",
            tags=tags(cfg, "prober"), opts=child(self))

        def ingress(rule: str, sg: aws.ec2.SecurityGroup, port: int, description: str,
                    cidr: str | None = None, source_sg: pulumi.Input[str] | None = None) -> None:
            aws.vpc.SecurityGroupIngressRule(
                rule, security_group_id=sg.id, ip_protocol="tcp", from_port=port,
                to_port=port, cidr_ipv4=cidr, referenced_security_group_id=source_sg,
                description=description, tags=tags(cfg, rule), opts=child(self))

        def egress(rule: str, sg: aws.ec2.SecurityGroup, description: str,
                   protocol: str = "tcp", port: int | None = None,
                   target_sg: pulumi.Input[str] | None = None) -> None:
            aws.vpc.SecurityGroupEgressRule(
                rule, security_group_id=sg.id, ip_protocol=protocol, from_port=port,
                to_port=port, cidr_ipv4=None if target_sg else "0.0.0.0/0",
                referenced_security_group_id=target_sg, description=description,
                tags=tags(cfg, rule), opts=child(self))

        ingress("db-postgres-from-probers", db_sg, POSTGRES_PORT, "PostgreSQL from probers",
                source_sg=prober_sg.id)
        for i, cidr in enumerate(cfg.database.allowed_cidrs):
            ingress(f"db-postgres-cidr-{i}", db_sg, POSTGRES_PORT, f"PostgreSQL from {cidr}",
                    cidr=cidr)
        for i, cidr in enumerate(cfg.database.ssh_allowed_cidrs):
            ingress(f"db-ssh-cidr-{i}", db_sg, SSH_PORT, f"SSH from {cidr}", cidr=cidr)
        # The db host only talks out to package mirrors (HTTP/HTTPS) and AWS APIs (HTTPS).
        egress("db-https-out", db_sg, "HTTPS: AWS APIs, S3, apt", port=443)
        egress("db-http-out", db_sg, "HTTP: apt mirrors", port=80)
        if cfg.database.ha != "none":
            for what, port in MEMBER_PORTS.items():
                ingress(f"db-{what}-from-members", db_sg, port, f"{what} between members",
                        source_sg=db_sg.id)
                egress(f"db-{what}-to-members", db_sg, f"{what} between members", port=port,
                       target_sg=db_sg.id)
        # Probers check arbitrary targets and ports, and reach the database.
        egress("prober-all-out", prober_sg, "checks to any target", protocol="-1")
        for i, cidr in enumerate(cfg.probers.http_allowed_cidrs):
            ingress(f"prober-http-cidr-{i}", prober_sg, cfg.probers.http_port,
                    f"status page/metrics from {cidr}", cidr=cidr)

        self.db_sg_id = db_sg.id
        self.prober_sg_id = prober_sg.id
        self.register_outputs({"db_sg_id": self.db_sg_id, "prober_sg_id": self.prober_sg_id})
