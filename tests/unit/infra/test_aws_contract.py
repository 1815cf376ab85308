"""The AWS path as one system: the mocked stack's generated inventory, resolved by the real
`ansible-inventory` together with the committed inventories/aws/group_vars, feeds the real role
templates (rendered by Ansible's own templar with the roles' defaults), and what they produce is
what the stack's alarms, dashboard, secret and security settings expect. Both committed stacks:
dev (architecture A, prober on the db host) and prod (B, separate probers)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from ansible import constants as ansible_constants
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import add_all_plugin_dirs, init_plugin_loader
from ansible.template import Templar, trust_as_template
from lighthouse import config as lighthouse_config

from infra.config import AGENT_NAMESPACE

ROOT = Path(__file__).resolve().parents[3]
# the in-process Templar resolves collection plugins (amazon.aws's lookup) only once the
# collection loader knows the paths, as ansible-playbook sets it up
init_plugin_loader(ansible_constants.COLLECTIONS_PATHS)
GROUP_VARS = ROOT / "inventories" / "aws" / "group_vars"
AGENT_TEMPLATE = ROOT / "roles/cloudwatch_agent/templates/amazon-cloudwatch-agent.json.j2"
HBA_TEMPLATE = ROOT / "roles/timescaledb/templates/pg_hba.conf.j2"
PROBER_TEMPLATE = ROOT / "roles/prober/templates/prober.yaml.j2"
HOST_METRICS_UNIT = ROOT / "roles/host_metrics/templates/lighthouse-host-metrics.service.j2"
LOOKUP = re.compile(r"lookup\('amazon\.aws\.secretsmanager_secret',\s*(?P<args>[^)]*)\)")
# facts the templates' defaults read on a host (t4g: aarch64)
FACTS = {"ansible_architecture": "aarch64", "ansible_managed": "Ansible managed"}


def _trusted(value: Any) -> Any:
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    return value


# the playbooks' own filters (private_addresses), as ansible-playbook loads them beside them
add_all_plugin_dirs(str(ROOT / "playbooks"))


def role_defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}


def render(template: Path, variables: dict) -> str:
    templar = Templar(loader=DataLoader(), variables=_trusted(variables))
    return templar.template(trust_as_template(template.read_text()))


@pytest.fixture(scope="module")
def dev_with_alarms():
    """dev (architecture A) with alarms and dashboard on: the agent seam on a shared host."""
    import dataclasses
    import warnings

    from infra.config import load_stack_file, repo_stack_file
    from tests.unit.infra.mocks import run_stack

    cfg = load_stack_file(repo_stack_file("dev"))
    cfg = dataclasses.replace(cfg, monitoring=dataclasses.replace(
        cfg.monitoring, alarms=True, dashboard=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return run_stack(cfg)


@pytest.fixture(params=["dev", "prod", "prod-ha", "dev-with-alarms", "prod-regions"])
def run(request, stacks, dev_with_alarms):
    """Overrides the package's `run`: the committed stacks, prod as a Patroni cluster (C), dev
    with alarms and prod with probers in two more regions."""
    return dev_with_alarms if request.param == "dev-with-alarms" else stacks[request.param]


@pytest.fixture(params=["prod", "prod-ha", "dev-with-alarms", "prod-regions"])
def alarmed(request, stacks, dev_with_alarms):
    """The stacks with alarms and a dashboard, one per architecture (A, B, C), and B with
    probers in other regions."""
    return dev_with_alarms if request.param == "dev-with-alarms" else stacks[request.param]


@pytest.fixture
def inventory(run, tmp_path) -> dict:
    return resolve(run, tmp_path)


def resolve(run, tmp_path: Path) -> dict:
    """`ansible-inventory --list` of the generated hosts.yml beside the committed group_vars."""
    (tmp_path / "hosts.yml").write_text(run.outputs["ansible_inventory"])
    (tmp_path / "group_vars").symlink_to(GROUP_VARS)
    out = subprocess.run([str(Path(sys.executable).with_name("ansible-inventory")), "-i",
                          str(tmp_path), "--list"], capture_output=True, text=True, check=True,
                         env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": "/usr/bin"})
    return json.loads(out.stdout)


def groups(inventory: dict) -> dict[str, list[str]]:
    return {name: list(inventory.get(name, {}).get("hosts", []))
            for name in ("db", "prober")} | {"all": list(inventory["_meta"]["hostvars"])}


def hostvars(inventory: dict, host: str, *roles: str) -> dict:
    merged: dict = dict(FACTS)
    for role in roles:
        merged.update(role_defaults(role))
    merged.update(inventory["_meta"]["hostvars"][host])
    merged["inventory_hostname"] = host
    # what a play's templates see of the other hosts (the raw inventory vars are enough for
    # the filters that read them: private_ip, ansible_host)
    merged["groups"] = groups(inventory)
    merged["hostvars"] = inventory["_meta"]["hostvars"]
    return merged


def host_of_instance(inventory: dict, instance_id: str) -> str:
    hosts = [h for h, v in inventory["_meta"]["hostvars"].items()
             if v.get("ansible_host") == instance_id]
    assert len(hosts) == 1, f"no single inventory host for {instance_id}: {hosts}"
    return hosts[0]


def agent_metrics(config: dict) -> set[tuple[str, str, frozenset[str]]]:
    """(namespace, metric, dimension names) the rendered agent config publishes."""
    m = config["metrics"]
    appended = set(m.get("append_dimensions", {}))
    out = set()
    disk = m["metrics_collected"].get("disk")
    if disk:
        dims = {"path", "fstype"} | (set() if disk.get("drop_device") else {"device"})
        out |= {(m["namespace"], f"disk_{x}", frozenset(dims | appended))
                for x in disk["measurement"]}
    for plain in ("mem", "swap"):
        if section := m["metrics_collected"].get(plain):
            out |= {(m["namespace"], x, frozenset(appended)) for x in section["measurement"]}
    return out


def agent_config(inventory: dict, host: str) -> tuple[dict, dict]:
    variables = hostvars(inventory, host, "cloudwatch_agent")
    return json.loads(render(AGENT_TEMPLATE, variables)), variables


def test_every_agent_alarm_reads_a_metric_its_host_publishes(alarmed, tmp_path):
    run, inventory = alarmed, resolve(alarmed, tmp_path)
    alarms = [a for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if a.inputs.get("namespace") == AGENT_NAMESPACE]
    assert {a.inputs["metricName"] for a in alarms} == {"disk_used_percent", "mem_used_percent"}
    # one disk and one memory alarm per db host
    assert len(alarms) == 2 * len(inventory["db"]["hosts"])
    for alarm in alarms:
        dims = alarm.inputs["dimensions"]
        host = host_of_instance(inventory, dims["InstanceId"])
        config, variables = agent_config(inventory, host)
        published = agent_metrics(config)
        key = (alarm.inputs["namespace"], alarm.inputs["metricName"], frozenset(dims))
        assert key in published, f"{alarm.name} on {host}: {key} not in {published}"
        if "path" in dims:
            assert dims["path"] in config["metrics"]["metrics_collected"]["disk"]["resources"]
            # the filesystem the data_volume role makes on that host
            assert dims["fstype"] == variables["data_volume_fstype"]
            assert dims["path"] == variables["data_volume_mount_point"]


def test_every_dashboard_agent_widget_reads_a_published_metric(alarmed, tmp_path):
    run, inventory = alarmed, resolve(alarmed, tmp_path)
    body = json.loads(run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    for widget in body["widgets"]:
        for metric in widget["properties"]["metrics"]:
            if isinstance(metric[-1], dict):  # rendering options (a member's label)
                metric = metric[:-1]
            namespace, name, *pairs = metric
            if namespace != AGENT_NAMESPACE:
                continue
            dims = dict(zip(pairs[::2], pairs[1::2], strict=True))
            config, _ = agent_config(inventory, host_of_instance(inventory, dims["InstanceId"]))
            assert (namespace, name, frozenset(dims)) in agent_metrics(config), widget


def test_every_host_reports_root_and_the_db_host_its_data_mount(run, inventory):
    for host in inventory["_meta"]["hostvars"]:
        config, _ = agent_config(inventory, host)
        mounts = config["metrics"]["metrics_collected"]["disk"]["resources"]
        assert "/" in mounts
        if host in inventory["db"]["hosts"]:  # in architecture A also in the prober group
            assert run.cfg.monitoring.data_mount_path in mounts


@contextlib.contextmanager
def moto_secrets(region: str):
    """moto's Secrets Manager for this process (the lookup plugin runs in it), fake keys."""
    import boto3
    from moto import mock_aws

    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, keys), mock_aws():
        yield boto3.client("secretsmanager", region_name=region)


