"""invoke tasks: sandbox — local Debian hosts for deploys and tests (docs/sandbox.md).

    invoke sandbox.up [--hosts N] [--db N] [--prober N] [--name NAME]
    invoke sandbox.status [--name NAME]
    invoke sandbox.ssh --host HOST [--name NAME] [--command CMD]
    invoke sandbox.down [--name NAME] [-n] [-y]

`--hosts N` is hosts per role (db-1..db-N and prober-1..prober-N); `--db`/`--prober` set one
role alone. Default: db-1 + prober-1.
"""

from __future__ import annotations

import logging
import os
import sys

from invoke import Exit

from lighthouse_ops.sandbox import Sandbox, SandboxError
from lighthouse_ops.tasks.flags import runbook as task


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


def format_hosts(sb: Sandbox) -> str:
    lines = [f"sandbox {sb.name}: inventory {sb.inventory_path}"]
    for h in sb.hosts():
        lines.append(f"  {h.name:<10} {h.role:<7} {h.ip:<15} controller_ip={h.controller_ip}")
    lines.append(f"  ssh: ssh -F {sb.ssh_config_path} <host>   "
                 "(or: invoke sandbox.ssh --host <host>)")
    return "\n".join(lines)


@task(help={
    "hosts": "hosts per role (db-1..db-N, prober-1..prober-N); default 1",
    "db": "db hosts (overrides --hosts for this role)",
    "prober": "prober hosts (overrides --hosts for this role)",
    "name": "sandbox name (default local; several can run at once)",
})
def up(c, hosts=1, db=None, prober=None, name="local"):
    """Bring sandbox hosts up (idempotent) and print them."""
    _setup_logging()
    sb = Sandbox(name)
    try:
        sb.up(db=int(hosts if db is None else db), prober=int(hosts if prober is None else prober))
    except SandboxError as exc:
        raise Exit(f"sandbox.up failed: {exc}", code=1) from exc
    print(format_hosts(sb))


@task(help={"name": "sandbox name (default local)"})
def status(c, name="local"):
    """Show the sandbox's hosts and whether they run."""
    sb = Sandbox(name)
    st = sb.status()
    if not st:
        print(f"sandbox {name}: down")
        return
    print(format_hosts(sb))
    for what, state in st.items():
        print(f"  {what:<10} {state}")
    if any(v != "running" for v in st.values()):
        raise Exit(code=1)


@task(help={"name": "sandbox name (default local)", "dry_run": "show what would go, remove nothing",
            "yes": "do not ask for confirmation"})
def down(c, name="local", dry_run=False, yes=False):
    """Stop the sandbox and remove everything it made (caches stay)."""
    from lighthouse_ops.deploy.local import teardown_plan
    from lighthouse_ops.tasks.local import run_teardown

    _setup_logging()
    run_teardown(teardown_plan(name, with_s3=False), dry_run=dry_run, yes=yes)


@task(help={"host": "host name, e.g. db-1", "name": "sandbox name (default local)",
            "command": "run this instead of an interactive shell"})
def ssh(c, host, name="local", command=None):
    """SSH into a sandbox host as root."""
    try:
        argv = Sandbox(name).ssh_argv(host, *([command] if command else []))
    except SandboxError as exc:
        raise Exit(str(exc), code=1) from exc
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - replace this process with ssh, fixed argv
