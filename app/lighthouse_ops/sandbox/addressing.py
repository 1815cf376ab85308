"""Private /30 per sandbox host, from a /16 that exists only on this machine.

Each (sandbox, host) gets a slot: a /30 whose first address is the controller's side of the veth
pair and whose second is the host's. The slot is a hash of the name, probed linearly past slots
already taken, so allocation is deterministic and never collides; allocations are recorded in a
state file (see network.allocate) so concurrent sandboxes agree.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

POOL = ipaddress.IPv4Network("10.213.0.0/16")
# The last /30 is kept for the controller's shared services (the apt proxy's address).
SLOTS = POOL.num_addresses // 4 - 1
SERVICE_IP = str(POOL.network_address + 4 * SLOTS + 1)  # 10.213.255.253


@dataclass(frozen=True)
class Link:
    """Addresses and interface names of one host's veth pair."""

    slot: int

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network((int(POOL.network_address) + 4 * self.slot, 30))

    @property
    def controller_ip(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def host_ip(self) -> str:
        return str(self.network.network_address + 2)

    @property
    def controller_if(self) -> str:
        return f"lhsb{self.slot:04x}"  # <= 15 chars; the `lhsb` prefix marks ours

    @property
    def peer_if(self) -> str:
        return f"lhsb{self.slot:04x}p"  # renamed to eth0 once inside the host's netns


def preferred_slot(sandbox: str, host: str) -> int:
    digest = hashlib.sha256(f"{sandbox}/{host}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % SLOTS


def choose_slot(sandbox: str, host: str, taken: Mapping[str, int]) -> int:
    """Slot for sandbox/host given the current allocations {"sandbox/host": slot}."""
    key = f"{sandbox}/{host}"
    if key in taken:
        return taken[key]
    used = set(taken.values())
    if len(used) >= SLOTS:
        raise ValueError(f"address pool {POOL} is exhausted")
    slot = preferred_slot(sandbox, host)
    while slot in used:
        slot = (slot + 1) % SLOTS
    return slot