def test_the_secret_lookup_reads_the_password_out_of_the_stack_json(run, inventory):
    with contextlib.ExitStack() as stack:
        _secret_lookup(run, inventory, stack)


def _secret_lookup(run, inventory, stack: contextlib.ExitStack) -> None:
    group_vars = yaml.safe_load((GROUP_VARS / "all.yml").read_text())
    lookup = LOOKUP.search(group_vars["lighthouse_db_secret"])
    assert lookup and lookup["args"].split(",")[0].strip() == "lighthouse_db_secret_id"
    assert "region=lighthouse_aws_region" in lookup["args"].replace(" ", "")
    variables = hostvars(inventory, "db-1", "timescaledb")
    assert variables["lighthouse_db_secret_id"] == run.one(
        "aws:secretsmanager/secret:Secret").inputs["name"]
    assert variables["lighthouse_aws_region"] == run.cfg.region
    # the stack's secret string in (moto's) Secrets Manager under the stack's name and region,
    # read by the real amazon.aws lookup the group_vars name
    stored = run.one("aws:secretsmanager/secretVersion:SecretVersion").inputs["secretString"]
    secrets = stack.enter_context(moto_secrets(run.cfg.region))
    secrets.create_secret(Name=variables["lighthouse_db_secret_id"], SecretString=stored)
    templar = Templar(loader=DataLoader(), variables=_trusted(variables))
    for name in ("timescaledb_app_password", "prober_db_password"):
        expression = "{{ " + name + " }}"
        assert templar.template(trust_as_template(expression)) == run.outputs["db_password"]
    # and the backup repository's passphrase (the pgbackrest role encrypts by default)
    assert role_defaults("pgbackrest")["pgbackrest_repo_cipher_type"] == "aes-256-cbc"
    passphrase = templar.template(trust_as_template("{{ pgbackrest_repo_cipher_pass }}"))
    assert passphrase == json.loads(stored)["backup_cipher_pass"] and len(passphrase) >= 32
    # and the database TLS CA: the db host signs with it, the probers trust exactly it
    doc = json.loads(stored)
    pairs = (("timescaledb_tls_ca_cert", "tls_ca_cert"), ("prober_db_ca_cert", "tls_ca_cert"),
             ("timescaledb_tls_ca_key", "tls_ca_key"))
    for name, key in pairs:
        value = templar.template(trust_as_template("{{ " + name + " }}"))
        assert value == doc[key] and value.startswith("-----BEGIN "), name


