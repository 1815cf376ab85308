"""The AWS path as one system: the mocked stack's generated inventory, resolved by the real
`ansible-inventory` together with the committed inventories/aws/group_vars, feeds the real role
templates (rendered by Ansible's own templar with the roles' defaults), and what they produce is
what the stack's alarms, dashboard, secret and security settings expect. Both committed stacks:
dev (architecture A, prober on the db host) and prod (B, separate probers)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from lighthouse import config as lighthouse_config

from infra.config import AGENT_NAMESPACE

ROOT = Path(__file__).resolve().parents[3]
GROUP_VARS = ROOT / "inventories" / "aws" / "group_vars"
AGENT_TEMPLATE = ROOT / "roles/cloudwatch_agent/templates/amazon-cloudwatch-agent.json.j2"
HBA_TEMPLATE = ROOT / "roles/timescaledb/templates/pg_hba.conf.j2"
PROBER_TEMPLATE = ROOT / "roles/prober/templates/prober.yaml.j2"
HOST_METRICS_UNIT = ROOT / "roles/host_metrics/templates/lighthouse-host-metrics.service.j2"
LOOKUP = re.compile(r"lookup\('amazon\.aws\.aws_secret',\s*(?P<args>[^)]*)\)")
# facts the templates' defaults read on a host (t4g: aarch64)
FACTS = {"ansible_architecture": "aarch64", "ansible_managed": "Ansible managed",
         "ansible_default_ipv4": {"address": "10.0.0.10"}}


def _trusted(value: Any) -> Any:
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    return value


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


@pytest.fixture(params=["dev", "prod", "dev-with-alarms"])
def run(request, stacks, dev_with_alarms):
    """Overrides the package's `run`: the committed stacks plus dev with alarms."""
    return dev_with_alarms if request.param == "dev-with-alarms" else stacks[request.param]


@pytest.fixture(params=["prod", "dev-with-alarms"])
def alarmed(request, stacks, dev_with_alarms):
    """The stacks with alarms and a dashboard, one per architecture."""
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


def hostvars(inventory: dict, host: str, *roles: str) -> dict:
    merged: dict = dict(FACTS)
    for role in roles:
        merged.update(role_defaults(role))
    merged.update(inventory["_meta"]["hostvars"][host])
    merged["inventory_hostname"] = host
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
              if a.inputs["namespace"] == AGENT_NAMESPACE]
    assert {a.inputs["metricName"] for a in alarms} == {"disk_used_percent", "mem_used_percent"}
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
        if host == "db-1":  # in architecture A it is also in the prober group
            assert run.cfg.monitoring.data_mount_path in mounts


def test_the_secret_lookup_reads_the_password_out_of_the_stack_json(run, inventory):
    group_vars = yaml.safe_load((GROUP_VARS / "all.yml").read_text())
    lookup = LOOKUP.search(group_vars["lighthouse_db_secret"])
    assert lookup and lookup["args"].split(",")[0].strip() == "lighthouse_db_secret_id"
    assert "region=lighthouse_aws_region" in lookup["args"].replace(" ", "")
    variables = hostvars(inventory, "db-1", "timescaledb")
    assert variables["lighthouse_db_secret_id"] == run.one(
        "aws:secretsmanager/secret:Secret").inputs["name"]
    assert variables["lighthouse_aws_region"] == run.cfg.region
    # what Secrets Manager returns for that id: the stack's secret string
    stored = run.one("aws:secretsmanager/secretVersion:SecretVersion").inputs["secretString"]
    variables["lighthouse_db_secret"] = LOOKUP.sub("_aws_secret_string",
                                                   group_vars["lighthouse_db_secret"])
    variables["_aws_secret_string"] = stored
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
    variables = hostvars(inventory, "db-1", "timescaledb")
    hosts = [line.split()[3] for line in render(HBA_TEMPLATE, variables).splitlines()
             if line.startswith("host")]
    loopback = ["127.0.0.1/32", "::1/128"]
    if run.cfg.probers.architecture == "A":
        assert hosts == loopback
        assert hostvars(inventory, "db-1", "prober")["prober_db_host"] == "127.0.0.1"
    else:
        assert hosts == loopback + [f"{ip}/32" for ip in run.outputs["prober_private_ips"]]
        for name in inventory["prober"]["hosts"]:
            assert hostvars(inventory, name, "prober")["prober_db_host"] == \
                run.outputs["db_private_ip"]


