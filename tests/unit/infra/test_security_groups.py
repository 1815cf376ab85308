"""Security groups: the exact rule sets, for both stacks (and prod as a Patroni cluster)."""

from infra.security import MEMBER_PORTS

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG = "aws:ec2/securityGroup:SecurityGroup"


def _rules(run, typ, sg_name):
    sg = run.one(SG, sg_name)
    out = set()
    for r in run.of_type(typ):
        if r.inputs["securityGroupId"] != sg.id:
            continue
        source = r.inputs.get("referencedSecurityGroupId") or r.inputs.get("cidrIpv4")
        if source == run.one(SG, "prober").id:
            source = "sg:prober"
        elif source == run.one(SG, "db").id:
            source = "sg:db"
        out.add((r.inputs["ipProtocol"], r.inputs.get("fromPort"), r.inputs.get("toPort"),
                 source))
    return out


def member_rules(run) -> set:
    """Architecture C: what the members open to each other (their own SG) and nothing else."""
    if run.cfg.database.ha == "none":
        return set()
    return {("tcp", port, port, "sg:db") for port in MEMBER_PORTS.values()}


def test_postgres_only_from_prober_sg_and_configured_cidrs(run):
    expected = {("tcp", 5432, 5432, "sg:prober")}
    expected |= {("tcp", 5432, 5432, c) for c in run.cfg.database.allowed_cidrs}
    assert _rules(run, INGRESS, "db") == expected | member_rules(run)
    if run.cfg.stack == "prod":
        assert ("tcp", 5432, 5432, "10.41.8.0/24") in expected


def test_probers_accept_nothing_inbound(run):
    assert _rules(run, INGRESS, "prober") == set()


def test_egress_is_http_https_for_db_and_open_for_probers(run):
    assert _rules(run, EGRESS, "db") == {("tcp", 443, 443, "0.0.0.0/0"),
                                          ("tcp", 80, 80, "0.0.0.0/0")} | member_rules(run)
    assert _rules(run, EGRESS, "prober") == {("-1", None, None, "0.0.0.0/0")}


def test_no_ssh_and_nothing_from_the_internet(run):
    for r in run.of_type(INGRESS):
        assert r.inputs.get("cidrIpv4") not in ("0.0.0.0/0",)
        assert r.inputs.get("cidrIpv6") is None
        assert not (r.inputs["fromPort"] <= 22 <= r.inputs["toPort"])
    for sg in run.of_type(SG):
        assert not sg.inputs.get("ingress"), "inline rules would bypass the per-rule resources"


def test_db_host_security_groups_follow_architecture(run):
    db_sgs = run.one("aws:ec2/instance:Instance", "db").inputs["vpcSecurityGroupIds"]
    if run.cfg.probers.architecture == "A":  # dev: prober co-located, needs the prober SG
        assert db_sgs == [run.one(SG, "db").id, run.one(SG, "prober").id]
    else:
        assert db_sgs == [run.one(SG, "db").id]
        for inst in run.of_type("aws:ec2/instance:Instance"):
            if inst.name.startswith("prober-"):
                assert inst.inputs["vpcSecurityGroupIds"] == [run.one(SG, "prober").id]