def test_pg_hba_admits_the_probers_and_nothing_wider(run, inventory):
    loopback = ["127.0.0.1/32", "::1/128"]
    probers = [f"{ip}/32" for ip in run.outputs["prober_private_ips"]]
    members = [f"{ip}/32" for ip in run.outputs["db_private_ips"]]
    for host in inventory["db"]["hosts"]:  # under ha any member may be the primary
        variables = hostvars(inventory, host, "timescaledb")
        lines = [line.split() for line in render(HBA_TEMPLATE, variables).splitlines()
                 if line.startswith("host")]
        app = [ln[3] for ln in lines if ln[1] not in ("replication", "postgres")]
        if run.cfg.probers.architecture == "A":
            assert app == loopback
            assert hostvars(inventory, host, "prober")["prober_db_host"] == "127.0.0.1"
        else:
            assert app == loopback + probers
        # replication and pg_rewind: from the members only, and only in a cluster
        between = [(ln[1], ln[2], ln[3]) for ln in lines if ln[1] in ("replication", "postgres")]
        expected = [(what, user, cidr) for cidr in members
                    for what, user in (("replication", "replicator"), ("postgres", "rewind"))]
        assert between == (expected if run.cfg.database.ha == "patroni" else [])
    if run.cfg.probers.architecture == "B":
        for name in inventory["prober"]["hosts"]:
            assert hostvars(inventory, name, "prober")["prober_db_host"] == \
                run.outputs["db_private_ip"]


