"""The RDS migration target (seed option C2) in prod: what it is, who reaches it, what it costs,
and where its address goes (stack output, generated inventory)."""

import dataclasses

import yaml

from infra import cost
from infra.config import ConfigError, RdsConfig

RDS = "aws:rds/instance:Instance"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def test_only_a_stack_that_asks_has_one(run):
    assert bool(run.of_type(RDS)) == run.cfg.rds.enabled
    if not run.cfg.rds.enabled:
        assert run.outputs["rds_endpoint"] is None
        assert yaml.safe_load(run.outputs["ansible_inventory"])["all"]["vars"][
            "lighthouse_rds_host"] is None


def test_multi_az_encrypted_private_tls_only_and_backed_up(prod_rds):
    db = prod_rds.one(RDS, "rds")
    i = db.inputs
    assert (i["engine"], i["engineVersion"], i["instanceClass"]) == ("postgres", "17",
                                                                    "db.t4g.small")
    assert i["multiAz"] is True and i["storageEncrypted"] is True
    assert i["publiclyAccessible"] is False and i["storageType"] == "gp3"
    assert (i["allocatedStorage"], i["maxAllocatedStorage"]) == (20, 100)
    assert i["backupRetentionPeriod"] == 7 and i["copyTagsToSnapshot"] is True
    # prod protects its data: no deletion, a final snapshot, retained by Pulumi
    assert i["deletionProtection"] is True and i["skipFinalSnapshot"] is False
    assert i["finalSnapshotIdentifier"] == "lighthouse-prod-db-final"
    assert db.protect and db.retain_on_delete
    params = prod_rds.one("aws:rds/parameterGroup:ParameterGroup", "rds").inputs
    assert params["family"] == "postgres17"
    assert {p["name"]: p["value"] for p in params["parameters"]}["rds.force_ssl"] == "1"
    assert i["parameterGroupName"] == params["name"]


def test_the_password_is_the_stack_secrets_and_stays_secret(prod_rds):
    db = prod_rds.one(RDS, "rds")
    assert db.inputs["username"] == "lighthouse" and db.inputs["dbName"] == "lighthouse"
    assert db.inputs["password"] == prod_rds.outputs["db_password"]
    assert "password" in db.secret_inputs and "password" in db.additional_secret_outputs
    assert prod_rds.outputs["db_password"] not in prod_rds.outputs["ansible_inventory"]


def test_private_subnets_in_two_zones_and_5432_from_lighthouse_only(prod_rds):
    group = prod_rds.one("aws:rds/subnetGroup:SubnetGroup", "rds").inputs
    subnets = {s.id: s.inputs for s in prod_rds.of_type("aws:ec2/subnet:Subnet")}
    chosen = [subnets[sid] for sid in group["subnetIds"]]
    assert {s["availabilityZone"] for s in chosen} == {"us-east-1a", "us-east-1b"}
    assert all(s["cidrBlock"].endswith(".1.0/24") or s["cidrBlock"].endswith(".3.0/24")
               for s in chosen)  # the private /24 of each zone
    rds_sg = prod_rds.one(SG, "rds")
    assert prod_rds.one(RDS, "rds").inputs["vpcSecurityGroupIds"] == [rds_sg.id]
    rules = [r.inputs for r in prod_rds.of_type(INGRESS)
             if r.inputs["securityGroupId"] == rds_sg.id]
    sources = {r["referencedSecurityGroupId"] for r in rules}
    assert sources == {prod_rds.one(SG, "prober").id, prod_rds.one(SG, "db").id}
    assert all((r["fromPort"], r["toPort"]) == (5432, 5432) and "cidrIpv4" not in r
               for r in rules)


def test_endpoint_reaches_the_outputs_and_the_inventory(prod_rds):
    db = prod_rds.one(RDS, "rds")
    assert prod_rds.outputs["rds_endpoint"] == db.state["endpoint"]
    inventory = yaml.safe_load(prod_rds.outputs["ansible_inventory"])["all"]["vars"]
    assert inventory["lighthouse_rds_host"] == db.state["address"]
    assert prod_rds.outputs["rds_endpoint"].startswith(db.state["address"] + ":")


def test_cost_counts_the_instance_and_storage_twice_for_multi_az(prod_rds):
    est = cost.estimate(prod_rds.cfg)
    p = cost.load_prices()
    instance = est.item("rds db.t4g.small multi-az")
    assert instance.quantity == 2 * p.hours_per_month
    assert est.item("rds gp3").quantity == 40
    without = dataclasses.replace(prod_rds.cfg, rds=RdsConfig())
    assert est.monthly - cost.estimate(without).monthly == \
        instance.monthly + est.item("rds gp3").monthly


def test_rds_needs_two_zones_and_a_priced_class():
    from tests.unit.infra.test_config import _parse

    for sections, message in (
            ({"rds": {"enabled": True}}, "0 zone(s) for an RDS subnet group: name 2"),
            ({"rds": {"instanceClass": "db.r6g.large"}}, "lighthouse:rds.instanceClass"),
            ({"rds": {"allocatedStorageGb": 50, "maxAllocatedStorageGb": 40}},
             "below allocatedStorageGb (50)"),
            ({"rds": {"enabled": True}, "network": {
                "vpcId": "vpc-0abc", "subnetIds": ["subnet-0a"]}},
             "lighthouse:network.subnetIds: 2 zones needed (RDS subnet group)")):
        try:
            _parse(**sections)
        except ConfigError as exc:
            assert message in str(exc), (sections, str(exc))
        else:
            raise AssertionError(f"{sections} parsed")
