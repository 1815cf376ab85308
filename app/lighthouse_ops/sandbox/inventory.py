"""Ansible inventory and ssh_config for a sandbox's hosts (pure rendering, no side effects)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from lighthouse_ops.sandbox.core import Host

SSH_COMMON_ARGS = (
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"
)
ROLES = ("db", "prober")


def render_inventory(sandbox: str, hosts: Sequence[Host], key: Path) -> str:
    groups: dict[str, dict] = {role: {"hosts": {}} for role in ROLES}
    for h in sorted(hosts, key=lambda h: (h.role, h.index)):
        groups.setdefault(h.role, {"hosts": {}})["hosts"][h.name] = {
            "ansible_host": h.ip,
            "controller_ip": h.controller_ip,
        }
    doc = {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": SSH_COMMON_ARGS,
                "ansible_python_interpreter": "/usr/bin/python3",
                "lighthouse_sandbox": sandbox,
            },
            "children": groups,
        }
    }
    header = f"# Written by `invoke sandbox.up --name {sandbox}`; do not edit (rewritten on up).\n"
    return header + yaml.safe_dump(doc, sort_keys=False)


def render_ssh_config(hosts: Sequence[Host], key: Path) -> str:
    """`ssh -F <this file> db-1` works without further options."""
    blocks = []
    for h in sorted(hosts, key=lambda h: h.name):
        blocks.append(
            f"Host {h.name}\n  HostName {h.ip}\n  User root\n  IdentityFile {key}\n"
            "  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        )
    return "\n".join(blocks)