def test_each_db_host_listens_and_is_certified_on_the_address_the_probers_dial(run, inventory):
    """Found by the sandbox rehearsal: the listen address came from the default route's fact,
    which a host without one lacks; it is the stack's private IP, which the DSN names."""
    for host, ip in zip(inventory["db"]["hosts"], run.outputs["db_private_ips"], strict=True):
        templar = Templar(loader=DataLoader(),
                          variables=_trusted(hostvars(inventory, host, "timescaledb")))
        listen = templar.template(trust_as_template("{{ timescaledb_listen_addresses }}"))
        san = templar.template(trust_as_template("{{ timescaledb_tls_san }}"))
        assert listen == ["127.0.0.1", ip], host
        assert f"IP:{ip}" in san.split(","), (host, san)


def test_committed_group_vars_decide_nothing_the_stack_decides(run, inventory):
    generated = yaml.safe_load(run.outputs["ansible_inventory"])["all"]
    decided = set(generated["vars"])
    for group in generated["children"].values():
        for host_vars in group["hosts"].values():
            decided |= set(host_vars or {})
    for path in GROUP_VARS.glob("*.yml"):
        overlap = decided & set(yaml.safe_load(path.read_text()) or {})
        assert not overlap, f"{path.name} overrides what the stack decides: {sorted(overlap)}"


def published_host_metrics(variables: dict) -> set[str]:
    """What lighthouse-host-metrics publishes on a db host: the archive metrics only where
    pgBackRest archives (the inventory decides)."""
    from lighthouse_ops.hostmetrics import contract as hm

    skip = set() if variables["lighthouse_pgbackrest_enabled"] else set(hm.ARCHIVE_METRICS)
    return {m.name for m in hm.ALL if m not in skip}


def test_host_metrics_publish_under_the_instance_id_the_alarms_select(alarmed, tmp_path):
    from lighthouse_ops.hostmetrics import contract as hm

    run, inventory = alarmed, resolve(alarmed, tmp_path)
    publishing = {}  # instance id -> what that host publishes
    for host in inventory["db"]["hosts"]:
        variables = hostvars(inventory, host, "ops_runtime", "host_metrics")
        assert variables["lighthouse_host_metrics_enabled"] is True
        unit = render(HOST_METRICS_UNIT, {**variables, "prober_release": "0.1.0-x"})
        instance = re.search(r"--instance-id (\S+)", unit)[1]
        assert instance == variables["ansible_host"]  # the host's own EC2 id
        publishing[instance] = published_host_metrics(variables)
    read = [(alarm, metric, dims) for alarm, namespace, metric, dims in run.alarm_metrics()
            if namespace == hm.NAMESPACE]
    assert read
    for alarm, metric, dims in read:
        assert set(dims) == {hm.DIMENSION}, alarm
        assert metric in publishing[dims[hm.DIMENSION]], (alarm, metric)
    # every db host's series is read by some alarm (a member's heartbeat too)
    assert {dims[hm.DIMENSION] for _, _, dims in read} == set(publishing)
    assert run.outputs["db_instance_ids"] == list(publishing)


