"""Filters shared by every role: how hosts of the inventory reach each other."""

from __future__ import annotations

from typing import Any


def private_addresses(names: list[str], hostvars: Any) -> list[str]:
    """Each host's address on the private network: `private_ip` (the Pulumi-generated
    inventory sets it), else `ansible_host` (the sandbox: one address per host)."""
    out = []
    for name in names:
        host = hostvars[name]
        out.append(str(host.get("private_ip") or host["ansible_host"]))
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"private_addresses": private_addresses}
