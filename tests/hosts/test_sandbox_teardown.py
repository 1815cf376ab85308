"""`down` removes everything `up` made: processes, network namespaces, veths, mounts, loop
devices, state. On the way, the EBS stand-in disk is checked: mkfs, mount, grow.

Uses its own small sandbox so the shared `pytest` sandbox keeps running for other tests.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from invoke import Program
from lighthouse_ops.sandbox import Sandbox, paths
from lighthouse_ops.sandbox.commands import run
from lighthouse_ops.sandbox.network import allocations
from lighthouse_ops.sandbox.rootfs import mounts_under

from tests.hosts.conftest import own_sandbox_name, sandbox_capability_or_skip, session_lock
from tests.unit.tasks.test_flag_contract import NS


def _pid_exists(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_down_leaves_nothing_behind() -> None:
    sandbox_capability_or_skip()
    with session_lock(own_sandbox_name("down")):
        sb = Sandbox(own_sandbox_name("down"))
        try:
            check_up_then_down(sb)
        finally:
            sb.down()


def run_down(sb: Sandbox, *flags: str) -> str:
    """`invoke sandbox.down` as an operator types it; its output (and any refusal)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        Program(namespace=NS, version="0").run(
            ["invoke", "sandbox.down", "--name", sb.name, *flags], exit=False)
    return out.getvalue()


def check_up_then_down(sb: Sandbox) -> None:
    sb.down()
    hosts = sb.up(db=1, prober=1)
    made = {
        "pids": [p for h in hosts for p in (h.nspawn_pid, h.leader_pid) if p],
        "netns": [h.netns for h in hosts],
        "links": [h.link.controller_if for h in hosts],
    }
    assert all(_pid_exists(p) for p in made["pids"])
    assert all(Path("/run/netns", ns).exists() for ns in made["netns"])
    assert all(Path("/sys/class/net", ifname).exists() for ifname in made["links"])
    assert mounts_under(sb.dir)  # the overlay root filesystems
    assert sb.inventory_path.exists()

    # a reboot inside brings the host back by itself, with a new systemd
    old_init = sb.host("db-1").leader_pid
    sb.reboot("db-1")
    new = sb.host("db-1")
    assert new.leader_pid != old_init and new.running()
    assert sb.ssh("db-1", "systemctl is-system-running --wait").stdout.strip() == "running"
    made["pids"].append(new.leader_pid)

    loop = sb.attach_disk("db-1", "/dev/xvdf", size_mb=64)
    assert sb.attach_disk("db-1", "/dev/xvdf", size_mb=64) == loop  # idempotent
    sb.ssh("db-1", "DEBIAN_FRONTEND=noninteractive apt-get update -qq && "
           "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq e2fsprogs >/dev/null",
           timeout=600)
    out = sb.ssh("db-1", "mkfs.ext4 -q /dev/xvdf && mkdir -p /data && mount /dev/xvdf /data && "
                 "echo kept > /data/f && umount /data && mount /dev/xvdf /data && cat /data/f")
    assert out.stdout.strip() == "kept"
    sb.grow_disk("db-1", "/dev/xvdf", size_mb=96)
    assert sb.ssh("db-1", "blockdev --getsize64 /dev/xvdf").stdout.strip() == str(96 * 2**20)
    # (online ext4 growth needs CAP_SYS_RESOURCE, which this VM withholds: docs/sandbox.md)
    sb.ssh("db-1", "umount /data && e2fsck -fy /dev/xvdf >/dev/null && "
           "resize2fs /dev/xvdf >/dev/null 2>&1 && mount /dev/xvdf /data")
    assert int(sb.ssh("db-1", "df -k --output=size /data | tail -1").stdout) > 80 * 1024

    # the runbook: -n shows the plan and removes nothing; without a terminal and without -y it
    # refuses; -y removes
    out = run_down(sb, "-n")
    assert "host db-1 (db" in out and "dry run, nothing changed" in out, out
    assert "not confirmed" in run_down(sb)
    assert all(h.running() for h in sb.hosts()) and sb.inventory_path.exists()
    assert f"{len(hosts)} host(s) removed" in run_down(sb, "-y")

    assert [p for p in made["pids"] if _pid_exists(p)] == []
    assert [ns for ns in made["netns"] if Path("/run/netns", ns).exists()] == []
    assert [i for i in made["links"] if Path("/sys/class/net", i).exists()] == []
    assert mounts_under(sb.dir) == []
    assert not sb.dir.exists()
    assert not sb.inventory_path.exists()
    assert not [k for k in allocations() if k.startswith(f"{sb.name}/")]
    assert str(sb.dir) not in run(["losetup", "--list"]).stdout
    assert sb.status() == {}
    # the caches stay, so the next `up` is fast
    assert any(paths.CACHE_ROOT.glob("rootfs-*.tar.zst"))
    sb.down()  # a second down is harmless
