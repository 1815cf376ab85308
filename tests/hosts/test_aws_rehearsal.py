"""The AWS path rehearsed on sandbox hosts: `pulumi up`, then Ansible with the stack's inventory.

The prod stack (architecture B: a private db host and one prober) is built under Pulumi's mocks,
its instances given the sandbox hosts' addresses as private IPs and its CA made a real one. Its
`ansible_inventory` output is used unchanged, beside the committed inventories/aws/group_vars;
its secret (the JSON the stack stores) and its bucket go into the sandbox's moto, which serves
Secrets Manager, S3 and CloudWatch behind one TLS front. Then playbooks/site.yml runs (twice:
the second run changes nothing), and the hosts are checked against the stack: the prober
reaches the db host at the stack's private IP with the stack's password and CA, from the
stack's location; pg_hba admits the stack's prober and nothing wider; WAL goes to the stack's
bucket; the host metrics land under the instance id and dimensions the stack's alarms read; the
agent's config is the one the alarms expect.

What still differs from AWS (each one an extra var or env below, nothing else):
- transport: SSH as root with the sandbox key (so sshd keeps root's key login), where the
  inventory says SSM as admin (and sshd refuses root);
- the release: Python 3.13 x86_64 wheels for trixie, where Debian 12 on t4g has 3.11 aarch64;
- TimescaleDB from Debian (Apache edition), where prod uses Timescale's repository (no
  route to it from here); PostgreSQL tuned for 1 GiB, the sandbox sees the machine's RAM;
- AWS endpoints: moto at the controller with fake keys, where hosts use the instance profile
  and the controller its own credentials; the agent is rendered and validated, not installed;
- the data volume: a loop device behind the EBS by-id name the role derives from the stack's
  volume id; vm.* sysctls rendered, not applied (a container's /proc/sys is read-only);
- the SSRF allow list admits the sandbox's addresses (on AWS targets are public).

It reshapes the shared sandbox (the stack's password, CA and location), so tests/hosts/conftest.py
runs it after every other host test.
"""

from __future__ import annotations

import atexit
import json
import time
import urllib.parse
import urllib.request
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lighthouse_ops.deploy import s3
from lighthouse_ops.deploy.ansible_run import PlaybookResult, changed_tasks, run_playbook
from lighthouse_ops.deploy.local import DATA_DEVICE, DATA_VOLUME_MB, PROBER_HTTP_PORT
from lighthouse_ops.deploy.release import build_release
from lighthouse_ops.hostmetrics import contract as hm
from lighthouse_ops.moto_s3 import ACCESS_KEY, SECRET_KEY
from lighthouse_ops.sandbox import Sandbox, disks
from lighthouse_ops.sandbox.inventory import SSH_COMMON_ARGS

from infra.config import AGENT_NAMESPACE, load_stack_file, repo_stack_file
from tests.hosts.deploy_support import psql
from tests.support.pgserver import wait_for
from tests.unit.infra.mocks import LighthouseMocks, StackRun, run_stack

ROOT = Path(__file__).resolve().parents[2]
AWS_GROUP_VARS = ROOT / "inventories" / "aws" / "group_vars"
AGENT_CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"


class SandboxMocks(LighthouseMocks):
    """The stack's instances are the sandbox's hosts (their addresses as private IPs), and its
    CA is a real P-256 one: the db host signs its server certificate with it, the prober
    verifies that certificate against it."""

    def __init__(self, region: str, addresses: dict[str, str]) -> None:
        super().__init__(region)
        self.addresses = addresses

    def new_resource(self, args):
        rid, state = super().new_resource(args)
        if args.typ == "aws:ec2/instance:Instance":
            host = "db-1" if args.name == "db" else args.name  # the stack names db-1 "db"
            if host in self.addresses:
                state["privateIp"] = self.addresses[host]
        elif args.typ == "tls:index/privateKey:PrivateKey":
            key = ec.generate_private_key(ec.SECP256R1())
            state["privateKeyPem"] = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()).decode()
        elif args.typ == "tls:index/selfSignedCert:SelfSignedCert":
            key = args.inputs["privateKeyPem"]  # a secret arrives wrapped: {sig, value}
            state["certPem"] = _ca_pem(key["value"] if isinstance(key, dict) else key,
                                       args.inputs["subject"]["commonName"])
        return rid, state


