"""dev-sec ssh-baseline on every converged host, read from what sshd actually uses (`sshd -T`),
one test per control."""

from __future__ import annotations

import pytest

from tests.hosts.deploy_support import converged_site

WEAK = {"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1",
        "diffie-hellman-group-exchange-sha1", "hmac-sha1", "hmac-sha1-etm@openssh.com",
        "hmac-md5", "hmac-md5-etm@openssh.com", "umac-64@openssh.com",
        "umac-64-etm@openssh.com"}


def weak(algorithm: str) -> bool:
    return algorithm in WEAK or algorithm.endswith("-cbc") or algorithm.startswith("arcfour")
CONTROLS = {
    "x11forwarding": "no", "allowtcpforwarding": "no", "allowagentforwarding": "no",
    "allowstreamlocalforwarding": "no", "permittunnel": "no", "gatewayports": "no",
    "passwordauthentication": "no", "kbdinteractiveauthentication": "no",
    "permitemptypasswords": "no", "permituserenvironment": "no", "compression": "no",
    "maxauthtries": "3", "logingracetime": "30", "clientaliveinterval": "300",
    "loglevel": "VERBOSE",
    # the sandbox logs in as root with its key; EC2 hosts get "no" (role default)
    "permitrootlogin": "without-password",
}


@pytest.fixture(scope="module")
def sshd(sandbox, host_connection) -> dict[str, dict[str, str]]:
    converged_site(sandbox)
    out = {}
    for name in ("db-1", "prober-1"):
        text = host_connection(name).check_output("sshd -T")
        out[name] = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    return out


@pytest.mark.parametrize("setting", sorted(CONTROLS))
def test_sshd_setting(sshd, setting) -> None:
    for host, conf in sshd.items():
        assert conf[setting] == CONTROLS[setting], f"{host}: {setting} = {conf[setting]}"


@pytest.mark.parametrize("setting", ["ciphers", "macs", "kexalgorithms"])
def test_sshd_offers_no_weak_algorithm(sshd, setting) -> None:
    for host, conf in sshd.items():
        found = [a for a in conf[setting].split(",") if weak(a)]
        assert not found, f"{host}: weak {setting}: {found}"
