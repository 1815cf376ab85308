"""Network namespaces, veth pairs and forwarding for sandbox hosts.

Each host lives in netns `lhsb-<sandbox>-<host>` with `eth0` (host side of a veth pair) on its
own /30; the controller keeps the other end. Hosts get one route, to the sandbox pool via the
controller, and no default route: they reach the controller (apt proxy, local test servers) and
each other (prober -> db), nothing else. Forwarding between hosts is allowed by an iptables
chain that only accepts pool-to-pool traffic between our veths.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from lighthouse_ops.sandbox import paths
from lighthouse_ops.sandbox.addressing import POOL, Link, choose_slot
from lighthouse_ops.sandbox.commands import run
from lighthouse_ops.sandbox.rootfs import file_lock

log = logging.getLogger("lighthouse_ops.sandbox")

CHAIN = "LIGHTHOUSE-SANDBOX"
_ALLOC = "allocations.json"


def _alloc_file() -> Path:
    return paths.STATE_ROOT / _ALLOC


def _read_allocations() -> dict[str, int]:
    try:
        return json.loads(_alloc_file().read_text())
    except FileNotFoundError:
        return {}


def _write_allocations(data: dict[str, int]) -> None:
    tmp = _alloc_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(_alloc_file())


def allocate(sandbox: str, host: str) -> Link:
    with file_lock(paths.STATE_ROOT / "allocations.lock"):
        data = _read_allocations()
        slot = choose_slot(sandbox, host, data)
        data[f"{sandbox}/{host}"] = slot
        _write_allocations(data)
    return Link(slot)


def release(sandbox: str, host: str | None = None) -> None:
    """Forget one host's allocation, or every allocation of the sandbox when host is None."""
    with file_lock(paths.STATE_ROOT / "allocations.lock"):
        data = _read_allocations()
        for key in list(data):
            if (host is None and key.startswith(f"{sandbox}/")) or key == f"{sandbox}/{host}":
                del data[key]
        _write_allocations(data)


def allocations() -> dict[str, int]:
    with file_lock(paths.STATE_ROOT / "allocations.lock"):
        return _read_allocations()


def netns_name(sandbox: str, host: str) -> str:
    return f"lhsb-{sandbox}-{host}"


def netns_exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def link_exists(ifname: str) -> bool:
    return Path("/sys/class/net", ifname).exists()


def create(ns: str, link: Link) -> None:
    """netns + veth pair with addresses, lo and eth0 up, route to the pool (idempotent)."""
    if not netns_exists(ns):
        run(["ip", "netns", "add", ns])
    if not link_exists(link.controller_if):
        run(["ip", "link", "add", link.controller_if, "type", "veth", "peer", "name",
             link.peer_if])
        run(["ip", "link", "set", link.peer_if, "netns", ns])
        run(["ip", "-n", ns, "link", "set", link.peer_if, "name", "eth0"])
        run(["ip", "addr", "add", f"{link.controller_ip}/30", "dev", link.controller_if])
        run(["ip", "-n", ns, "addr", "add", f"{link.host_ip}/30", "dev", "eth0"])
    run(["ip", "link", "set", link.controller_if, "up"])
    # systemd inside may not configure lo in a netns it did not create: do it from outside.
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    run(["ip", "-n", ns, "route", "replace", str(POOL), "via", link.controller_ip])


def destroy(ns: str, link: Link) -> None:
    """Kill whatever still runs in the netns, then delete it and the veth pair."""
    if netns_exists(ns):
        pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            run(["kill", "-KILL", pid], check=False)
        run(["ip", "netns", "del", ns], check=False)
    if link_exists(link.controller_if):
        run(["ip", "link", "del", link.controller_if], check=False)


def ensure_forwarding() -> None:
    """Let hosts reach each other through the controller, and nothing beyond the pool."""
    if run(["iptables", "-n", "-L", CHAIN], check=False).returncode != 0:
        run(["iptables", "-N", CHAIN])
        run(["iptables", "-A", CHAIN, "-i", "lhsb+", "-o", "lhsb+", "-s", str(POOL),
             "-d", str(POOL), "-j", "ACCEPT"])
        run(["iptables", "-A", CHAIN, "-i", "lhsb+", "-j", "DROP"])
        run(["iptables", "-A", CHAIN, "-o", "lhsb+", "-j", "DROP"])
    if run(["iptables", "-C", "FORWARD", "-j", CHAIN], check=False).returncode != 0:
        run(["iptables", "-I", "FORWARD", "1", "-j", CHAIN])
    flag = Path("/proc/sys/net/ipv4/ip_forward")
    marker = paths.STATE_ROOT / "ip_forward.before"
    if not marker.exists():
        marker.write_text(flag.read_text())
    flag.write_text("1\n")


def remove_forwarding() -> None:
    """Undo ensure_forwarding once no sandbox is left (restores ip_forward's prior value)."""
    while run(["iptables", "-D", "FORWARD", "-j", CHAIN], check=False).returncode == 0:
        pass
    run(["iptables", "-F", CHAIN], check=False)
    run(["iptables", "-X", CHAIN], check=False)
    marker = paths.STATE_ROOT / "ip_forward.before"
    if marker.exists():
        Path("/proc/sys/net/ipv4/ip_forward").write_text(marker.read_text())
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()
