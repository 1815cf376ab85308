"""An Ansible inventory directory for a sandbox: its hosts.yml, the local group_vars, and
host_vars generated for this run (data-volume loop device numbers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCAL_GROUP_VARS = REPO_ROOT / "inventories" / "local" / "group_vars"


def _symlink(link: Path, target: Path) -> None:
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def prepare_inventory(work_dir: Path, hosts_file: Path,
                      host_vars: dict[str, dict[str, Any]]) -> Path:
    """<work_dir>/ansible/ with hosts.yml -> the sandbox's inventory, group_vars -> the repo's
    inventories/local/group_vars, and host_vars/<host>.yml written here. Returns the directory."""
    inv = work_dir / "ansible"
    (inv / "host_vars").mkdir(parents=True, exist_ok=True)
    _symlink(inv / "hosts.yml", hosts_file)
    _symlink(inv / "group_vars", LOCAL_GROUP_VARS)
    for host, values in host_vars.items():
        (inv / "host_vars" / f"{host}.yml").write_text(
            "# Written by lighthouse_ops.deploy for this sandbox run.\n"
            + yaml.safe_dump(values, sort_keys=True))
    return inv
