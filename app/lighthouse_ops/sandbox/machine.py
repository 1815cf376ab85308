"""One sandbox host: its root filesystem prepared from outside, then systemd-nspawn --boot.

systemd runs as PID 1 in the host's own netns. nspawn needs `--register=no --keep-unit`
because this machine's PID 1 is not systemd (no machined, no system bus). nspawn is started
in its own session so it outlives the `invoke sandbox.up` that launched it, under a small
`sh` loop that starts it again when the host reboots (nspawn exits with 133 on reboot), as an
EC2 instance comes back after `reboot`. The loop's PID is kept in the sandbox state; the
console goes to <host dir>/console.log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from lighthouse_ops.sandbox.commands import run
from lighthouse_ops.sandbox.errors import SandboxError
from lighthouse_ops.sandbox.process import alive, children, terminate

NSPAWN = "systemd-nspawn"
REBOOT_EXIT = 133
# "$@" is the nspawn argv; any exit other than "rebooted" ends the loop.
SUPERVISOR = f'while :; do "$@"; rc=$?; [ "$rc" -eq {REBOOT_EXIT} ] || exit "$rc"; done'
# Timers that would take the dpkg lock at random moments during tests and deploys.
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer")


def ssh_options(key: Path) -> list[str]:
    return [
        "-i", str(key),
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "ConnectTimeout=5",
    ]


def configure_rootfs(
    rootfs: Path,
    *,
    hostname: str,
    hosts_lines: list[str],
    authorized_key: str,
    apt_proxy: str,
) -> None:
    """Write the per-host identity and settings into the tree before boot (idempotent)."""
    etc = rootfs / "etc"
    (etc / "hostname").write_text(hostname + "\n")
    write_hosts(rootfs, hostname, hosts_lines)
    resolv = etc / "resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text("# no DNS in sandbox hosts: apt goes through the controller's proxy\n")
    ssh_dir = rootfs / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(authorized_key.strip() + "\n")
    os.chmod(keys, 0o600)
    host_key = etc / "ssh/ssh_host_ed25519_key"
    if not host_key.exists():  # ed25519 only: RSA generation would cost ~1 s per host
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{hostname}",
             "-f", str(host_key)])
    (etc / "apt/apt.conf.d/01lighthouse-sandbox-proxy").write_text(
        f'Acquire::http::Proxy "{apt_proxy}";\nAcquire::https::Proxy "DIRECT";\n'
    )
    units = etc / "systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    for unit in MASKED_UNITS:
        link = units / unit
        if not link.is_symlink():
            link.symlink_to("/dev/null")


def write_hosts(rootfs: Path, hostname: str, lines: list[str]) -> None:
    text = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{hostname}", "::1\tlocalhost ip6-localhost",
            *lines, ""]
    (rootfs / "etc/hosts").write_text("\n".join(text))


def boot(rootfs: Path, *, netns: str, machine: str, hostname: str, console_log: Path) -> int:
    """Start systemd-nspawn --boot (under its reboot loop) in the background; return the
    loop's PID (its command line holds the nspawn argv, so `alive(pid, NSPAWN)` works)."""
    if shutil.which(NSPAWN) is None:
        from lighthouse_ops.sandbox.errors import CapabilityError

        raise CapabilityError("systemd-nspawn is missing (apt-get install systemd-container)")
    argv = [
        NSPAWN,
        f"--directory={rootfs}",
        "--boot",
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path=/run/netns/{netns}",
        f"--machine={machine}",
        f"--hostname={hostname}",
        "--console=read-only",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
    ]
    with console_log.open("ab") as out:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", SUPERVISOR, "lighthouse-sandbox-host", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def _nspawns(supervisor: int) -> list[int]:
    return [p for p in children(supervisor) if alive(p, NSPAWN)]


def leader(supervisor: int) -> tuple[int, str] | None:
    """(PID in our namespace, command line) of the container's init, once nspawn forked it."""
    for nspawn in _nspawns(supervisor):
        for pid in children(nspawn):
            with contextlib.suppress(FileNotFoundError):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                return pid, cmd
    return None


def wait_for_ssh(
    hosts: list[tuple[str, str, int, Path]], key: Path, timeout: float = 180
) -> dict[str, float]:
    """Wait until every (name, ip, nspawn_pid, console_log) answers `ssh true`.

    Returns seconds each took from the call. Fails fast, with the console tail, if nspawn exits.
    """
    started = time.monotonic()
    pending = {name: (ip, pid, log) for name, ip, pid, log in hosts}
    done: dict[str, float] = {}
    while pending:
        for name, (ip, pid, log) in list(pending.items()):
            if not alive(pid, NSPAWN):
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise SandboxError(f"host {name}: systemd-nspawn exited during boot:\n{tail}")
            if _port_open(ip, 22) and _ssh_ok(ip, key):
                done[name] = time.monotonic() - started
                del pending[name]
        if time.monotonic() - started > timeout:
            names = ", ".join(sorted(pending))
            raise SandboxError(f"hosts {names}: sshd did not answer within {timeout:.0f}s "
                               f"(console logs: {', '.join(str(v[2]) for v in pending.values())})")
        if pending:
            time.sleep(0.2)
    return done


def _port_open(ip: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((ip, port), timeout=0.5):
        return True
    return False


def _ssh_ok(ip: str, key: Path) -> bool:
    proc = subprocess.run(
        ["ssh", *ssh_options(key), f"root@{ip}", "true"],
        capture_output=True, timeout=30, check=False,
    )
    return proc.returncode == 0


def stop(
    supervisor: int | None, leader_pid: int | None, leader_marker: str = "", grace: float = 5
) -> None:
    """Stop the reboot loop, then kill the host's init: killing a pid-namespace init kills
    every process in that namespace at once. No clean poweroff: `down` throws the root
    filesystem away, and a poweroff with PostgreSQL and open SSH sessions took up to 30 s.
    nspawn then exits by itself (SIGTERM, then SIGKILL after grace seconds if not)."""
    if not supervisor:
        return
    nspawns, leaders = [], [(leader_pid, leader_marker)] if leader_pid else []
    if alive(supervisor, NSPAWN):
        nspawns = _nspawns(supervisor)
        current = leader(supervisor)  # after a reboot the recorded leader is stale
        if current:
            leaders.append(current)
        terminate(supervisor, NSPAWN, grace=0, sig=signal.SIGKILL)  # no restart from here on
    for pid, marker in leaders:
        if pid and alive(pid, marker):
            terminate(pid, marker, grace=0, sig=signal.SIGKILL)
    for pid in nspawns:
        deadline = time.monotonic() + grace
        while alive(pid, NSPAWN) and time.monotonic() < deadline:
            time.sleep(0.05)
        terminate(pid, NSPAWN, grace=grace)
