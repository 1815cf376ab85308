from pathlib import Path

import yaml
from lighthouse_ops.sandbox import Host
from lighthouse_ops.sandbox.inventory import render_inventory, render_ssh_config

KEY = Path("/var/lib/lighthouse-sandbox/sandboxes/local/id_ed25519")


def host(name: str, role: str, index: int, slot: int) -> Host:
    return Host(
        name=name, role=role, index=index, ip=f"10.213.0.{4 * slot + 2}",
        controller_ip=f"10.213.0.{4 * slot + 1}", ssh_key=KEY, netns=f"lhsb-local-{name}",
        slot=slot, rootfs=Path("/x"), console_log=Path("/y"),
    )


HOSTS = [host("prober-1", "prober", 1, 3), host("db-2", "db", 2, 2), host("db-1", "db", 1, 1)]


def test_inventory_groups_hosts_by_role_with_connection_vars() -> None:
    inv = yaml.safe_load(render_inventory("local", HOSTS, KEY))
    assert list(inv["all"]["children"]["db"]["hosts"]) == ["db-1", "db-2"]
    assert inv["all"]["children"]["prober"]["hosts"]["prober-1"] == {
        "ansible_host": "10.213.0.14",
        "controller_ip": "10.213.0.13",
    }
    v = inv["all"]["vars"]
    assert v["ansible_user"] == "root"
    assert v["ansible_ssh_private_key_file"] == str(KEY)
    assert "StrictHostKeyChecking=no" in v["ansible_ssh_common_args"]
    assert v["lighthouse_sandbox"] == "local"


def test_empty_role_groups_still_exist() -> None:
    inv = yaml.safe_load(render_inventory("x", [HOSTS[2]], KEY))
    assert inv["all"]["children"]["prober"] == {"hosts": {}}


def test_ssh_config_names_every_host() -> None:
    text = render_ssh_config(HOSTS, KEY)
    assert "Host db-1\n  HostName 10.213.0.6\n  User root\n" in text
    assert text.count("IdentityFile") == 3
