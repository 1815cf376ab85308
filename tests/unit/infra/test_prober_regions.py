"""Probers in other regions (probers.regions): a provider, VPC and peering per region, the
database reached over the peering by each remote prober's address only, the inventory's fleet
locations, and their cost. prod-regions: prod plus eu-west-1 (1) and ap-southeast-2 (2)."""

from __future__ import annotations

import json

import pytest
import yaml

from infra import cost
from infra.config import ConfigError
from infra.policies.rules import evaluate, to_policy_resources
from tests.unit.infra.conftest import PROBER_REGIONS, prod_with

INSTANCE = "aws:ec2/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
PEERING = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection"
ACCEPTER = "aws:ec2/vpcPeeringConnectionAccepter:VpcPeeringConnectionAccepter"


def providers(run) -> dict[str, str]:
    """provider reference ("<urn>::<id>") -> its region."""
    return {f"{p.urn}::{p.id}": p.inputs["region"] for p in run.of_type("pulumi:providers:aws")}


def region_of(run, record) -> str:
    """The region a resource is created in: its explicit provider's, else the stack's."""
    return providers(run).get(record.provider, run.cfg.region)


def test_each_region_has_its_provider_vpc_and_peering_to_the_stacks_vpc(prod_regions):
    run = prod_regions
    assert sorted(providers(run).values()) == ["ap-southeast-2", "eu-west-1"]
    main_vpc = run.one("aws:ec2/vpc:Vpc", "vpc")
    for spec in PROBER_REGIONS:
        region = spec["region"]
        vpc = run.one("aws:ec2/vpc:Vpc", f"{region}-vpc")
        assert vpc.inputs["cidrBlock"] == spec["vpcCidr"] and region_of(run, vpc) == region
        peering = run.one(PEERING, f"{region}-peering")
        assert region_of(run, peering) == region  # requested from there ...
        assert peering.inputs["vpcId"] == vpc.id
        assert peering.inputs["peerVpcId"] == main_vpc.id
        assert peering.inputs["peerRegion"] == run.cfg.region
        accepter = run.one(ACCEPTER, f"{region}-peering-accept")
        assert region_of(run, accepter) == run.cfg.region  # ... accepted in the stack's
        assert accepter.inputs["autoAccept"] is True
        assert accepter.inputs["vpcPeeringConnectionId"] == peering.id


def test_routes_go_both_ways_over_the_peering_and_nowhere_wider(prod_regions):
    run = prod_regions
    main_tables = {run.one("aws:ec2/routeTable:RouteTable", n).id for n in ("public", "private")}
    for spec in PROBER_REGIONS:
        region, peering = spec["region"], run.one(PEERING, f"{spec['region']}-peering")
        back = [r for r in run.of_type("aws:ec2/route:Route")
                if r.inputs["destinationCidrBlock"] == spec["vpcCidr"]]
        assert {r.inputs["routeTableId"] for r in back} == main_tables
        assert {r.inputs["vpcPeeringConnectionId"] for r in back} == {peering.id}
        table = run.one("aws:ec2/routeTable:RouteTable", f"{region}-public")
        routes = {(r["cidrBlock"], "peering" if r.get("vpcPeeringConnectionId") else "igw")
                  for r in table.inputs["routes"]}
        assert routes == {("0.0.0.0/0", "igw"), (run.cfg.network.vpc_cidr, "peering")}


def test_the_database_admits_each_remote_prober_by_its_address_only(prod_regions):
    run = prod_regions
    db_sg = run.one("aws:ec2/securityGroup:SecurityGroup", "db")
    remote = [i for i in run.of_type(INSTANCE)
              if i.inputs["tags"].get("location", run.cfg.region) != run.cfg.region]
    assert len(remote) == 3
    from_remote = {r.inputs["cidrIpv4"] for r in run.of_type(INGRESS)
                   if r.inputs["securityGroupId"] == db_sg.id
                   and r.name.startswith("db-postgres-from-prober-")}
    assert from_remote == {f"{i.state['privateIp']}/32" for i in remote}
    for spec in PROBER_REGIONS:  # each from its own region's VPC range
        ips = [i.state["privateIp"] for i in remote if i.inputs["tags"]["location"]
               == spec["region"]]
        assert len(ips) == spec.get("count", 1)
        assert all(ip.startswith(spec["vpcCidr"].split(".0.0/")[0] + ".") for ip in ips)


