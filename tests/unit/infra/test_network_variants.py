"""Network variants beyond the committed stacks: an existing VPC, and everything private behind
a NAT gateway with interface endpoints (built once per module under mocks)."""

import dataclasses
import warnings

import pytest

from infra import cost
from infra.config import NetworkConfig, load_stack_file, repo_stack_file

INSTANCE = "aws:ec2/instance:Instance"
COPY_VAULT = "arn:aws:backup:us-west-2:123456789012:backup-vault:lighthouse-dr"


def _run(network: NetworkConfig, **changes):
    from tests.unit.infra.mocks import run_stack

    cfg = dataclasses.replace(load_stack_file(repo_stack_file("prod")), network=network)
    for section, values in changes.items():
        cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section),
                                                                        **values)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return run_stack(cfg)


@pytest.fixture(scope="module")
def existing():
    return _run(NetworkConfig(vpc_id="vpc-0abc", subnet_ids=("subnet-0def",),
                              private_database=True),
                database={"os": "ubuntu-24.04"}, backup={"copy_to_vault_arn": COPY_VAULT})


@pytest.fixture(scope="module")
def private():
    return _run(NetworkConfig(vpc_cidr="10.50.0.0/16", availability_zone="us-east-1b",
                              public_subnet=False, nat="gateway",
                              interface_endpoints=("ssm", "ssmmessages", "ec2messages")))


def test_existing_vpc_creates_no_network_and_uses_the_subnet_az(existing):
    assert existing.of_type("aws:ec2/vpc:Vpc") == []
    assert existing.of_type("aws:ec2/subnet:Subnet") == []
    db = existing.one("aws:ec2/instance:Instance", "db")
    vol = existing.one("aws:ebs/volume:Volume", "data")
    assert db.inputs["subnetId"] == "subnet-0def"
    # privateDatabase in a VPC we did not make: no public IPv4, and no NAT of ours
    assert db.inputs["associatePublicIpAddress"] is False
    assert existing.of_type("aws:ec2/natGateway:NatGateway") == []
    assert sorted(i.name for i in existing.of_type(INSTANCE)) == ["db", "prober-1"]
    # The mock's getSubnet answers us-east-1c: instance and volume follow the subnet's AZ.
    assert db.inputs["availabilityZone"] == vol.inputs["availabilityZone"] == "us-east-1c"
    for sg in existing.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert sg.inputs["vpcId"] == "vpc-0abc"


def test_private_subnet_uses_interface_endpoints_a_nat_gateway_and_no_host_ip(private):
    db = private.one("aws:ec2/instance:Instance", "db")
    assert db.inputs["associatePublicIpAddress"] is False
    assert db.inputs["subnetId"] == private.one("aws:ec2/subnet:Subnet", "private").id
    assert db.inputs["availabilityZone"] == "us-east-1b"
    endpoints = {e.inputs["serviceName"]: e.inputs
                 for e in private.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert set(endpoints) == {f"com.amazonaws.us-east-1.{s}"
                              for s in ("s3", "ssm", "ssmmessages", "ec2messages")}
    ssm = endpoints["com.amazonaws.us-east-1.ssm"]
    assert ssm["vpcEndpointType"] == "Interface" and ssm["privateDnsEnabled"] is True
    https = private.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                        "endpoints-https")
    assert (https.inputs["fromPort"], https.inputs["cidrIpv4"]) == (443, "10.50.0.0/16")
    # the probers too are private: both reach the world through the NAT gateway
    prober = private.one("aws:ec2/instance:Instance", "prober-1")
    assert prober.inputs["associatePublicIpAddress"] is False
    assert prober.inputs["subnetId"] == db.inputs["subnetId"]
    eip = private.one("aws:ec2/eip:Eip", "nat")
    gw = private.one("aws:ec2/natGateway:NatGateway", "nat")
    assert gw.inputs["allocationId"] == eip.id
    assert gw.inputs["subnetId"] == private.one("aws:ec2/subnet:Subnet", "public").id
    route = private.one("aws:ec2/route:Route", "private-default")
    assert (route.inputs["natGatewayId"], route.inputs["routeTableId"]) == (
        gw.id, private.one("aws:ec2/routeTable:RouteTable", "private").id)
    assert sorted(i.name for i in private.of_type(INSTANCE)) == ["db", "prober-1"]
    est = cost.estimate(private.cfg)
    assert str(est.item("vpc interface endpoints").monthly) == "21.90"  # 3 x $7.30
    assert str(est.item("nat gateway").monthly) == "32.85"  # 730 h x $0.045
    assert str(est.item("nat gateway data").monthly) == "0.23"  # 5 GB x $0.045
    assert est.item("public ipv4").quantity == 730  # the gateway's EIP, nobody else's


