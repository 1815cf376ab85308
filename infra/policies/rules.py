"""Guardrail policies as plain validation functions wrapped in CrossGuard policy objects.

Each ``check_*`` function has CrossGuard's shape ``(args, report_violation)`` and can be called
directly. :func:`evaluate` runs every policy over a list of ``PolicyResource`` objects (what the
tests build from resources recorded by Pulumi mocks), returning the violations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

VOLUME = "aws:ebs/volume:Volume"
INSTANCE = "aws:ec2/instance:Instance"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_SSE = ("aws:s3/bucketServerSideEncryptionConfiguration:"
              "BucketServerSideEncryptionConfiguration")
BUCKET_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
BACKUP_SELECTION = "aws:backup/selection:Selection"
BACKUP_VAULT = "aws:backup/vault:Vault"
SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 - a type token
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_MIN_BACKUP_DAYS = 7

ADMIN_PORTS = (22, 5432)
WORLD = ("0.0.0.0/0", "::/0")
PROTECTED_TYPES = (VOLUME, BACKUP_VAULT, BUCKET, SECRET, RDS_INSTANCE)
DEFAULT_PROTECTED_STACKS = ("prod",)
DEFAULT_PRIVATE_STACKS = ("prod",)


# --- resource policies ---------------------------------------------------------------------


def check_volume_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == VOLUME and args.props.get("encrypted") is not True:
        report("EBS volumes must be encrypted (encrypted: true).", None)


def check_instance_disks_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != INSTANCE:
        return
    root = args.props.get("rootBlockDevice") or {}
    if root.get("encrypted") is not True:
        report("Instance root volume must be encrypted (rootBlockDevice.encrypted: true).", None)
    for dev in args.props.get("ebsBlockDevices") or []:
        if dev.get("encrypted") is not True:
            report(f"Instance EBS device {dev.get('deviceName')} must be encrypted.", None)


def check_instance_imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != INSTANCE:
        return
    meta = args.props.get("metadataOptions") or {}
    if meta.get("httpTokens") != "required":
        report("Instances must require IMDSv2 (metadataOptions.httpTokens: required).", None)


def check_rds_instance(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """RDS: storage encrypted, never publicly accessible, automated backups kept >= 7 days."""
    if args.resource_type != RDS_INSTANCE:
        return
    props = args.props
    if props.get("storageEncrypted") is not True:
        report("RDS instance storage must be encrypted (storageEncrypted).", None)
    if props.get("publiclyAccessible") is not False:
        report("RDS instance must not be publicly accessible.", None)
    days = props.get("backupRetentionPeriod")
    if not isinstance(days, int | float) or days < RDS_MIN_BACKUP_DAYS:
        report(f"RDS automated backups must be kept at least {RDS_MIN_BACKUP_DAYS} days "
               f"(backupRetentionPeriod={days}).", None)


def _opens_admin_port(protocol: Any, from_port: Any, to_port: Any) -> list[int]:
    if str(protocol) in ("-1", "all"):
        return list(ADMIN_PORTS)
    if str(protocol) not in ("tcp", "6"):
        return []
    lo = int(from_port if from_port is not None else 0)
    hi = int(to_port if to_port is not None else 65535)
    return [p for p in ADMIN_PORTS if lo <= p <= hi]


def _ingress_rules(props: Mapping[str, Any], resource_type: str) -> Iterable[tuple]:
    """(cidrs, protocol, from_port, to_port) of every ingress rule a resource declares."""
    if resource_type == SG_INGRESS:
        yield ([props.get("cidrIpv4"), props.get("cidrIpv6")], props.get("ipProtocol"),
               props.get("fromPort"), props.get("toPort"))
        return
    if resource_type == SG_RULE and props.get("type") == "ingress":
        rules = [props]
    elif resource_type == SG:
        rules = list(props.get("ingress") or [])
    else:
        return
    for r in rules:
        yield ([*(r.get("cidrBlocks") or []), *(r.get("ipv6CidrBlocks") or [])],
               r.get("protocol"), r.get("fromPort"), r.get("toPort"))


def check_no_world_admin_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No ingress from 0.0.0.0/0 or ::/0 that covers SSH (22) or PostgreSQL (5432)."""
    for cidrs, protocol, lo, hi in _ingress_rules(args.props, args.resource_type):
        world = [c for c in cidrs if c in WORLD]
        ports = _opens_admin_port(protocol, lo, hi) if world else []
        if ports:
            report(f"Ingress {protocol}:{lo}-{hi} from {', '.join(world)} opens port(s) "
                   f"{', '.join(map(str, ports))} to the internet.", None)


