"""What the `backup.*` tasks do, as plain functions (tasks.py only parses and prints).

Hosts come from an Ansible inventory (default: the local sandbox's); the database host defaults
to the first host of group `db`. PITR restores run `playbooks/restore.yml` so the same steps
serve the sandbox and EC2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from lighthouse_ops.backup.pgbackrest import BackupSet, PgBackRest, PgBackRestError
from lighthouse_ops.backup.plan import Plan
from lighthouse_ops.backup.remote import RemoteError, runner_from_inventory

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_INVENTORY = ROOT / "inventories" / "local"  # directory: hosts.yml + group_vars
RESTORE_PLAYBOOK = ROOT / "playbooks" / "restore.yml"


class RunbookError(RuntimeError):
    pass


def inventory_path(inventory: str | None) -> Path:
    path = Path(inventory or os.environ.get("LIGHTHOUSE_INVENTORY") or DEFAULT_INVENTORY)
    if not path.exists():
        raise RunbookError(f"inventory {path} does not exist (run `invoke sandbox.up` for the "
                           "local sandbox, or pass --inventory)")
    return path


def db_host(inventory: Path, host: str | None) -> str:
    if host:
        return host
    hosts_file = inventory / "hosts.yml" if inventory.is_dir() else inventory
    if not hosts_file.exists():
        raise RunbookError(f"{hosts_file} does not exist (run `invoke sandbox.up`)")
    doc = yaml.safe_load(hosts_file.read_text()) or {}
    hosts = (((doc.get("all") or {}).get("children") or {}).get("db") or {}).get("hosts") or {}
    if not hosts:
        raise RunbookError(f"no host in group db of {inventory}; pass --host")
    return next(iter(hosts))


def pgbackrest_for(inventory: str | None, host: str | None, stanza: str) -> PgBackRest:
    inv = inventory_path(inventory)
    return PgBackRest(runner_from_inventory(inv, db_host(inv, host)), stanza=stanza)


def parse_target_time(text: str, *, now: datetime | None = None) -> datetime:
    """'YYYY-MM-DD HH:MM:SS+00' (an explicit offset is required) -> aware datetime."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise RunbookError(f"--time {text!r} is not a timestamp like "
                           "'2026-01-02 03:04:05+00'") from exc
    if when.tzinfo is None:
        raise RunbookError(f"--time {text!r} has no UTC offset; add one, e.g. '+00' for UTC "
                           "(a bare time would be read in the host's zone)")
    if when > (now or datetime.now(UTC)):
        raise RunbookError(f"--time {text!r} is in the future")
    return when


def check_target_covered(when: datetime, sets: list[BackupSet]) -> BackupSet:
    """The newest backup that ended before `when`: PITR replays WAL forward from it."""
    usable = [b for b in sets if b.stop <= when and not b.error]
    if not usable:
        oldest = min((b.stop for b in sets), default=None)
        earliest = oldest.isoformat() if oldest else "none (no backups)"
        raise RunbookError(f"no backup finished before {when.isoformat()}; the earliest point "
                           f"recoverable is {earliest}")
    return usable[-1]


@dataclass
class PlaybookRun:
    returncode: int
    seconds: float


def ansible_playbook() -> str:
    candidate = Path(sys.executable).with_name("ansible-playbook")
    return str(candidate) if candidate.exists() else "ansible-playbook"


def run_restore_playbook(inventory: Path, host: str, when: datetime, *,
                         extra_vars: dict | None = None, echo: bool = True) -> PlaybookRun:
    import json

    evars = {"restore_host": host, "pgbackrest_restore_target_time":
             when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00"), **(extra_vars or {})}
    argv = [ansible_playbook(), "-i", str(inventory), str(RESTORE_PLAYBOOK),
            "-e", json.dumps(evars)]
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=not echo, text=True,
                          env={**os.environ, "ANSIBLE_FORCE_COLOR": "0",
                               "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    return PlaybookRun(proc.returncode, time.monotonic() - t0)


def restore_pitr(inventory: str | None, host: str | None, time_text: str, *,
                 stanza: str = "lighthouse", yes: bool = False, dry_run: bool = False,
                 ask=None, interactive: bool | None = None,
                 extra_vars: dict | None = None, echo: bool = True) -> PlaybookRun | None:
    """Plan, confirm and run the PITR playbook; returns None for a dry run."""
    when = parse_target_time(time_text)
    inv = inventory_path(inventory)
    target = db_host(inv, host)
    pgbr = PgBackRest(runner_from_inventory(inv, target), stanza=stanza)
    try:
        base = check_target_covered(when, pgbr.sets())
    except (PgBackRestError, RemoteError) as exc:
        raise RunbookError(f"cannot read backups on {target}: {exc}") from exc
    plan = Plan(f"point-in-time restore of {target} to {when.isoformat()}")
    plan.add(f"stop backup timers and PostgreSQL on {target} (the prober's writes fail until "
             "the end; it buffers and retries)")
    plan.add(f"pgbackrest restore --delta from backup {base.label} + WAL up to "
             f"{when.isoformat()}: every change after that time is DISCARDED")
    plan.add("start PostgreSQL, wait for recovery to promote (new timeline)")
    plan.add("re-enable WAL archiving, pgbackrest check, take a new full backup")
    plan.add("verify: server accepts connections and is not in recovery")
    if not plan.approve(yes=yes, dry_run=dry_run, ask=ask, interactive=interactive):
        return None
    run = run_restore_playbook(inv, target, when, extra_vars=extra_vars, echo=echo)
    if run.returncode != 0:
        raise RunbookError(
            f"restore playbook failed (exit {run.returncode}) after {run.seconds:.0f}s. State: "
            f"PostgreSQL on {target} may be stopped or mid-recovery; the backups in the "
            "repository are untouched. Read the failing task above, fix it, and re-run the same "
            "backup.restore command (restore --delta is safe to repeat).")
    return run
