"""apt-cacher-ng for sandbox hosts: their only way out, to Debian's mirror and nothing else.

One instance serves every sandbox on this machine, so .debs fetched for one sandbox (or run)
are local for all the others. It listens only on SERVICE_IP (10.213.255.253, added to the
controller's `lo`: this kernel has no dummy interfaces), which every host reaches through its
route to the pool, on port PORT
(not apt-cacher-ng's default 3142, so a system-wide instance does not clash). `ForceManaged`
refuses every URL outside the two Debian remaps below and CONNECT tunnels are refused, so
hosts need no DNS, no NAT and no https. The first `up` starts it, the last `down` stops it;
the cache directory (CACHE_ROOT/apt) stays.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from lighthouse_ops.sandbox import paths
from lighthouse_ops.sandbox.addressing import SERVICE_IP
from lighthouse_ops.sandbox.commands import run
from lighthouse_ops.sandbox.errors import CapabilityError, SandboxError
from lighthouse_ops.sandbox.process import alive, terminate
from lighthouse_ops.sandbox.rootfs import file_lock

log = logging.getLogger("lighthouse_ops.sandbox")

PORT = 13142
BINARY = "/usr/sbin/apt-cacher-ng"
USER = "apt-cacher-ng"
INTERFACE = "lo"
URL = f"http://{SERVICE_IP}:{PORT}/"


def config_text(cache_dir: Path, log_dir: Path) -> str:
    return "\n".join(
        [
            f"CacheDir: {cache_dir}",
            f"LogDir: {log_dir}",
            "SupportDir: /usr/lib/apt-cacher-ng",
            f"Port: {PORT}",
            f"BindAddress: {SERVICE_IP}",
            "ForeGround: 1",
            "ExThreshold: 4",
            # Only Debian's mirror, over plain http; nothing is tunnelled.
            "Remap-debrep: deb.debian.org/debian ; http://deb.debian.org/debian",
            "Remap-secdeb: deb.debian.org/debian-security ; http://deb.debian.org/debian-security",
            "ForceManaged: 1",
            "PassThroughPattern: ^$",
            "",
        ]
    )


def _dir() -> Path:
    return paths.STATE_ROOT / "apt-proxy"


def _lock() -> contextlib.AbstractContextManager[None]:
    return file_lock(paths.STATE_ROOT / "locks" / "apt-proxy.lock")


def _pid() -> int | None:
    try:
        pid = json.loads((_dir() / "state.json").read_text())["pid"]
    except (FileNotFoundError, KeyError, ValueError):
        return None
    return pid if alive(pid, "apt-cacher-ng") else None


def running() -> bool:
    return _pid() is not None


def _listening() -> bool:
    with contextlib.suppress(OSError), socket.create_connection((SERVICE_IP, PORT), timeout=1):
        return True
    return False


def ensure() -> int:
    """Start the shared proxy unless it runs; return its PID once it listens."""
    if not Path(BINARY).exists():
        raise CapabilityError(f"{BINARY} is missing (apt-get install apt-cacher-ng)")
    with _lock():
        pid = _pid()
        if pid:
            return pid
        run(["ip", "addr", "replace", f"{SERVICE_IP}/32", "dev", INTERFACE])
        conf_dir, log_dir, cache_dir = _dir(), _dir() / "log", paths.CACHE_ROOT / "apt"
        for d in (conf_dir, log_dir, cache_dir):
            d.mkdir(parents=True, exist_ok=True)
        (conf_dir / "acng.conf").write_text(config_text(cache_dir, log_dir))
        try:
            account = pwd.getpwnam(USER)
            uid, gid = account.pw_uid, account.pw_gid
        except KeyError:  # the package creates it; run as root if someone removed it
            uid, gid = 0, 0
        for d in (log_dir, cache_dir):
            os.chown(d, uid, gid)
        with (conf_dir / "console.log").open("ab") as console:
            proc = subprocess.Popen(
                [BINARY, "-c", str(conf_dir)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=uid,
                group=gid,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SandboxError(f"apt-cacher-ng exited with {proc.returncode}; "
                                   f"see {conf_dir / 'console.log'}")
            if _listening():
                (conf_dir / "state.json").write_text(json.dumps({"pid": proc.pid}) + "\n")
                log.info("apt proxy up pid=%d url=%s", proc.pid, URL)
                return proc.pid
            time.sleep(0.1)
        terminate(proc.pid, "apt-cacher-ng", grace=2)
        raise SandboxError(f"apt-cacher-ng did not listen on {SERVICE_IP}:{PORT} within 15 s")


def stop_if_unused(in_use: bool) -> None:
    """Stop the proxy and remove its interface when no sandbox host is left (in_use False)."""
    with _lock():
        if in_use:
            return
        pid = _pid()
        if pid:
            terminate(pid, "apt-cacher-ng", grace=5)
        for proc_dir in Path("/proc").iterdir():  # an instance whose state file was lost
            if proc_dir.name.isdigit():
                with contextlib.suppress(OSError):
                    cmd = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    if f"-c {_dir()}" in cmd and BINARY in cmd:
                        terminate(int(proc_dir.name), "apt-cacher-ng", grace=5)
        run(["ip", "addr", "del", f"{SERVICE_IP}/32", "dev", INTERFACE], check=False)
        shutil.rmtree(_dir(), ignore_errors=True)
        log.info("apt proxy stopped")
