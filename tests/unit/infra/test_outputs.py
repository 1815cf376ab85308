"""Stack outputs, secrets handling, component parenting, and the thin __main__."""

import json
import runpy
from pathlib import Path

import yaml
from lighthouse_ops.deploy import s3 as sandbox_s3

from infra import cost
from infra.config import DUMPS_PREFIX
from infra.secrets import HA_SECRET_KEYS, SECRET_KEYS

ROOT = Path(__file__).resolve().parents[3]
EXPECTED_OUTPUTS = {
    "db_instance_id", "db_private_ip", "data_volume_id", "availability_zone",
    "prober_instance_ids", "prober_private_ips", "prober_locations", "backup_vault_name",
    "backup_role_arn", "backup_bucket",
    "sns_topic_arn", "alarm_names", "dashboard_url", "log_group_name", "ssm_session_command",
    "ansible_inventory", "db_secret_arn", "db_password", "estimated_monthly_cost_usd",
    "cost_breakdown", "db_instance_ids", "db_private_ips", "data_volume_ids",
    "db_availability_zones", "rds_endpoint",
}


def test_every_output_is_exported(run):
    assert set(run.outputs) == EXPECTED_OUTPUTS


def test_password_is_exported_only_as_a_secret(run):
    password = run.outputs["db_password"]
    assert run.secret_outputs == {"db_password"}
    for key, value in run.outputs.items():
        if key != "db_password":
            assert password not in json.dumps(value), key