def test_the_cost_model_counts_the_metrics_the_hosts_publish(run, inventory):
    agent = 0
    for host in inventory["_meta"]["hostvars"]:  # one CloudWatch metric per dimension value
        collected = agent_config(inventory, host)[0]["metrics"]["metrics_collected"]
        agent += len(collected["disk"]["measurement"]) * len(collected["disk"]["resources"])
        agent += len(collected["mem"]["measurement"]) + len(collected["swap"]["measurement"])
    host_metrics = sum(len(published_host_metrics(hostvars(inventory, host, "host_metrics")))
                       for host in inventory["db"]["hosts"])
    assert agent + host_metrics == run.cfg.custom_metric_count


PROBER_UNIT = ROOT / "roles/prober/templates/lighthouse-prober.service.j2"
PROBER_LOGROTATE = ROOT / "roles/prober/templates/logrotate.j2"
DB_LOGS = {"/var/log/postgresql/postgresql-*.log", "/var/log/pgbackrest/*.log"}


def test_every_hosts_logs_ship_to_the_stacks_log_group_with_retention(run, inventory):
    """PostgreSQL's and pgBackRest's logs from every db host, and from every prober host the
    very file its rendered prober config writes (architecture A: all three on db-1); the
    agent can read each (group), the prober's unit may write it, logrotate rotates it."""
    group = run.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert group["retentionInDays"] == run.cfg.monitoring.log_retention_days
    for host in inventory["_meta"]["hostvars"]:
        config, variables = agent_config(inventory, host)
        shipped = {f["file_path"]: f["log_group_name"]
                   for f in config["logs"]["logs_collected"]["files"]["collect_list"]}
        expected, readers = set(), set()
        if host in inventory["db"]["hosts"]:
            expected |= DB_LOGS
            readers.add("postgres")
        if host in inventory["prober"]["hosts"]:
            pv = {**hostvars(inventory, host, "prober"), "prober_db_password": "x" * 20}
            prober_log = yaml.safe_load(render(PROBER_TEMPLATE, pv))["logging"]["file"]
            expected.add(prober_log)
            readers.add(pv["prober_group"])
            unit = render(PROBER_UNIT, pv)
            assert f"LogsDirectory={Path(prober_log).parent.name}\n" in unit
            assert Path(prober_log).parent == Path("/var/log") / Path(prober_log).parent.name
            assert render(PROBER_LOGROTATE, pv).count(f"{prober_log} {{") == 1
        assert set(shipped) == expected, host
        assert set(shipped.values()) == {group["name"]}
        assert set(expand(variables, "{{ cloudwatch_agent_log_reader_groups }}")) == readers


def expand(variables: dict, expression: str):
    return Templar(loader=DataLoader(), variables=_trusted(variables)).template(
        trust_as_template(expression))


