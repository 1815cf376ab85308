"""AnsibleHostOps builds the right ansible/ansible-playbook command lines (checked with a
fake ansible that records its argv), reports failures with the tail of the output, and
its packaged playbooks pass Ansible's syntax check. HostVerifier polls until healthy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lighthouse_ops.aws.hostops import PLAYBOOKS, REPO_ROOT, AnsibleHostOps, HostOpsError
from lighthouse_ops.aws.verify import HostVerifier, VerificationFailed, require_ok
from lighthouse_ops.aws.waiters import Backoff

from tests.integration.aws.fakes import FakeClock

FAKE = """#!{python}
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_FAIL"):
    print("fatal: [db-1]: UNREACHABLE! => ssh: connect to host 10.0.0.1 port 22: refused")
    sys.exit(4)
print(os.environ.get("FAKE_OUT", "db-1 | CHANGED | rc=0 >>"))
"""


@pytest.fixture
def fake(tmp_path):
    script = tmp_path / "fake-ansible"
    script.write_text(FAKE.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "argv.log"
    ops = AnsibleHostOps(inventory=tmp_path / "hosts.yml", ansible_bin=str(script),
                         playbook_bin=str(script), extra_env={"FAKE_LOG": str(log)})
    ops.calls = lambda: [json.loads(line) for line in log.read_text().splitlines()]
    return ops


def test_database_stop_start_are_systemd_adhoc_calls(fake):
    fake.stop_database()
    fake.start_database()
    inv = str(fake.inventory)
    assert fake.calls() == [
        ["db", "-i", inv, "--become", "-m", "ansible.builtin.systemd_service",
         "-a", "name=postgresql@17-main state=stopped"],
        ["db", "-i", inv, "--become", "-m", "ansible.builtin.systemd_service",
         "-a", "name=postgresql@17-main state=started"]]


def test_grow_runs_the_data_volume_role_and_restore_mounts_by_device(fake):
    fake.grow_filesystem("vol-0abc", "/data")
    fake.mount_volume("vol-0def", "/dev/sdg", "/mnt/restore")
    grow, mount = fake.calls()
    assert grow[-1] == str(PLAYBOOKS / "data_volume.yml")
    assert json.loads(grow[grow.index("-e") + 1]) == {
        "target": "db", "data_volume_ebs_volume_id": "vol-0abc",
        "data_volume_mount_point": "/data"}
    assert mount[-1] == str(PLAYBOOKS / "mount_volume.yml")
    assert json.loads(mount[mount.index("-e") + 1])["device"] == "/dev/sdg"
    assert grow[:4] == ["-i", str(fake.inventory), "--limit", "db"]


def test_failure_carries_the_output_tail(fake):
    fake.extra_env["FAKE_FAIL"] = "1"
    with pytest.raises(HostOpsError, match="(?s)exited 4:.*UNREACHABLE"):
        fake.stop_database()


def test_filesystem_size_parses_df(fake):
    fake.extra_env["FAKE_OUT"] = "db-1 | CHANGED | rc=0 >>\n    Size\n42949672960"
    assert fake.filesystem_size_gib("/data") == 40.0


def test_packaged_playbooks_pass_syntax_check():
    for name in ("data_volume.yml", "mount_volume.yml"):
        got = subprocess.run(
            [str(Path(sys.executable).with_name("ansible-playbook")), "--syntax-check",
             "-i", "localhost,", str(PLAYBOOKS / name)],
            capture_output=True, text=True, check=False, cwd=REPO_ROOT,
            env={"ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"), "PATH": "/usr/bin:/bin",
                 "HOME": str(Path.home())})
        assert got.returncode == 0, got.stderr


def test_host_verifier_polls_until_healthy_then_reports():
    calls: list[tuple[str, str]] = []
    failures = {"db": 2}

    def adhoc(host: str, module: str, args: str) -> str:
        calls.append((host, module))
        if failures.get(host, 0) > 0:
            failures[host] -= 1
            raise HostOpsError("db-1 | FAILED | rc=2 >>\n/var/run/postgresql:5432 - no response")
        return "ok"

    verifier = HostVerifier(run_adhoc=adhoc, clock=FakeClock())
    result = require_ok(verifier)
    assert "postgresql ok (pg_isready on db)" in result and "prober ok" in result
    assert calls.count(("db", "ansible.builtin.command")) == 3
    assert ("prober", "ansible.builtin.uri") in calls


def test_host_verifier_gives_up_with_the_last_error():
    def adhoc(host: str, module: str, args: str) -> str:
        if host == "prober":
            raise HostOpsError("prober-1 | FAILED! => Status code was 503")
        return "ok"

    verifier = HostVerifier(run_adhoc=adhoc, clock=FakeClock(),
                            backoff=Backoff(timeout_s=20, initial_s=5))
    with pytest.raises(VerificationFailed, match="prober: prober-1 .*503"):
        require_ok(verifier)


def test_a_pattern_matching_no_host_is_an_error_not_a_silent_success(fake):
    fake.extra_env["FAKE_OUT"] = "[WARNING]: No hosts matched, nothing to do"
    with pytest.raises(HostOpsError, match="no host in .* matches 'db'"):
        fake.start_database()
