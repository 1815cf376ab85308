"""Running commands (and our Python) on a database host: locally or over SSH from the inventory.

The fingerprint code runs next to the server, as the `postgres` OS user over the local socket
(peer authentication): no database password or open port is needed on the controller. The host
needs python3 and python3-psycopg (the pgbackrest role installs it).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml

from lighthouse_ops.backup import fingerprint as fp


class RemoteError(RuntimeError):
    pass


class Runner(Protocol):
    name: str
    python: str

    def run(self, command: str, *, input_text: str | None = None, check: bool = True,
            timeout: float = 3600) -> subprocess.CompletedProcess[str]: ...


def _finish(name: str, command: str, proc: subprocess.CompletedProcess[str],
            check: bool) -> subprocess.CompletedProcess[str]:
    if check and proc.returncode != 0:
        out = (proc.stderr.strip() or proc.stdout.strip())[-3000:]
        raise RemoteError(f"{name}: `{command[:300]}` exited {proc.returncode}:\n{out}")
    return proc


@dataclass
class LocalRunner:
    """Runs on this machine (tests against the local PostgreSQL 15)."""

    name: str = "localhost"
    python: str = sys.executable

    def run(self, command: str, *, input_text: str | None = None, check: bool = True,
            timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["bash", "-c", command], input=input_text, capture_output=True,
                              text=True, timeout=timeout)
        return _finish(self.name, command, proc, check)


@dataclass
class SshRunner:
    """Runs as root on `address` with the inventory's key and SSH options."""

    name: str
    address: str
    key: str | None = None
    user: str = "root"
    options: list[str] = field(default_factory=lambda: [
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"])
    python: str = "/usr/bin/python3"

    def argv(self, command: str) -> list[str]:
        key = ["-i", self.key] if self.key else []
        return ["ssh", *key, *self.options, f"{self.user}@{self.address}", command]

    def run(self, command: str, *, input_text: str | None = None, check: bool = True,
            timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(command), input=input_text, capture_output=True,
                              text=True, timeout=timeout)
        return _finish(self.name, command, proc, check)


def runner_from_inventory(inventory: Path, host: str) -> SshRunner:
    """An SshRunner for `host` from a YAML inventory file or directory (its hosts.yml):
    ansible_host, ansible_user, ansible_ssh_private_key_file."""
    inventory = Path(inventory)
    if inventory.is_dir():
        inventory = inventory / "hosts.yml"
    try:
        doc = yaml.safe_load(inventory.read_text())
    except OSError as exc:
        raise RemoteError(f"cannot read inventory {inventory}: {exc}") from exc

    def walk(group: dict, inherited: dict) -> dict | None:
        merged = {**inherited, **(group.get("vars") or {})}
        hosts = group.get("hosts") or {}
        if host in hosts:
            return {**merged, **(hosts[host] or {})}
        for child in (group.get("children") or {}).values():
            found = walk(child or {}, merged)
            if found is not None:
                return found
        return None

    hostvars = walk((doc or {}).get("all", {}), {})
    if hostvars is None:
        raise RemoteError(f"host {host!r} is not in inventory {inventory}")
    runner = SshRunner(name=host, address=str(hostvars.get("ansible_host", host)),
                       key=hostvars.get("ansible_ssh_private_key_file"),
                       user=str(hostvars.get("ansible_user", "root")))
    if hostvars.get("ansible_python_interpreter"):
        runner.python = str(hostvars["ansible_python_interpreter"])
    return runner


def as_user(user: str, argv: list[str]) -> str:
    return shlex.join(["runuser", "-u", user, "--", *argv])


_MAIN = '''
import json as _json, sys as _sys, time as _time
_args = _json.loads(_sys.argv[1])
_conn = psycopg.connect(_args["conninfo"])
if _args["action"] == "fingerprint":
    _conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    _out = {"tables": to_json(fingerprint(_conn, sample_rows=_args["sample_rows"]))}
elif _args["action"] == "restore-point":
    # The snapshot is taken by this first statement, together with the restore point, so the
    # fingerprint below describes exactly what recovery to that point must bring back.
    _conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    _lsn, _now = _conn.execute("SELECT pg_create_restore_point(%s)::text, now()::text",
                               (_args["name"],)).fetchone()
    _out = {"lsn": _lsn, "time": _now,
            "tables": to_json(fingerprint(_conn, sample_rows=_args["sample_rows"])),
            "preload": _conn.execute("SHOW shared_preload_libraries").fetchone()[0]}
    _conn.commit()
    _conn.autocommit = True
    _wal = _conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
    _deadline = _time.monotonic() + _args.get("archive_wait_s", 120)
    while True:
        _last = _conn.execute("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"
                              ).fetchone()[0]
        if _last[:24] >= _wal or _time.monotonic() > _deadline:
            break
        _time.sleep(0.2)
    _out["wal"], _out["archived"] = _wal, _last[:24] >= _wal
print(_json.dumps(_out))
'''


def run_fingerprint_script(runner: Runner, args: dict, *, user: str = "postgres") -> dict:
    """Runs fingerprint.py + an action on the runner's host as `user`; returns its JSON."""
    source = Path(fp.__file__).read_text() + _MAIN
    proc = runner.run(as_user(user, [runner.python, "-", json.dumps(args)]), input_text=source)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def remote_fingerprint(runner: Runner, conninfo: str, *, sample_rows: int = 200,
                       user: str = "postgres") -> fp.Fingerprint:
    out = run_fingerprint_script(runner, {"action": "fingerprint", "conninfo": conninfo,
                                          "sample_rows": sample_rows}, user=user)
    return fp.from_json(out["tables"])