def test_committed_group_vars_decide_nothing_the_stack_decides(run, inventory):
    generated = yaml.safe_load(run.outputs["ansible_inventory"])["all"]
    decided = set(generated["vars"])
    for group in generated["children"].values():
        for host_vars in group["hosts"].values():
            decided |= set(host_vars or {})
    for path in GROUP_VARS.glob("*.yml"):
        overlap = decided & set(yaml.safe_load(path.read_text()) or {})
        assert not overlap, f"{path.name} overrides what the stack decides: {sorted(overlap)}"


def test_host_metrics_publish_under_the_instance_id_the_alarms_select(alarmed, tmp_path):
    from lighthouse_ops.hostmetrics import contract as hm

    run, inventory = alarmed, resolve(alarmed, tmp_path)
    variables = hostvars(inventory, "db-1", "ops_runtime", "host_metrics")
    assert variables["lighthouse_host_metrics_enabled"] is True
    unit = render(HOST_METRICS_UNIT, {**variables, "prober_release": "0.1.0-x"})
    instance = re.search(r"--instance-id (\S+)", unit)[1]
    alarms = [a for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if a.inputs["namespace"] == hm.NAMESPACE]
    assert {a.inputs["metricName"] for a in alarms} <= {m.name for m in hm.ALL}
    assert alarms and all(a.inputs["dimensions"] == {hm.DIMENSION: instance} for a in alarms)
    assert instance == run.outputs["db_instance_id"]


def test_the_cost_model_counts_the_metrics_the_hosts_publish(run, inventory):
    from lighthouse_ops.hostmetrics import contract as hm

    agent = 0
    for host in inventory["_meta"]["hostvars"]:  # one CloudWatch metric per dimension value
        collected = agent_config(inventory, host)[0]["metrics"]["metrics_collected"]
        agent += len(collected["disk"]["measurement"]) * len(collected["disk"]["resources"])
        agent += len(collected["mem"]["measurement"]) + len(collected["swap"]["measurement"])
    assert agent + len(hm.ALL) == run.cfg.custom_metric_count


def test_db_logs_ship_to_the_stacks_log_group_with_retention(run, inventory):
    group = run.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert group["retentionInDays"] == run.cfg.monitoring.log_retention_days
    config, _ = agent_config(inventory, "db-1")
    shipped = {f["file_path"]: f["log_group_name"]
               for f in config["logs"]["logs_collected"]["files"]["collect_list"]}
    assert set(shipped) == {"/var/log/postgresql/postgresql-*.log", "/var/log/pgbackrest/*.log"}
    assert set(shipped.values()) == {group["name"]}


def expand(variables: dict, expression: str):
    return Templar(loader=DataLoader(), variables=_trusted(variables)).template(
        trust_as_template(expression))


def test_the_db_certificate_names_the_address_every_prober_verifies(run, inventory):
    """verify-full: the host each prober's DSN names is in the db server certificate's SAN."""
    san = expand(hostvars(inventory, "db-1", "timescaledb"), "{{ timescaledb_tls_san }}")
    names = san.split(",")
    for name in inventory["prober"]["hosts"]:
        variables = hostvars(inventory, name, "prober")
        config = yaml.safe_load(render(PROBER_TEMPLATE, {
            **variables, "prober_db_password": "x" * 20}))  # noqa: S106 - not a secret
        dsn = config["database"]["dsn"]
        assert "sslmode=verify-full&sslrootcert=/etc/lighthouse/db-ca.crt" in dsn
        assert f"IP:{variables['prober_db_host']}" in names, (variables["prober_db_host"], san)
        # its HTTP server binds loopback and the instance's private address, not 0.0.0.0
        assert config["http"]["listen"] == ["127.0.0.1", variables["private_ip"]]
        # the sms channel publishes through SNS in the stack's own region
        assert config["alerting"]["sns_region"] == variables["lighthouse_aws_region"] != ""


def test_each_rendered_prober_config_loads_as_a_fleet_member_of_its_region(inventory, tmp_path):
    """The prober accepts the config the role renders from the stack's inventory as it is; each
    prober is a fleet member named after its host and located in the stack's region."""
    for name in inventory["prober"]["hosts"]:
        variables = hostvars(inventory, name, "prober")
        config = yaml.safe_load(render(PROBER_TEMPLATE, {
            **variables, "prober_db_password": "x" * 20}))  # noqa: S106 - not a secret
        assert config["fleet"] == {"enabled": True, "name": name,
                                   "location": variables["lighthouse_aws_region"],
                                   "lease_s": 15.0}
        rendered = tmp_path / f"{name}.yaml"
        rendered.write_text(yaml.safe_dump(config))
        loaded = lighthouse_config.load(rendered, env={})
        assert (loaded.fleet.name, loaded.fleet.location) == (name, config["fleet"]["location"])
