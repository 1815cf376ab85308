"""Guardrail policies: each rule alone, then all of them over both recorded stacks."""

import dataclasses

import pytest

from infra.policies import rules
from infra.policies.rules import ResourceRecord, evaluate, to_policy_resources


def _records(run):
    return [ResourceRecord(r.typ, r.name, r.urn, r.state, r.protect, r.dependencies)
            for r in run.records if r.custom]


def _check(resource_type, props, name="r", stack="prod", protect=False, extra=()):
    urn = f"urn:pulumi:{stack}::lighthouse::{resource_type}::{name}"
    recs = [ResourceRecord(resource_type, name, urn, props, protect), *extra]
    return evaluate(to_policy_resources(recs))


def _names(violations):
    return sorted({v.policy for v in violations})


def test_recorded_stacks_pass_every_policy(run):
    assert evaluate(to_policy_resources(_records(run))) == []


def test_policies_actually_inspect_the_recorded_stack(prod):
    """Break the recorded prod stack in four ways; each break is caught by its policy."""
    recs = _records(prod)

    def mutate(typ, name, **props):
        out = []
        for r in recs:
            if r.resource_type == typ and r.name == name:
                r = dataclasses.replace(r, props={**r.props, **props})
            out.append(r)
        return out

    vol = "aws:ebs/volume:Volume"
    assert _names(evaluate(to_policy_resources(mutate(vol, "data", encrypted=False)))) == [
        "ebs-volume-encrypted"]
    assert _names(evaluate(to_policy_resources(mutate(vol, "data", tags={})))) == [
        "volumes-backed-up"]
    assert _names(evaluate(to_policy_resources(mutate(
        "aws:ec2/instance:Instance", "db", metadataOptions={"httpTokens": "optional"})))) == [
        "instance-imdsv2"]
    unprotected = [dataclasses.replace(r, protect=False) for r in recs]
    found = evaluate(to_policy_resources(unprotected))
    assert _names(found) == ["prod-deletion-protection"]
    assert len(found) == 4  # volume, vault, bucket, secret
    # The same unprotected resources are fine in dev (the policy keys on the URN's stack).
    dev_like = [dataclasses.replace(r, urn=r.urn.replace(":prod::", ":dev::"))
                for r in unprotected]
    assert evaluate(to_policy_resources(dev_like)) == []


