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


def test_xfs_volume_is_made_mounted_and_grown_online(sandbox, db_host) -> None:
    """The role's xfs path end to end on a second disk: mkfs on an empty device, mount by UUID,
    online growth after the device grew, data intact, then nothing left to change.

    xfs_growfs needs CAP_SYS_ADMIN (which sandbox hosts have), not CAP_SYS_RESOURCE, so this
    runs on machines where the ext4 test above must skip.
    """
    from lighthouse_ops.sandbox import disks

    site = converged_site(sandbox)
    device, mount = "/dev/xvdg", "/srv/grow-xfs"
    major, minor = disks.major_minor(sandbox.attach_disk("db-1", device, 1024))
    extra = {"target": "db-1", "data_volume_device": device, "data_volume_fstype": "xfs",
             "data_volume_mount_point": mount, "data_volume_label": "grow-test",
             "data_volume_create_node": {"major": major, "minor": minor}}
    try:
        made = site.dep.playbook("data_volume.yml", extra, echo=False)
        assert made.recap["db-1"]["changed"] >= 1
        assert db_host.mount_point(mount).filesystem == "xfs"
        uuid = db_host.check_output(f"blkid -p -o value -s UUID {device}").strip()
        assert db_host.file("/etc/fstab").contains(f"^UUID={uuid} {mount} xfs ")
        db_host.run_expect([0], f"echo kept > {mount}/marker")
        before = fs_bytes_at(db_host, mount)

        sandbox.grow_disk("db-1", device, 2048)
        grown = site.dep.playbook("data_volume.yml", extra, echo=False)
        assert grown.recap["db-1"]["changed"] >= 1
        after = fs_bytes_at(db_host, mount)
        assert after - before > 900 * MIB, (before, after)
        assert db_host.file(f"{mount}/marker").content_string == "kept\n"
        # Same UUID: grown in place, never reformatted.
        assert db_host.check_output(f"blkid -p -o value -s UUID {device}").strip() == uuid

        again = site.dep.playbook("data_volume.yml", extra, echo=False)
        assert again.changed == 0
    finally:
        db_host.run(f"umount {mount}; sed -i '\\# {mount} #d' /etc/fstab; rm -f {device}")


def fs_bytes_at(db_host, mount: str) -> int:
    return int(db_host.check_output(f"df --output=size -B1 {mount} | tail -1").strip())
