"""The session sandbox: systemd as PID 1, SSH by key only, addresses, names and apt proxy."""

from __future__ import annotations

import ipaddress

from lighthouse_ops.sandbox import Sandbox


def test_hosts_boot_systemd_and_sshd(sandbox: Sandbox, host_connection) -> None:
    for name in ("db-1", "prober-1"):
        host = host_connection(name)
        assert host.check_output("hostname") == name
        assert host.check_output("cat /proc/1/comm") == "systemd"
        state = host.run("systemctl is-system-running --wait").stdout.strip()
        assert state == "running", host.run("systemctl --failed; journalctl -b -p warning").stdout
        assert host.service("ssh").is_running
        assert host.socket("tcp://22").is_listening
        assert "trixie" in host.file("/etc/os-release").content_string


def test_root_login_by_key_only(sandbox: Sandbox, db_host) -> None:
    config = db_host.check_output("sshd -T")
    assert "permitrootlogin without-password" in config
    assert "passwordauthentication no" in config


def test_each_host_has_its_own_slash30_and_sees_siblings(sandbox, sandbox_hosts) -> None:
    db, prober = sandbox_hosts["db-1"], sandbox_hosts["prober-1"]
    for h in (db, prober):
        net = ipaddress.ip_network(f"{h.ip}/30", strict=False)
        assert ipaddress.ip_address(h.controller_ip) in net
        assert ipaddress.ip_network("10.213.0.0/16").supernet_of(net)
    assert db.ip != prober.ip
    # prober reaches db by name through the controller (what the prober -> PostgreSQL path needs)
    out = sandbox.ssh(
        "prober-1", "getent hosts db-1 && bash -c 'echo > /dev/tcp/db-1/22' && echo ok"
    )
    assert db.ip in out.stdout and "ok" in out.stdout


def test_apt_reaches_debian_only_through_the_proxy(sandbox: Sandbox) -> None:
    sandbox.ssh("db-1", "apt-get update -qq")
    probe = (
        "import urllib.request as u\n"
        "o = u.build_opener(u.ProxyHandler({'http': 'http://apt-proxy:13142'}))\n"
        "try:\n    o.open('http://example.com/', timeout=10); print('open')\n"
        "except Exception as e:\n    print('refused', e)\n"
    )
    assert sandbox.ssh("db-1", "python3 -", input_text=probe).stdout.startswith("refused")
    # no route out: a direct connection to the internet fails at once
    direct = sandbox.ssh("db-1", "timeout 5 bash -c 'echo > /dev/tcp/1.1.1.1/80'", check=False)
    assert direct.returncode != 0


def test_inventory_lists_hosts_by_role(sandbox: Sandbox, sandbox_hosts) -> None:
    import yaml

    inv = yaml.safe_load(sandbox.inventory_path.read_text())
    groups = inv["all"]["children"]
    assert groups["db"]["hosts"]["db-1"]["ansible_host"] == sandbox_hosts["db-1"].ip
    assert groups["prober"]["hosts"]["prober-1"]["controller_ip"] == (
        sandbox_hosts["prober-1"].controller_ip
    )
    assert inv["all"]["vars"]["ansible_ssh_private_key_file"] == str(sandbox.ssh_key)


def test_second_up_is_a_no_op(sandbox: Sandbox, sandbox_hosts) -> None:
    before = sandbox.inventory_path.read_text()
    sandbox.inventory_path.unlink()  # as in a fresh clone that finds the hosts running
    again = {h.name: h for h in sandbox.up(db=1, prober=1)}
    assert {n: h.nspawn_pid for n, h in again.items()} == {
        n: h.nspawn_pid for n, h in sandbox_hosts.items()
    }
    assert sandbox.inventory_path.read_text() == before