def _ca_pem(key_pem: str, common_name: str) -> str:
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def aws_client(moto: dict[str, str], region: str, service: str):
    return boto3.client(service, endpoint_url=moto["endpoint"], verify=moto["ca_file"],
                        region_name=region, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY)


class Rehearsal:
    def __init__(self, sandbox: Sandbox, run: StackRun, moto: dict[str, str]) -> None:
        self.sandbox, self.run, self.moto = sandbox, run, moto
        self.inventory = yaml.safe_load(run.outputs["ansible_inventory"])["all"]
        self.secret = json.loads(run.one(
            "aws:secretsmanager/secretVersion:SecretVersion").inputs["secretString"])
        self.result: PlaybookResult | None = None
        self.playbook_args: tuple[Path, dict[str, Any], dict[str, str]] | None = None

    def converge(self) -> PlaybookResult:
        """site.yml with the stack's inventory (the extra vars and env set up once)."""
        assert self.playbook_args is not None
        inventory, extra, env = self.playbook_args
        return run_playbook("site.yml", inventory, extra, echo=False, check=False, env=env)

    def var(self, name: str) -> Any:
        return self.inventory["vars"][name]

    def host_var(self, group: str, host: str, name: str) -> Any:
        return self.inventory["children"][group]["hosts"][host][name]

    def client(self, service: str):
        return aws_client(self.moto, self.run.cfg.region, service)


def _stack(sandbox: Sandbox) -> StackRun:
    cfg = load_stack_file(repo_stack_file("prod"))
    assert cfg.probers.architecture == "B" and cfg.database.ha == "none"
    sandbox.up(db=1, prober=cfg.probers.instance_count)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return run_stack(cfg, SandboxMocks(cfg.region, {h.name: h.ip for h in sandbox.hosts()}))


def _extra_vars(sandbox: Sandbox, state: dict[str, Any], endpoint_host: str) -> dict[str, Any]:
    """The sandbox's differences from AWS (the module docstring lists them), nothing else."""
    release = build_release()  # trixie's Python on this machine's CPU
    loop = sandbox.attach_disk("db-1", DATA_DEVICE, DATA_VOLUME_MB)
    major, minor = disks.major_minor(loop)
    addresses = {h.name: h.ip for h in sandbox.hosts()}
    pgbackrest = s3.pgbackrest_host_vars(state, endpoint_host)
    timers = s3.db_timer_host_vars(state, endpoint_host)
    return {
        **release.ansible_vars(),
        "ansible_connection": "ssh",
        "ansible_user": "root",
        "ansible_host": "{{ " + json.dumps(addresses) + "[inventory_hostname] }}",
        "ansible_ssh_private_key_file": str(sandbox.ssh_key),
        "ansible_ssh_common_args": SSH_COMMON_ARGS,
        "ansible_python_interpreter": "/usr/bin/python3",
        "common_ssh_permit_root_login": "prohibit-password",  # the sandbox's only way in
        "timescaledb_source": "debian",
        "timescaledb_tune_memory_mb": 1024,
        "timescaledb_tune_cpus": 2,
        "cloudwatch_agent_install": False,
        "common_sysctl_apply": False,
        # the role makes the by-id node it derives from the stack's volume id, for the loop
        "data_volume_create_node": {"major": major, "minor": minor},
        # S3 at moto with fake keys (the bucket and region stay the stack's)
        **{k: v for k, v in pgbackrest.items() if k.startswith("pgbackrest_repo_")
           and k not in ("pgbackrest_repo_s3_bucket", "pgbackrest_repo_s3_region")},
        "logical_dump_s3_path_style": True,
        **{k: v for k, v in timers.items() if k.startswith("ops_runtime_aws_")},
        "prober_allow_list": [*addresses.values(), "127.0.0.0/8"],
    }