def test_variants_pass_the_guardrails(existing, private):
    from infra.policies.rules import ResourceRecord, evaluate, to_policy_resources

    for run in (existing, private):
        records = [ResourceRecord(r.typ, r.name, r.urn, r.state, r.protect, r.dependencies)
                   for r in run.records if r.custom]
        assert evaluate(to_policy_resources(records)) == []


def test_ubuntu_ami_lookup_and_user(existing):
    calls = [a for fn, a in existing.calls if fn == "aws:ec2/getAmi:getAmi"]
    assert {tuple(c["owners"]) for c in calls} == {("099720109477",)}
    names = {f["values"][0] for c in calls for f in c["filters"] if f["name"] == "name"}
    assert names == {"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"}
    assert "ansible_user: ubuntu" in existing.outputs["ansible_inventory"]
    assert "amazon-ssm-agent" not in existing.one("aws:ec2/instance:Instance", "db").inputs[
        "userData"]  # Ubuntu images ship the agent


def test_cross_region_copy_of_daily_recovery_points(existing):
    rules = {r["ruleName"]: r for r in existing.one("aws:backup/plan:Plan").inputs["rules"]}
    assert rules["daily"]["copyActions"] == [{"destinationVaultArn": COPY_VAULT,
                                              "lifecycle": {"deleteAfter": 30}}]
    assert "copyActions" not in rules["weekly"]
    # Two chains (daily + weekly), doubled by the copy: 100 GB x 0.10 x 4.
    assert str(cost.estimate(existing.cfg).item("snapshots").quantity) == "40.0"


def _cluster(network: NetworkConfig):
    return _run(network, database={"ha": "patroni", "members": 3})


def test_a_cluster_in_an_existing_vpc_puts_each_member_in_its_subnet():
    run = _cluster(NetworkConfig(vpc_id="vpc-0abc",
                                 subnet_ids=("subnet-0a", "subnet-0b", "subnet-0c")))
    assert run.of_type("aws:ec2/subnet:Subnet") == []
    dbs = sorted((i for i in run.of_type("aws:ec2/instance:Instance")
                  if i.inputs["tags"]["role"] == "db"), key=lambda i: i.inputs["tags"]["host"])
    assert [(i.inputs["subnetId"], i.inputs["availabilityZone"]) for i in dbs] == [
        ("subnet-0a", "us-east-1a"), ("subnet-0b", "us-east-1b"), ("subnet-0c", "us-east-1c")]
    # the probers stay with db-1
    prober = run.one("aws:ec2/instance:Instance", "prober-1")
    assert prober.inputs["subnetId"] == "subnet-0a"
    assert run.outputs["db_availability_zones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_a_private_cluster_reaches_the_endpoints_from_every_zone():
    run = _cluster(NetworkConfig(vpc_cidr="10.50.0.0/16", public_subnet=False, nat="instance",
                                 availability_zones=("us-east-1a", "us-east-1b", "us-east-1d"),
                                 interface_endpoints=("ssm", "ssmmessages", "ec2messages")))
    subnets = {s.name: s for s in run.of_type("aws:ec2/subnet:Subnet")}
    assert {n: s.inputs["cidrBlock"] for n, s in subnets.items()} == {
        "public": "10.50.0.0/24", "private": "10.50.1.0/24",
        "public-2": "10.50.2.0/24", "private-2": "10.50.3.0/24",
        "public-3": "10.50.4.0/24", "private-3": "10.50.5.0/24"}
    private = [subnets[n].id for n in ("private", "private-2", "private-3")]
    dbs = sorted((i for i in run.of_type("aws:ec2/instance:Instance")
                  if i.inputs["tags"]["role"] == "db"), key=lambda i: i.inputs["tags"]["host"])
    assert [i.inputs["subnetId"] for i in dbs] == private
    assert all(i.inputs["associatePublicIpAddress"] is False for i in dbs)
    assert [i.inputs["availabilityZone"] for i in dbs] == ["us-east-1a", "us-east-1b",
                                                           "us-east-1d"]
    for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
        if e.inputs["vpcEndpointType"] == "Interface":
            assert e.inputs["subnetIds"] == private
    assert run.cfg.public_ip_count == 1  # the NAT instance's
    assert len(run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")) == 6
    # one NAT (db-1's zone) for every zone: the private route table is shared
    nat = run.one("aws:ec2/instance:Instance", "nat")
    assert nat.inputs["subnetId"] == subnets["public"].id
    assert run.one("aws:ec2/route:Route", "private-default").inputs[
        "networkInterfaceId"] == nat.state["primaryNetworkInterfaceId"]
    # private probers check any port through it; nothing else reaches it
    nat_sg = run.one("aws:ec2/securityGroup:SecurityGroup", "nat")
    ingress = [r.inputs for r in run.of_type(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == nat_sg.id]
    assert [(r["ipProtocol"], r["fromPort"], r["toPort"], r["cidrIpv4"]) for r in ingress] == [
        ("tcp", 1, 65535, "10.50.0.0/16")]