def test_remote_probers_are_tagged_with_their_location_in_their_region(prod_regions):
    run = prod_regions
    profile = run.one("aws:iam/instanceProfile:InstanceProfile", "prober")
    expected = {"prober-eu-west-1-1": "eu-west-1", "prober-ap-southeast-2-1": "ap-southeast-2",
                "prober-ap-southeast-2-2": "ap-southeast-2"}
    for name, region in expected.items():
        inst = run.one(INSTANCE, name)
        assert region_of(run, inst) == region
        assert inst.inputs["tags"]["location"] == region
        assert inst.inputs["tags"]["role"] == "prober"
        assert inst.inputs["associatePublicIpAddress"] is True  # straight to their targets
        assert inst.inputs["iamInstanceProfile"] == profile.state["name"]
        assert f"amazon-ssm-{region}" in inst.inputs["userData"]  # the regional SSM agent
    assert run.outputs["prober_locations"] == {"prober-1": "us-east-1", **expected}
    assert len(run.outputs["prober_private_ips"]) == 4


def test_the_inventory_names_each_remote_probers_location_and_ssm_region(prod_regions):
    doc = yaml.safe_load(prod_regions.outputs["ansible_inventory"])["all"]
    probers = doc["children"]["prober"]["hosts"]
    assert "lighthouse_location" not in probers["prober-1"]  # the stack's, from all.vars
    assert doc["vars"]["lighthouse_location"] == "us-east-1"
    for name, region in prod_regions.outputs["prober_locations"].items():
        if name == "prober-1":
            continue
        assert probers[name]["lighthouse_location"] == region
        assert probers[name]["ansible_aws_ssm_region"] == region
    hba = doc["children"]["db"]["hosts"]["db-1"]["timescaledb_hba_allowed_cidrs"]
    assert hba == [f"{ip}/32" for ip in prod_regions.outputs["prober_private_ips"]]


def test_a_remote_probers_agent_publishes_into_the_stacks_region(prod_regions, tmp_path):
    """Alarms, dashboard and log group live in the stack's region: the agent of a prober in
    eu-west-1 sends there, not to its own region's CloudWatch."""
    from tests.unit.infra.test_aws_contract import AGENT_TEMPLATE, hostvars, render, resolve

    inventory = resolve(prod_regions, tmp_path)
    for host in ("prober-1", "prober-eu-west-1-1"):
        agent = json.loads(render(AGENT_TEMPLATE, hostvars(inventory, host, "cloudwatch_agent")))
        assert agent["agent"]["region"] == "us-east-1"


def test_the_stack_with_remote_probers_passes_every_policy(prod_regions):
    from tests.unit.infra.test_policies import _records

    assert evaluate(to_policy_resources(_records(prod_regions))) == []


def test_the_cost_counts_the_remote_probers_their_addresses_and_the_traffic(prod, prod_regions):
    base, more = cost.estimate(prod.cfg), cost.estimate(prod_regions.cfg)
    lines = {i.name: i for i in more.items}
    remote = lines["remote probers t4g.micro"]
    assert remote.quantity == 730 * 3
    transfer = lines["inter-region transfer"]
    assert transfer.quantity == 3 * 3.0  # three remote probers, 3 GB each (default)
    assert prod_regions.cfg.public_ip_count == prod.cfg.public_ip_count + 3
    # 3 x (t4g.micro + 8 GB root + public IPv4 + agent metrics) + transfer
    assert 30 < more.monthly - base.monthly < 40


@pytest.mark.parametrize(("regions", "message"), [
    ([{"region": "us-east-1", "vpcCidr": "10.42.0.0/16"}], "stack's own region"),
    ([{"region": "eu-west-1", "vpcCidr": "10.42.0.0/16"},
      {"region": "eu-west-1", "vpcCidr": "10.43.0.0/16"}], "listed twice"),
    ([{"region": "eu-west-1", "vpcCidr": "10.41.0.0/16"}], "overlaps us-east-1"),
    ([{"region": "eu-west-1"}], "vpcCidr: required"),
    ([{"region": "eu-west-1", "vpcCidr": "10.42.0.0/16", "size": 2}], "unknown key(s) size"),
    ([{"region": "Europe", "vpcCidr": "10.42.0.0/16"}], "region"),
    ({"region": "eu-west-1"}, "expected a list"),
])
def test_bad_prober_regions_name_the_key(regions, message):
    with pytest.raises(ConfigError, match="probers.regions") as err:
        prod_with("bad regions", None, probers={"regions": regions})
    assert message in str(err.value)


def test_prober_regions_need_architecture_b_and_the_stacks_own_vpc():
    one = [{"region": "eu-west-1", "vpcCidr": "10.42.0.0/16"}]
    with pytest.raises(ConfigError, match="probers.regions: probers in other regions need "
                                          "architecture B"):
        prod_with("A", None, probers={"architecture": "A", "regions": one})
    with pytest.raises(ConfigError, match="needs the stack's own VPC"):
        prod_with("existing VPC", None, probers={"regions": one},
                  network={"vpcId": "vpc-0abc", "subnetIds": ["subnet-0a"],
                           "privateDatabase": False, "nat": "none"})