@pytest.fixture(scope="module")
def rehearsal(sandbox: Sandbox) -> Rehearsal:
    run = _stack(sandbox)
    state = s3.ensure_s3(sandbox)
    atexit.register(s3.stop_s3, sandbox)  # run alone, nothing else stops it (safe to repeat)
    controller = sandbox.host("db-1").controller_ip
    moto = {"endpoint": f"https://{controller}:{state['port']}", "ca_file": state["ca_file"]}
    rehearsal = Rehearsal(sandbox, run, moto)
    # what `pulumi up` leaves in AWS: the secret, under the stack's name, and the bucket
    secrets = rehearsal.client("secretsmanager")
    secret_id, stored = rehearsal.var("lighthouse_db_secret_id"), json.dumps(rehearsal.secret)
    try:
        secrets.create_secret(Name=secret_id, SecretString=stored)
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=secret_id, SecretString=stored)
    bucket = rehearsal.var("pgbackrest_repo_s3_bucket")
    s3_client = rehearsal.client("s3")
    if bucket not in {b["Name"] for b in s3_client.list_buckets()["Buckets"]}:
        s3_client.create_bucket(Bucket=bucket)
    # the stack's inventory, byte for byte, beside the committed group_vars
    inv = sandbox.dir / "aws-rehearsal"
    inv.mkdir(exist_ok=True)
    (inv / "hosts.yml").write_text(run.outputs["ansible_inventory"])
    if not (inv / "group_vars").is_symlink():
        (inv / "group_vars").symlink_to(AWS_GROUP_VARS)
    # the controller's AWS (the secret lookup runs there): moto, fake keys
    env = {"AWS_ENDPOINT_URL": moto["endpoint"], "AWS_CA_BUNDLE": moto["ca_file"],
           "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    rehearsal.playbook_args = (inv, _extra_vars(sandbox, state, controller), env)
    rehearsal.result = rehearsal.converge()
    return rehearsal


def test_site_converges_from_the_stacks_inventory(rehearsal):
    res = rehearsal.result
    assert res is not None and res.rc == 0, res.output[-4000:]
    assert set(res.recap) == {"db-1", "prober-1"}
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in res.recap.values())


def test_a_second_run_from_the_stacks_inventory_changes_nothing(rehearsal):
    """Idempotent on the AWS path too: the secret read again, the CA and certificate from it,
    the stack's addresses: nothing to change."""
    again = rehearsal.converge()
    assert again.rc == 0, again.output[-3000:]
    changed = {host: r["changed"] for host, r in again.recap.items()}
    assert changed == {"db-1": 0, "prober-1": 0}, changed_tasks(again.output)


def test_the_prober_reaches_the_db_host_at_the_stacks_address_with_its_password_and_ca(
        rehearsal):
    sb, db_ip = rehearsal.sandbox, rehearsal.host_var("db", "db-1", "private_ip")
    assert db_ip == sb.host("db-1").ip
    config = yaml.safe_load(sb.ssh("prober-1", "cat /etc/lighthouse/prober.yaml").stdout)
    dsn = config["database"]["dsn"]
    assert f"@{db_ip}:5432/" in dsn and "sslmode=verify-full" in dsn
    assert f":{rehearsal.secret['password']}@" in urllib.parse.unquote(dsn)
    ca = sb.ssh("prober-1", "cat /etc/lighthouse/db-ca.crt").stdout
    assert ca.strip() == rehearsal.secret["tls_ca_cert"].strip()
    url = f"http://{sb.host('prober-1').ip}:{PROBER_HTTP_PORT}/health"

    body: dict = {}

    def healthy() -> bool:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - sandbox address
            body.update(json.loads(resp.read()))
        return body["status"] == "ok" and body["database"]["reachable"] is True

    assert wait_for(healthy, timeout=60, interval=2), body
    assert body["fleet"]["location"] == rehearsal.var("lighthouse_location") == "us-east-1"
    rows = psql(sb, "SELECT location FROM probers WHERE name = 'prober-1' "
                    "AND heartbeat_at > now() - interval '30 seconds'")
    assert rows == [["us-east-1"]]