def test_the_db_certificate_names_the_address_every_prober_verifies(run, inventory):
    """verify-full: every host a prober's DSN names is in that db host's certificate SAN, and
    a cluster's DSN names every member and keeps to the writable one."""
    sans = {}
    for host in inventory["db"]["hosts"]:
        variables = hostvars(inventory, host, "timescaledb")
        sans[variables["private_ip"]] = expand(variables, "{{ timescaledb_tls_san }}").split(",")
    for name in inventory["prober"]["hosts"]:
        variables = hostvars(inventory, name, "prober")
        config = yaml.safe_load(render(PROBER_TEMPLATE, {
            **variables, "prober_db_password": "x" * 20}))  # noqa: S106 - not a secret
        dsn = urllib.parse.urlsplit(config["database"]["dsn"])
        query = dict(urllib.parse.parse_qsl(dsn.query))
        assert (query["sslmode"], query["sslrootcert"]) == ("verify-full",
                                                            "/etc/lighthouse/db-ca.crt")
        hosts = [h.rsplit(":", 1)[0] for h in dsn.netloc.split("@", 1)[1].split(",")]
        if run.cfg.database.ha == "patroni":
            assert hosts == run.outputs["db_private_ips"]
            assert query["target_session_attrs"] == "read-write"
        else:
            assert hosts == [variables["prober_db_host"]]
            assert "target_session_attrs" not in query
        for h in hosts:
            db_ip = h if h != "127.0.0.1" else run.outputs["db_private_ip"]
            assert f"IP:{h}" in sans[db_ip], (h, sans[db_ip])
        # its HTTP server binds loopback and the instance's private address, not 0.0.0.0
        assert config["http"]["listen"] == ["127.0.0.1", variables["private_ip"]]
        # the sms channel publishes through SNS in the stack's own region
        assert config["alerting"]["sns_region"] == variables["lighthouse_aws_region"] != ""


def test_each_rendered_prober_config_loads_as_a_fleet_member_of_its_region(run, inventory,
                                                                           tmp_path):
    """The prober accepts the config the role renders from the stack's inventory as it is; each
    prober is a fleet member named after its host and located in the region its instance is
    in (the stack's, or its probers.regions entry's)."""
    instance_region = {**run.outputs["prober_locations"], **{
        db: run.cfg.region for db in run.cfg.database.hostnames}}  # architecture A: db-1
    for name in inventory["prober"]["hosts"]:
        variables = hostvars(inventory, name, "prober")
        config = yaml.safe_load(render(PROBER_TEMPLATE, {
            **variables, "prober_db_password": "x" * 20}))  # noqa: S106 - not a secret
        assert config["fleet"] == {"enabled": True, "name": name,
                                   "location": instance_region[name], "lease_s": 15.0}
        rendered = tmp_path / f"{name}.yaml"
        rendered.write_text(yaml.safe_dump(config))
        loaded = lighthouse_config.load(rendered, env={})
        assert (loaded.fleet.name, loaded.fleet.location) == (name, config["fleet"]["location"])


# --- architecture C: what the members need of each other -----------------------------------

PATRONI_TEMPLATE = ROOT / "roles/patroni/templates/config.yml.j2"
ETCD_TEMPLATE = ROOT / "roles/etcd/templates/etcd.default.j2"
ETCD_CERT_TEMPLATE = ROOT / "roles/etcd/templates/member-cert.cnf.j2"
DB_PLAY = ROOT / "playbooks" / "db.yml"


def with_secret(variables: dict, run) -> dict:
    """The host's variables with the secret lookup answered by what the stack stored."""
    group_vars = yaml.safe_load((GROUP_VARS / "all.yml").read_text())
    stored = run.one("aws:secretsmanager/secretVersion:SecretVersion").inputs["secretString"]
    return {**variables, "_aws_secret_string": stored,
            "lighthouse_db_secret": LOOKUP.sub("_aws_secret_string",
                                               group_vars["lighthouse_db_secret"])}


