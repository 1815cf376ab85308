"""The data volume grows like an enlarged EBS volume: the sandbox disk is made larger, the
data_volume playbook grows ext4 online, and a second run changes nothing."""

from __future__ import annotations

import pytest

from tests.hosts.deploy_support import converged_site

MIB = 1 << 20
CAP_SYS_RESOURCE = 24  # online ext4 resize (EXT4_IOC_RESIZE_FS) needs it


def fs_bytes(db_host) -> int:
    return int(db_host.check_output("df --output=size -B1 /data | tail -1").strip())


def test_grown_device_grows_filesystem_online(sandbox, db_host) -> None:
    site = converged_site(sandbox)
    bounding = int(db_host.check_output("awk '/^CapBnd/ {print $2}' /proc/self/status"), 16)
    if not bounding & (1 << CAP_SYS_RESOURCE):
        pytest.skip("sandbox hosts lack CAP_SYS_RESOURCE (this machine's root has none to pass "
                    "on), so resize2fs cannot grow a mounted ext4 here; EC2 hosts have it")
    before = fs_bytes(db_host)
    sandbox.grow_disk("db-1", "/dev/xvdf", 3072)
    grown = site.dep.playbook("data_volume.yml", {"target": "db-1"}, echo=False)
    assert grown.recap["db-1"]["changed"] >= 1
    after = fs_bytes(db_host)
    assert after - before > 900 * MIB, (before, after)
    again = site.dep.playbook("data_volume.yml", {"target": "db-1"}, echo=False)
    assert again.changed == 0
    assert db_host.service("postgresql@17-main").is_running