def test_password_reaches_secrets_manager_as_a_secret_input(run):
    version = run.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert "secretString" in version.secret_inputs
    doc = json.loads(version.inputs["secretString"])
    cipher = run.one("random:index/randomPassword:RandomPassword", "backup-cipher-pass")
    ca_key = run.one("tls:index/privateKey:PrivateKey", "db-tls-ca-key")
    ca = run.one("tls:index/selfSignedCert:SelfSignedCert", "db-tls-ca")
    ha = {k: run.one("random:index/randomPassword:RandomPassword", k.replace("_", "-"))
          for k in (HA_SECRET_KEYS if run.cfg.database.ha == "patroni" else ())}
    assert tuple(doc) == SECRET_KEYS + tuple(ha)
    assert doc == {"username": "lighthouse", "password": run.outputs["db_password"],
                   "dbname": "lighthouse", "port": 5432,
                   "backup_cipher_pass": cipher.state["result"],
                   "tls_ca_cert": ca.state["certPem"], "tls_ca_key": ca_key.state["privateKeyPem"],
                   **{k: pw.state["result"] for k, pw in ha.items()}}
    # a cluster's own passwords: distinct, long, secret in state
    assert len({pw.state["result"] for pw in ha.values()}) == len(ha)
    assert all(pw.inputs["length"] == 32 and "result" in pw.additional_secret_outputs
               for pw in ha.values())
    # the CA: a P-256 key kept secret in state, a CA certificate signed by it
    assert (ca_key.inputs["algorithm"], ca_key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")
    assert "privateKeyPem" in ca_key.additional_secret_outputs
    assert ca.inputs["isCaCertificate"] is True and ca.inputs["setSubjectKeyId"] is True
    assert ca.inputs["privateKeyPem"] == ca_key.state["privateKeyPem"]
    assert ca_key.protect == ca.protect == run.cfg.deletion_protection
    assert version.inputs["secretId"] == run.one("aws:secretsmanager/secret:Secret").id
    pw = run.one("random:index/randomPassword:RandomPassword", "db-password")
    assert pw.inputs["length"] == 32 and cipher.inputs["length"] == 64
    assert "result" in pw.additional_secret_outputs
    assert "result" in cipher.additional_secret_outputs
    # losing the passphrase loses the backups: protected like the data where the stack asks
    assert cipher.protect == run.cfg.deletion_protection
    secret = run.one("aws:secretsmanager/secret:Secret")
    assert secret.inputs["name"] == f"lighthouse/{run.cfg.stack}/db"
    assert run.outputs["db_secret_arn"] == secret.state["arn"]


def test_cost_output_is_the_cost_model_estimate(run):
    expected = cost.estimate(run.cfg)
    assert run.outputs["estimated_monthly_cost_usd"] == float(expected.monthly)
    ha = run.cfg.database.ha == "patroni"
    prod = 102.13 if ha else 103.24 if run.cfg.rds.enabled else 51.92
    assert run.outputs["estimated_monthly_cost_usd"] == {"dev": 11.93, "prod": prod}[
        run.cfg.stack]
    assert run.outputs["cost_breakdown"] == expected.format()
    # The model counts exactly the alarms and instances the program creates.
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    if alarms:
        assert expected.item("cloudwatch alarms").quantity == len(alarms)
    instances = run.of_type("aws:ec2/instance:Instance")
    hosts = [i for i in instances if i.inputs["tags"]["role"] != "nat"]
    assert expected.item("root volumes gp3").quantity == 8 * len(hosts)
    # every public IPv4 is billed: the hosts given one, and the NAT's (an instance's or an EIP)
    public = [i for i in instances if i.inputs["associatePublicIpAddress"]]
    eips = run.of_type("aws:ec2/eip:Eip")
    assert expected.item("public ipv4").quantity == 730 * (len(public) + len(eips))
    nat = [i for i in instances if i.inputs["tags"]["role"] == "nat"]
    if run.cfg.network.nat == "instance":
        assert len(nat) == 1 and expected.item("nat instance t4g.nano").quantity == 730
        assert expected.item("nat root volume gp3").quantity == nat[0].inputs[
            "rootBlockDevice"]["volumeSize"]
    volumes = run.of_type("aws:ebs/volume:Volume")
    name = "data volume gp3" + (f" x{len(volumes)}" if ha else "")
    assert expected.item(name).quantity == sum(v.inputs["size"] for v in volumes)


def test_ansible_inventory_text(run):
    text = run.outputs["ansible_inventory"]
    inv = yaml.safe_load(text)["all"]
    db = inv["children"]["db"]["hosts"]["db-1"]
    assert db["ansible_host"] == run.outputs["db_instance_id"]
    assert db["private_ip"] == run.outputs["db_private_ip"]
    assert db["data_volume_ebs_volume_id"] == run.outputs["data_volume_id"]
    assert inv["vars"]["ansible_connection"] == "amazon.aws.aws_ssm"
    assert inv["vars"]["ansible_aws_ssm_bucket_name"] == run.outputs["backup_bucket"]
    assert inv["vars"]["pgbackrest_repo_s3_bucket"] == run.outputs["backup_bucket"]
    # what the AWS runbooks read instead of scanning tags and IAM roles
    assert inv["vars"]["lighthouse_backup_vault"] == run.outputs["backup_vault_name"]
    assert inv["vars"]["lighthouse_backup_role_arn"] == run.outputs["backup_role_arn"]
    assert db["lighthouse_instance_id"] == run.outputs["db_instance_id"]
    # the weekly dump writes where the bucket's lifecycle rule expires (one prefix, and the
    # sandbox deploy uses the same one)
    assert inv["vars"]["logical_dump_s3_url"] == f"s3://{run.outputs['backup_bucket']}/dumps/"
    assert DUMPS_PREFIX == sandbox_s3.DUMPS_PREFIX == "dumps/"
    rules = {r["id"]: r for r in run.of_type(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[0].inputs["rules"]}
    assert rules["expire-dumps"]["filter"]["prefix"] == DUMPS_PREFIX
    assert inv["vars"]["lighthouse_db_secret_id"] == f"lighthouse/{run.cfg.stack}/db"
    assert inv["vars"]["ansible_user"] == "admin"
    probers = inv["children"]["prober"]["hosts"]
    if run.cfg.probers.architecture == "A":
        assert list(probers) == ["db-1"]
    else:
        assert [h["ansible_host"] for h in probers.values()] == run.outputs[
            "prober_instance_ids"]
    assert run.outputs["db_password"] not in text


def test_ssm_command(run):
    assert run.outputs["ssm_session_command"] == (
        f"aws ssm start-session --target {run.outputs['db_instance_id']} --region us-east-1")


def test_every_resource_is_parented_to_a_component(run):
    components = {r.urn for r in run.records if not r.custom}
    assert {r.typ.split(":")[-1] for r in run.records if not r.custom} >= {
        "Network", "SecurityGroups", "Secrets", "Backup", "DatabaseHost", "ProberFleet",
        "Monitoring"}
    for r in run.records:
        if r.custom:
            assert r.parent in components, r.urn


def test_network_a_free_s3_endpoint_and_the_db_host_where_the_stack_says(run):
    endpoints = run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert [(e.inputs["serviceName"], e.inputs["vpcEndpointType"]) for e in endpoints] == [
        ("com.amazonaws.us-east-1.s3", "Gateway")]
    vpc = run.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == run.cfg.network.vpc_cidr
    db = run.one("aws:ec2/instance:Instance", "db")
    public = run.one("aws:ec2/subnet:Subnet", "public")
    assert public.inputs["mapPublicIpOnLaunch"] is False
    assert run.of_type("aws:ec2/natGateway:NatGateway") == []
    if run.cfg.network.database_public:  # dev
        assert db.inputs["associatePublicIpAddress"] is True
        assert db.inputs["subnetId"] == public.id
        assert run.of_type("aws:ec2/route:Route") == []
        return
    # prod: the db host private, its egress through the NAT instance in the public subnet
    assert db.inputs["associatePublicIpAddress"] is False
    private_rt = run.one("aws:ec2/routeTable:RouteTable", "private")
    assert db.inputs["subnetId"] == run.one("aws:ec2/subnet:Subnet", "private").id
    nat = run.one("aws:ec2/instance:Instance", "nat")
    assert nat.inputs["subnetId"] == public.id
    assert nat.inputs["associatePublicIpAddress"] is True
    assert nat.inputs["sourceDestCheck"] is False
    assert nat.inputs["instanceType"] == "t4g.nano"
    route = run.one("aws:ec2/route:Route", "private-default")
    assert route.inputs["routeTableId"] == private_rt.id
    assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
    assert route.inputs["networkInterfaceId"] == nat.state["primaryNetworkInterfaceId"]
    init = json.loads(nat.inputs["userData"].split("\n", 1)[1])
    rules = next(f["content"] for f in init["write_files"] if f["path"] == "/etc/nftables.conf")
    cidr = run.cfg.network.vpc_cidr
    assert f"ip saddr {cidr} ip daddr != {cidr} masquerade" in rules
    assert ["systemctl", "disable", "--now", "ssh"] in init["runcmd"]
    # the probers keep their public IPv4 and subnet: checks do not hairpin through the NAT
    for prober in (i for i in run.of_type("aws:ec2/instance:Instance")
                   if i.name.startswith("prober-")):
        assert prober.inputs["subnetId"] == public.id
        assert prober.inputs["associatePublicIpAddress"] is True


def test_main_reads_pulumi_config_and_exports(monkeypatch):
    """Run __main__.py under mocks with the dev stack file as Pulumi config."""
    import warnings

    import pulumi

    from tests.unit.infra.mocks import LighthouseMocks, RecordingMonitor, fresh_event_loop

    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()}
    fresh_event_loop()
    mocks = LighthouseMocks("us-east-1")
    pulumi.runtime.set_mocks(mocks, project="lighthouse", stack="dev", preview=False,
                             monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(flat)
    exported = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))

    @pulumi.runtime.test
    def program():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        return exported["db_instance_id"]

    try:
        program()
    finally:
        pulumi.runtime.set_all_config({})
    assert set(exported) == EXPECTED_OUTPUTS
    assert exported["estimated_monthly_cost_usd"] == 11.93