def test_pg_hba_admits_the_stacks_prober_and_nothing_wider(rehearsal):
    prober_ip = rehearsal.host_var("prober", "prober-1", "private_ip")
    assert rehearsal.host_var("db", "db-1", "timescaledb_hba_allowed_cidrs") == [
        f"{prober_ip}/32"]
    hba = rehearsal.sandbox.ssh("db-1", "cat /etc/postgresql/17/main/pg_hba.conf").stdout
    remote = {line.split()[3] for line in hba.splitlines()
              if line.startswith(("host", "hostssl")) and len(line.split()) > 4}
    assert remote - {"127.0.0.1/32", "::1/128"} == {f"{prober_ip}/32"}


def test_wal_is_archived_to_the_stacks_bucket(rehearsal):
    assert rehearsal.var("lighthouse_pgbackrest_enabled") is True
    rehearsal.sandbox.ssh("db-1", "cd /tmp && runuser -u postgres -- "
                                  "pgbackrest --stanza=lighthouse check")
    listed = rehearsal.client("s3").list_objects_v2(
        Bucket=rehearsal.var("pgbackrest_repo_s3_bucket"), Prefix="")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any("/archive/lighthouse/" in f"/{k}" for k in keys), keys[:20]


def test_host_metrics_land_where_the_stacks_alarms_read(rehearsal):
    instance = rehearsal.host_var("db", "db-1", "lighthouse_instance_id")
    assert instance.startswith("i-")
    rehearsal.sandbox.ssh("db-1", "systemctl start lighthouse-host-metrics.service")
    cloudwatch = rehearsal.client("cloudwatch")
    read = [(alarm, metric, dims) for alarm, namespace, metric, dims
            in rehearsal.run.alarm_metrics() if namespace == hm.NAMESPACE]
    assert read and {dims[hm.DIMENSION] for _, _, dims in read} == {instance}
    published = {m["MetricName"] for m in cloudwatch.list_metrics(
        Namespace=hm.NAMESPACE, Dimensions=[{"Name": hm.DIMENSION, "Value": instance}])[
        "Metrics"]}
    for alarm, metric, _ in read:
        assert metric in published, (alarm, metric, sorted(published))


def test_the_agent_config_is_the_one_the_stacks_alarms_and_log_group_expect(rehearsal):
    cfg = rehearsal.run.cfg
    for host, mounts in (("db-1", {"/", cfg.monitoring.data_mount_path}),
                         ("prober-1", {"/"})):
        agent = json.loads(rehearsal.sandbox.ssh(host, f"cat {AGENT_CONFIG}").stdout)
        metrics = agent["metrics"]
        assert metrics["namespace"] == AGENT_NAMESPACE
        assert set(metrics["metrics_collected"]["disk"]["resources"]) == mounts
        logs = agent["logs"]["logs_collected"]["files"]["collect_list"]
        assert {e["log_group_name"] for e in logs} == {cfg.log_group_name}


def test_the_prober_checks_from_the_stacks_location(rehearsal):
    """A monitor of the db host's PostgreSQL port: its results carry the stack's region."""
    sb, db_ip = rehearsal.sandbox, rehearsal.sandbox.host("db-1").ip
    (sub,) = psql(sb, f"""
WITH u AS (INSERT INTO users (display_name) VALUES ('aws-rehearsal') RETURNING id)
INSERT INTO subscriptions (user_id, name, target_type, target_config, check_interval_seconds,
                           status)
SELECT id, 'aws rehearsal', 'tcp', '{{"host": "{db_ip}", "port": 5432, "timeout_s": 2}}', 60,
       'active' FROM u RETURNING id""")
    deadline = time.monotonic() + 100  # the first check comes within one 60 s interval
    rows: list[list[str]] = []
    while not rows and time.monotonic() < deadline:
        rows = psql(sb, f"SELECT location, status FROM check_history "
                        f"WHERE subscription_id = '{sub[0]}'")
        time.sleep(3)
    assert rows and {r[0] for r in rows} == {"us-east-1"}, rows
    assert rows[0][1] == "success"