def test_a_cluster_converges_what_the_stack_made_of_it(prod_ha, tmp_path):
    """From the mocked stack: db.yml's own HA assertion holds for the generated inventory, and
    each member's rendered Patroni and etcd configuration names exactly the members' private
    addresses on the ports the security group opens between them, with the passwords the stack
    stored in the secret."""
    from infra.security import MEMBER_PORTS

    run, inventory = prod_ha, resolve(prod_ha, tmp_path)
    members = list(inventory["db"]["hosts"])
    ips = run.outputs["db_private_ips"]
    assert members == ["db-1", "db-2", "db-3"] and len(set(ips)) == 3
    stored = json.loads(run.one("aws:secretsmanager/secretVersion:SecretVersion")
                        .inputs["secretString"])
    play = yaml.safe_load(DB_PLAY.read_text())[0]
    check = next(t for t in play["tasks"] if t["name"] == "Check the high-availability choice")
    # the role defaults the ports come from are the SG's numbers
    ports = {**role_defaults("etcd"), **role_defaults("patroni"), **role_defaults("timescaledb")}
    from_roles = {"postgres": ports["timescaledb_port"], "patroni": ports["patroni_restapi_port"],
                  "etcd-client": ports["etcd_client_port"], "etcd-peer": ports["etcd_peer_port"]}
    assert from_roles == MEMBER_PORTS
    for host, ip in zip(members, ips, strict=True):
        variables = with_secret(hostvars(inventory, host, "timescaledb", "etcd", "patroni"), run)
        assert variables["lighthouse_db_ha"] == "patroni"
        assert variables["lighthouse_pgbackrest_enabled"] is False  # refused with a cluster
        for condition in check["ansible.builtin.assert"]["that"]:
            assert expand(variables, "{{ " + condition + " }}") is True, condition
        patroni = yaml.safe_load(render(PATRONI_TEMPLATE, variables))
        assert patroni["name"] == host
        assert patroni["etcd3"]["hosts"] == ",".join(f"{i}:2379" for i in ips)
        assert patroni["restapi"]["connect_address"] == f"{ip}:8008"
        assert patroni["postgresql"]["connect_address"] == f"{ip}:5432"
        auth = patroni["postgresql"]["authentication"]
        assert auth["replication"]["password"] == stored["patroni_replication_password"]
        assert auth["rewind"]["password"] == stored["patroni_rewind_password"]
        assert patroni["restapi"]["authentication"]["password"] == \
            stored["patroni_restapi_password"]
        assert all(len(stored[k]) >= 32 for k in ("patroni_replication_password",
                                                  "patroni_rewind_password",
                                                  "patroni_restapi_password"))
        etcd = dict(line.split("=", 1) for line in render(ETCD_TEMPLATE, variables).splitlines()
                    if line.startswith("ETCD_"))
        assert etcd["ETCD_INITIAL_CLUSTER"].strip('"') == ",".join(
            f"{m}=https://{i}:2380" for m, i in zip(members, ips, strict=True))
        assert etcd["ETCD_ADVERTISE_CLIENT_URLS"].strip('"') == f"https://{ip}:2379"
        assert f"IP:{ip}," in render(ETCD_CERT_TEMPLATE, variables)
        # the member's own server certificate names the address its peers replicate from
        san = expand(variables, "{{ timescaledb_tls_san }}").split(",")
        assert f"IP:{ip}" in san


def test_members_sit_in_three_zones_with_their_volumes_and_backups(prod_ha, prod):
    run = prod_ha
    instances = {i.id: i for i in run.of_type("aws:ec2/instance:Instance")
                 if i.inputs["tags"].get("role") == "db"}
    assert sorted(instances) == sorted(run.outputs["db_instance_ids"])
    assert [instances[i].inputs["tags"]["host"] for i in run.outputs["db_instance_ids"]] == [
        "db-1", "db-2", "db-3"]
    zones = [instances[i].inputs["availabilityZone"] for i in run.outputs["db_instance_ids"]]
    assert zones == ["us-east-1a", "us-east-1b", "us-east-1c"] == \
        run.outputs["db_availability_zones"]
    subnets = {s.id: s for s in run.of_type("aws:ec2/subnet:Subnet")}
    for inst in instances.values():
        assert subnets[inst.inputs["subnetId"]].inputs["availabilityZone"] == \
            inst.inputs["availabilityZone"]
    key, value = run.cfg.backup_tag
    attachments = run.of_type("aws:ec2/volumeAttachment:VolumeAttachment")
    volumes = {v.id: v for v in run.of_type("aws:ebs/volume:Volume")}
    assert sorted(v for v in volumes) == sorted(run.outputs["data_volume_ids"])
    for att in attachments:
        vol, inst = volumes[att.inputs["volumeId"]], instances[att.inputs["instanceId"]]
        assert vol.inputs["availabilityZone"] == inst.inputs["availabilityZone"]
        assert vol.inputs["tags"][key] == value and vol.inputs["encrypted"] is True
        assert vol.inputs["tags"]["host"] == inst.inputs["tags"]["host"]
        assert vol.protect and vol.retain_on_delete  # prod: protected like db-1's
    assert len(attachments) == 3
    # db-1 keeps the names a single-host prod has: turning ha on replaces nothing of it
    kept = ("aws:ec2/instance:Instance", "aws:ebs/volume:Volume",
            "aws:ec2/volumeAttachment:VolumeAttachment", "aws:ec2/subnet:Subnet")
    single = {r.urn for t in kept for r in prod.of_type(t)}
    assert single <= {r.urn for t in kept for r in run.of_type(t)}


