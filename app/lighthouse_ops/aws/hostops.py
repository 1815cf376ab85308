"""What the AWS runbooks need done on the database host, behind a small interface.

The real implementation drives Ansible against an inventory: ad-hoc `systemd_service` for
the database unit, the repository's `data_volume` role for the data volume (mount by
UUID, grow online — the same code `site.yml` runs, so the host does not drift), and a
small packaged playbook for a temporary mount of a restored copy (mounted by device: a
snapshot copy has the same filesystem UUID as the live volume). Tests inject a recorder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)
PLAYBOOKS = Path(__file__).with_name("playbooks")
REPO_ROOT = Path(__file__).resolve().parents[3]


class HostOpsError(RuntimeError):
    pass


class HostOps(Protocol):
    def stop_database(self) -> None: ...
    def start_database(self) -> None: ...
    def mount_data_volume(self, volume_id: str, mount_point: str) -> None: ...
    def mount_volume(self, volume_id: str, device: str, mount_point: str) -> None: ...
    def grow_filesystem(self, volume_id: str, mount_point: str) -> None: ...
    def filesystem_size_gib(self, mount_point: str) -> float: ...


@dataclass
class AnsibleHostOps:
    """Host operations through `ansible`/`ansible-playbook` on `host` of `inventory`."""

    inventory: Path
    host: str = "db"
    # The timescaledb role's unit name (timescaledb_service) for PostgreSQL 17, cluster main.
    service: str = "postgresql@17-main"
    root: Path = REPO_ROOT
    ansible_bin: str = "ansible"
    playbook_bin: str = "ansible-playbook"
    extra_env: dict[str, str] = field(default_factory=dict)

    def _run(self, argv: list[str]) -> str:
        # The venv's own ansible first: `.venv/bin/invoke` does not put .venv/bin on PATH.
        exe = (shutil.which(argv[0], path=str(Path(sys.executable).parent))
               or shutil.which(argv[0]) or argv[0])
        log.info("host_ops argv=%r", argv)
        env = {**os.environ, "ANSIBLE_CONFIG": str(self.root / "ansible.cfg"),
               "ANSIBLE_ROLES_PATH": str(self.root / "roles"), **self.extra_env}
        proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, check=False,
                              env=env, cwd=self.root)
        output = (proc.stdout + proc.stderr).lower()
        if "could not match supplied host pattern" in output or "no hosts matched" in output:
            # ansible exits 0 when the pattern matches nothing: a silent no-op is a failure here
            raise HostOpsError(f"no host in {self.inventory} matches {argv[1]!r}"
                               if argv[0] == self.ansible_bin else
                               f"no host in {self.inventory} matches {self.host!r}")
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            shown = " ".join([Path(argv[0]).name, *argv[1:3]])
            raise HostOpsError(f"{shown} ... exited {proc.returncode}:\n{tail}")
        return proc.stdout

    def _adhoc(self, module: str, args: str) -> str:
        return self.adhoc(self.host, module, args)

    def adhoc(self, pattern: str, module: str, args: str) -> str:
        """`ansible PATTERN -m MODULE -a ARGS` (also used by verify.HostVerifier)."""
        return self._run([self.ansible_bin, pattern, "-i", str(self.inventory), "--become",
                          "-m", module, "-a", args])

    def _playbook(self, name: str, **extra_vars: str) -> str:
        return self._run([self.playbook_bin, "-i", str(self.inventory), "--limit", self.host,
                          "-e", json.dumps({"target": self.host, **extra_vars}),
                          str(PLAYBOOKS / name)])

    def stop_database(self) -> None:
        # systemd stop = PostgreSQL "fast" shutdown: a clean checkpoint, no recovery at start.
        self._adhoc("ansible.builtin.systemd_service", f"name={self.service} state=stopped")

    def start_database(self) -> None:
        self._adhoc("ansible.builtin.systemd_service", f"name={self.service} state=started")

    def mount_data_volume(self, volume_id: str, mount_point: str) -> None:
        self._playbook("data_volume.yml", data_volume_ebs_volume_id=volume_id,
                       data_volume_mount_point=mount_point)

    def grow_filesystem(self, volume_id: str, mount_point: str) -> None:
        # The data_volume role grows the filesystem when the device is larger.
        self.mount_data_volume(volume_id, mount_point)

    def mount_volume(self, volume_id: str, device: str, mount_point: str) -> None:
        self._playbook("mount_volume.yml", volume_id=volume_id, device=device,
                       mount_point=mount_point)

    def filesystem_size_gib(self, mount_point: str) -> float:
        out = self._adhoc("ansible.builtin.command", f"df --output=size -B1 {mount_point}")
        numbers = [line.strip() for line in out.splitlines() if line.strip().isdigit()]
        if not numbers:
            raise HostOpsError(f"could not read the size of {mount_point} from df: {out!r}")
        return int(numbers[-1]) / 2**30
