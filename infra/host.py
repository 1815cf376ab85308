"""What the db host and the probers share: AMI lookup, IAM role, cloud-init, hardening.

cloud-init only prepares a host for Ansible (Python, the SSM agent, a hostname); it does not
format or mount the data volume, install PostgreSQL or the prober: Ansible owns all of that.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import child, tags
from infra.config import StackConfig


@dataclass(frozen=True)
class AmiSpec:
    owner: str
    name_pattern: str
    ssh_user: str


# Official arm64 images: Debian's own account and Canonical's.
AMIS = {
    "debian-12": AmiSpec("136693071363", "debian-12-arm64-*", "admin"),
    "ubuntu-24.04": AmiSpec(
        "099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*", "ubuntu"),
}
SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
CLOUDWATCH_AGENT_POLICY = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"


def lookup_ami(os_name: str, parent: pulumi.Resource,
               provider: pulumi.ProviderResource | None = None) -> pulumi.Output[str]:
    """The newest arm64 image of os_name (in the provider's region: AMI ids are regional)."""
    spec = AMIS[os_name]
    ami = aws.ec2.get_ami_output(
        most_recent=True, owners=[spec.owner],
        filters=[
            aws.ec2.GetAmiFilterArgs(name="name", values=[spec.name_pattern]),
            aws.ec2.GetAmiFilterArgs(name="architecture", values=["arm64"]),
            aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
            aws.ec2.GetAmiFilterArgs(name="root-device-type", values=["ebs"]),
        ],
        opts=pulumi.InvokeOptions(parent=parent, provider=provider))
    return ami.id


def cloud_init(os_name: str, hostname: str, region: str) -> str:
    """#cloud-config that leaves the host ready for Ansible over SSM."""
    runcmd: list[list[str] | str] = []
    packages = ["python3", "python3-apt", "curl", "nvme-cli"]
    if os_name.startswith("debian"):
        # Debian's images have no SSM agent; AWS publishes the .deb in a regional S3 bucket
        # (reachable through the S3 gateway endpoint too).
        url = (f"https://s3.{region}.amazonaws.com/amazon-ssm-{region}/latest/"
               "debian_arm64/amazon-ssm-agent.deb")
        runcmd += [
            ["curl", "-fsSL", "-o", "/var/cache/amazon-ssm-agent.deb", url],
            ["dpkg", "-i", "/var/cache/amazon-ssm-agent.deb"],
            ["systemctl", "enable", "--now", "amazon-ssm-agent"],
        ]
    doc = {
        "hostname": hostname,
        "preserve_hostname": False,
        "package_update": True,
        "packages": packages,
        "runcmd": runcmd,
    }
    return "#cloud-config\n" + json.dumps(doc, indent=2) + "\n"


def instance_role(name: str, cfg: StackConfig, parent: pulumi.Resource,
                  statements: pulumi.Input[Sequence[dict]]) -> aws.iam.InstanceProfile:
    """Role + profile: SSM core, CloudWatch agent, and the given scoped inline statements."""
    role = aws.iam.Role(
        name, tags=tags(cfg, f"{name}-role"), opts=child(parent),
        assume_role_policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"Service": "ec2.amazonaws.com"}}],
        }))
    for suffix, arn in (("ssm", SSM_CORE_POLICY), ("cwagent", CLOUDWATCH_AGENT_POLICY)):
        aws.iam.RolePolicyAttachment(f"{name}-{suffix}", role=role.name, policy_arn=arn,
                                     opts=child(parent))
    aws.iam.RolePolicy(
        f"{name}-scoped", role=role.id, opts=child(parent),
        policy=pulumi.Output.from_input(statements).apply(
            lambda st: json.dumps({"Version": "2012-10-17", "Statement": list(st)})))
    return aws.iam.InstanceProfile(name, role=role.name, tags=tags(cfg, f"{name}-profile"),
                                   opts=child(parent))


def read_secret_statement(secret_arn: pulumi.Input[str]) -> pulumi.Output[dict]:
    return pulumi.Output.from_input(secret_arn).apply(lambda arn: {
        "Sid": "ReadOwnSecret", "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        "Resource": arn,
    })


# The prober's sms alert channel publishes to phone numbers, which have no ARN: Resource must
# be "*". NotResource over every SNS ARN keeps the grant to phone numbers only (no topics).
SEND_SMS_STATEMENT = {
    "Sid": "SendSmsAlerts", "Effect": "Allow", "Action": "sns:Publish",
    "NotResource": "arn:aws:sns:*:*:*",
}


METADATA_OPTIONS = aws.ec2.InstanceMetadataOptionsArgs(
    http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1,
    instance_metadata_tags="disabled")


def root_volume(size_gb: int, volume_tags: dict[str, str]) -> aws.ec2.InstanceRootBlockDeviceArgs:
    """Tagged here, not with the instance's volume_tags: those also apply to attached EBS
    volumes, so they would fight the data volume's own tags (the ones AWS Backup selects by)
    on every update."""
    return aws.ec2.InstanceRootBlockDeviceArgs(
        volume_type="gp3", volume_size=size_gb, encrypted=True, delete_on_termination=True,
        tags=volume_tags)


def spot_options(max_price: str | None) -> aws.ec2.InstanceInstanceMarketOptionsArgs:
    """A persistent spot request that stops (not terminates) on interruption: the instance and
    its EBS volumes come back when capacity returns."""
    return aws.ec2.InstanceInstanceMarketOptionsArgs(
        market_type="spot",
        spot_options=aws.ec2.InstanceInstanceMarketOptionsSpotOptionsArgs(
            spot_instance_type="persistent", instance_interruption_behavior="stop",
            max_price=max_price))