def test_one_heartbeat_alarm_for_the_cluster_and_host_alarms_per_member(prod_ha):
    from lighthouse_ops.hostmetrics import contract as hm

    run = prod_ha
    alarms = {a.name: a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    ids = dict(zip(("db-1", "db-2", "db-3"), run.outputs["db_instance_ids"], strict=True))
    for host, instance in ids.items():
        for kind in ("cpu", "status", "disk", "memory", "connections", "units-failed"):
            assert alarms[f"{host}-{kind}"]["dimensions"]["InstanceId"] == instance
    # nothing archives on a cluster (no pgBackRest yet): no archive alarm that cannot fire
    assert not [n for n in alarms if "archive" in n]
    beat = alarms["prober-heartbeat"]
    assert beat["treatMissingData"] == "breaching"
    queries = beat["metricQueries"]
    read = [q["metric"]["dimensions"][hm.DIMENSION] for q in queries if "metric" in q]
    assert read == list(ids.values())
    result = [q for q in queries if q.get("returnData")]
    assert len(result) == 1 and result[0]["expression"] == "MAX([m1, m2, m3])"
    assert set(alarms) == set(run.cfg.alarm_names)


def test_the_release_is_built_for_the_python_and_cpu_of_the_hosts_the_stack_makes(
        run, inventory, tmp_path, monkeypatch):
    """inventory -> `invoke aws.release` -> wheelhouse: the stack's image decides the Python
    (Debian 12: 3.11) and t4g the CPU; the wheels are fetched for exactly those, and the prober
    role's host-Python check reads the same value on every prober host."""
    from lighthouse_ops.deploy import release

    from infra.config import OS_PYTHON

    hosts = tmp_path / "hosts.yml"  # what the `inventory` fixture resolved
    python, arch = release.stack_hosts_target(hosts)
    assert (python, arch) == (OS_PYTHON[run.cfg.database.os], "aarch64")
    argv: list[list[str]] = []
    monkeypatch.setattr(release, "_run", lambda a, what: argv.append(a))
    release.build_wheelhouse("x==1 --hash=sha256:00\n", python, release.PLATFORMS[arch],
                             cache=tmp_path / "cache")
    (pip,) = argv
    assert pip[pip.index("--python-version") + 1] == python
    platforms = [pip[i + 1] for i, a in enumerate(pip) if a == "--platform"]
    assert platforms and all(p.endswith("_aarch64") for p in platforms)
    for host in inventory["prober"]["hosts"]:
        assert hostvars(inventory, host, "prober")["prober_python_version"] == python


def test_a_release_for_an_old_inventory_or_an_unknown_cpu_is_refused(tmp_path):
    from lighthouse_ops.deploy import release

    old = tmp_path / "hosts.yml"
    old.write_text("all:\n  vars:\n    lighthouse_stack: prod\n")
    with pytest.raises(release.ReleaseError, match="regenerate it with `pulumi stack output"):
        release.stack_hosts_target(old)
    with pytest.raises(release.ReleaseError, match="no wheel platforms known for host CPU"):
        release.build_release("3.11", arch="riscv64")