@pytest.mark.parametrize("props,bad", [
    ({"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}, True),
    ({"ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrIpv6": "::/0"}, True),
    ({"ipProtocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrIpv4": "0.0.0.0/0"}, True),
    ({"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"}, True),
    ({"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0"}, False),
    ({"ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrIpv4": "10.0.0.0/8"}, False),
    ({"ipProtocol": "udp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}, False),
])
def test_world_open_admin_ports(props, bad):
    found = _check(rules.SG_INGRESS, props)
    assert _names(found) == (["no-world-open-admin-ports"] if bad else [])


def test_inline_security_group_and_legacy_rule_are_checked_too():
    inline = {"ingress": [{"protocol": "tcp", "fromPort": 20, "toPort": 25,
                           "cidrBlocks": ["0.0.0.0/0"]}]}
    assert _names(_check(rules.SG, inline)) == ["no-world-open-admin-ports"]
    legacy = {"type": "ingress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432,
              "cidrBlocks": ["0.0.0.0/0"]}
    assert _names(_check(rules.SG_RULE, legacy)) == ["no-world-open-admin-ports"]
    egress = {**legacy, "type": "egress"}
    assert _check(rules.SG_RULE, egress) == []


def test_instance_root_volume_must_be_encrypted():
    props = {"rootBlockDevice": {"encrypted": False}, "metadataOptions": {"httpTokens": "required"}}
    assert _names(_check(rules.INSTANCE, props, stack="dev")) == ["instance-disks-encrypted"]


def test_bucket_without_encryption_or_public_block_is_reported():
    found = _check(rules.BUCKET, {"bucket": "b1"}, stack="dev")
    assert _names(found) == ["buckets-encrypted-private"]
    assert len(found) == 2
    urn = "urn:pulumi:dev::lighthouse::{}::x"
    sse = ResourceRecord(rules.BUCKET_SSE, "sse", urn.format("sse"), {"bucket": "b1", "rules": [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]})
    pab = ResourceRecord(rules.BUCKET_PAB, "pab", urn.format("pab"), {
        "bucket": "b1", "blockPublicAcls": True, "blockPublicPolicy": True,
        "ignorePublicAcls": True, "restrictPublicBuckets": True})
    assert _check(rules.BUCKET, {"bucket": "b1"}, stack="dev", extra=(sse, pab)) == []


def test_stack_name_is_read_from_the_urn():
    assert rules.stack_of("urn:pulumi:prod::lighthouse::aws:ebs/volume:Volume::data") == "prod"


def test_policy_pack_module_is_separate():
    """`rules` must never construct a PolicyPack (that starts a gRPC server and blocks)."""
    import inspect

    source = inspect.getsource(rules)
    assert "PolicyPack(" not in source
    assert {p.name for p in rules.ALL_POLICIES} == {
        "ebs-volume-encrypted", "instance-disks-encrypted", "instance-imdsv2",
        "no-world-open-admin-ports", "buckets-encrypted-private", "volumes-backed-up",
        "prod-deletion-protection", "db-members-in-distinct-zones",
        "rds-encrypted-private-backed-up", "prod-database-private"}


def test_a_public_ip_on_a_prod_db_host_is_refused(prod, dev):
    """The recorded prod stack gives its db host none; give it one (or leave it to the subnet)
    and the stack is refused; dev's db host has one and passes."""
    recs = _records(prod)
    for value in (True, None):
        broken = [dataclasses.replace(r, props={**r.props, "associatePublicIpAddress": value})
                  if r.resource_type == rules.INSTANCE and r.name == "db" else r for r in recs]
        found = evaluate(to_policy_resources(broken))
        assert [(v.policy, v.urn.rsplit("::", 1)[1]) for v in found] == [
            ("prod-database-private", "db")]
    # the probers' and the NAT's public addresses are theirs to have
    assert any(r.props.get("associatePublicIpAddress") is True for r in recs
               if r.resource_type == rules.INSTANCE)
    assert evaluate(to_policy_resources(_records(dev))) == []
    assert any(r.props.get("associatePublicIpAddress") is True for r in _records(dev)
               if r.resource_type == rules.INSTANCE and r.props["tags"]["role"] == "db")
    # which stacks are held to it is the pack's config
    assert evaluate(to_policy_resources(broken), {"privateStacks": ["staging"]}) == []


def test_cluster_members_sharing_a_zone_are_refused(prod_ha):
    recs = _records(prod_ha)
    assert evaluate(to_policy_resources(recs)) == []
    moved = [dataclasses.replace(r, props={**r.props, "availabilityZone": "us-east-1a"})
             if r.resource_type == "aws:ec2/instance:Instance" and r.name == "db-3" else r
             for r in recs]
    violations = evaluate(to_policy_resources(moved))
    assert _names(violations) == ["db-members-in-distinct-zones"]
    message = violations[0].message
    assert "share zone us-east-1a" in message and {"db", "db-3"} <= set(
        message.removeprefix("Database members ").split(" share")[0].split(" and "))


def test_rds_must_be_encrypted_private_backed_up_and_protected_in_prod(prod_rds):
    recs = _records(prod_rds)
    assert evaluate(to_policy_resources(recs)) == []

    def with_rds(**props):
        return [dataclasses.replace(r, props={**r.props, **props})
                if r.resource_type == "aws:rds/instance:Instance" else r for r in recs]

    for props, policy, words in (
            ({"storageEncrypted": False}, "rds-encrypted-private-backed-up", "encrypted"),
            ({"publiclyAccessible": True}, "rds-encrypted-private-backed-up", "publicly"),
            ({"backupRetentionPeriod": 3}, "rds-encrypted-private-backed-up", "at least 7"),
            ({"deletionProtection": False}, "prod-deletion-protection", "final snapshot"),
            ({"skipFinalSnapshot": True}, "prod-deletion-protection", "final snapshot")):
        violations = evaluate(to_policy_resources(with_rds(**props)))
        assert _names(violations) == [policy], props
        assert words in violations[0].message, props
    unprotected = [dataclasses.replace(r, protect=False)
                   if r.resource_type == "aws:rds/instance:Instance" else r for r in recs]
    assert _names(evaluate(to_policy_resources(unprotected))) == ["prod-deletion-protection"]