# --- stack policies ------------------------------------------------------------------------


def _refers_to(res: PolicyResource, prop: str, target: PolicyResource) -> bool:
    deps = res.property_dependencies.get(prop) or []
    if any(d.urn == target.urn for d in deps):
        return True
    value = res.props.get(prop)
    return value is not None and value in (target.props.get("bucket"), target.props.get("id"))


def check_buckets_encrypted_private(args: StackValidationArgs, report: ReportViolation) -> None:
    buckets = [r for r in args.resources if r.resource_type == BUCKET]
    for bucket in buckets:
        sse = [r for r in args.resources
               if r.resource_type == BUCKET_SSE and _refers_to(r, "bucket", bucket)]
        if not any(rule.get("applyServerSideEncryptionByDefault", {}).get("sseAlgorithm")
                   for r in sse for rule in r.props.get("rules") or []):
            report(f"Bucket {bucket.name} has no default server-side encryption.", bucket.urn)
        pab = [r for r in args.resources
               if r.resource_type == BUCKET_PAB and _refers_to(r, "bucket", bucket)]
        keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                "restrictPublicBuckets")
        if not any(all(r.props.get(k) is True for k in keys) for r in pab):
            report(f"Bucket {bucket.name} does not block all public access.", bucket.urn)


def check_volumes_backed_up(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every EBS volume must carry a tag that some AWS Backup selection selects."""
    selected = {(t.get("key"), t.get("value"))
                for r in args.resources if r.resource_type == BACKUP_SELECTION
                for t in r.props.get("selectionTags") or []
                if t.get("type") == "STRINGEQUALS"}
    for vol in (r for r in args.resources if r.resource_type == VOLUME):
        tags = vol.props.get("tags") or {}
        if not any(tags.get(k) == v for k, v in selected):
            report(f"Volume {vol.name} is not selected by any AWS Backup selection.", vol.urn)


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> ``<stack>``."""
    return urn.split("::")[0].split(":")[-1]


def check_prod_protection(args: StackValidationArgs, report: ReportViolation) -> None:
    """In protected stacks (config ``protectedStacks``, default prod), stateful resources are
    `protect`ed and the db instances carry API termination protection."""
    protected = tuple(args.get_config().get("protectedStacks", DEFAULT_PROTECTED_STACKS))
    for res in args.resources:
        if stack_of(res.urn) not in protected:
            continue
        if res.resource_type in PROTECTED_TYPES and not res.opts.protect:
            report(f"{res.resource_type} {res.name} must be protected in this stack.", res.urn)
        if (res.resource_type == INSTANCE and (res.props.get("tags") or {}).get("role") == "db"
                and res.props.get("disableApiTermination") is not True):
            report(f"Database instance {res.name} needs disableApiTermination.", res.urn)
        if res.resource_type == RDS_INSTANCE and (
                res.props.get("deletionProtection") is not True
                or res.props.get("skipFinalSnapshot") is not False):
            report(f"RDS instance {res.name} needs deletionProtection and a final snapshot.",
                   res.urn)


def check_prod_database_private(args: StackValidationArgs, report: ReportViolation) -> None:
    """In private-database stacks (config ``privateStacks``, default prod) no db host has a
    public IPv4. Unset is refused too: it defers to the subnet, which may map one on launch."""
    private = tuple(args.get_config().get("privateStacks", DEFAULT_PRIVATE_STACKS))
    for res in args.resources:
        if (res.resource_type == INSTANCE and stack_of(res.urn) in private
                and (res.props.get("tags") or {}).get("role") == "db"
                and res.props.get("associatePublicIpAddress") is not False):
            report(f"Database instance {res.name} must have no public IPv4 in this stack "
                   "(lighthouse:network.privateDatabase: true).", res.urn)


def check_members_apart(args: StackValidationArgs, report: ReportViolation) -> None:
    """A database cluster (more than one instance tagged role=db) has each member in its own
    availability zone: two in one zone lose the etcd quorum together with that zone."""
    members = [r for r in args.resources
               if r.resource_type == INSTANCE and (r.props.get("tags") or {}).get("role") == "db"]
    if len(members) < 2:
        return
    seen: dict[str, str] = {}
    for m in members:
        zone = str(m.props.get("availabilityZone"))
        if zone in seen:
            report(f"Database members {seen[zone]} and {m.name} share zone {zone}.", m.urn)
        seen.setdefault(zone, m.name)


RESOURCE_POLICIES = (
    ResourceValidationPolicy(name="ebs-volume-encrypted", validate=check_volume_encrypted,
                             description="EBS volumes are encrypted."),
    ResourceValidationPolicy(name="instance-disks-encrypted",
                             validate=check_instance_disks_encrypted,
                             description="Instance root and EBS block devices are encrypted."),
    ResourceValidationPolicy(name="instance-imdsv2", validate=check_instance_imdsv2,
                             description="Instances require IMDSv2 tokens."),
    ResourceValidationPolicy(name="rds-encrypted-private-backed-up",
                             validate=check_rds_instance,
                             description="RDS: encrypted, not public, backups kept >= 7 days."),
    ResourceValidationPolicy(name="no-world-open-admin-ports",
                             validate=check_no_world_admin_ports,
                             description="No ingress from the internet to port 22 or 5432."),
)
STACK_POLICIES = (
    StackValidationPolicy(name="buckets-encrypted-private",
                          validate=check_buckets_encrypted_private,
                          description="S3 buckets have default encryption and block public "
                                      "access."),
    StackValidationPolicy(name="volumes-backed-up", validate=check_volumes_backed_up,
                          description="Every EBS volume is selected by an AWS Backup plan."),
    StackValidationPolicy(name="db-members-in-distinct-zones", validate=check_members_apart,
                          description="Each database cluster member is in its own zone."),
    StackValidationPolicy(
        name="prod-deletion-protection", validate=check_prod_protection,
        description="Stateful resources are protected from deletion in prod.",
        config_schema=PolicyConfigSchema(properties={"protectedStacks": {
            "type": "array", "items": {"type": "string"},
            "default": list(DEFAULT_PROTECTED_STACKS)}})),
    StackValidationPolicy(
        name="prod-database-private", validate=check_prod_database_private,
        description="No database host has a public IPv4 in prod.",
        config_schema=PolicyConfigSchema(properties={"privateStacks": {
            "type": "array", "items": {"type": "string"},
            "default": list(DEFAULT_PRIVATE_STACKS)}})),
)
ALL_POLICIES = (*RESOURCE_POLICIES, *STACK_POLICIES)
for _policy in ALL_POLICIES:
    _policy.enforcement_level = EnforcementLevel.MANDATORY


# --- running the policies outside the engine -----------------------------------------------


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    urn: str | None


@dataclass(frozen=True)
class ResourceRecord:
    """What we know of a resource: enough to build a ``PolicyResource``."""

    resource_type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False
    dependencies: Mapping[str, Sequence[str]] = ()  # type: ignore[assignment]


def options(protect: bool = False, parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=protect, ignore_changes=[], delete_before_replace=None,
                                 aliases=[], custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
                                 additional_secret_outputs=[], parent=parent)


def to_policy_resources(records: Iterable[ResourceRecord]) -> list[PolicyResource]:
    records = list(records)
    by_urn = {r.urn: PolicyResource(r.resource_type, r.props, r.urn, r.name,
                                    options(r.protect), None, None, [], {}) for r in records}
    for r in records:
        res = by_urn[r.urn]
        for prop, urns in dict(r.dependencies or {}).items():
            res.property_dependencies[prop] = [by_urn[u] for u in urns if u in by_urn]
        res.dependencies = [d for deps in res.property_dependencies.values() for d in deps]
    return list(by_urn.values())


def evaluate(resources: Sequence[PolicyResource],
             config: Mapping[str, Any] | None = None) -> list[Violation]:
    """Run every policy (resource policies per resource, then stack policies)."""
    violations: list[Violation] = []
    for policy in RESOURCE_POLICIES:
        for res in resources:
            def report(message: str, urn: str | None = None, _p=policy, _r=res) -> None:
                violations.append(Violation(_p.name, message, urn or _r.urn))
            policy.validate(ResourceValidationArgs(res.resource_type, res.props, res.urn,
                                                   res.name, res.opts, None, config or {}),
                            report)
    for stack_policy in STACK_POLICIES:
        def report_stack(message: str, urn: str | None = None, _p=stack_policy) -> None:
            violations.append(Violation(_p.name, message, urn))
        stack_policy.validate(StackValidationArgs(list(resources), config or {}), report_stack)
    return violations
