"""invoke tasks: local — the main job, the whole stack on local sandbox hosts (docs/ansible.md).

    invoke local.up [--name NAME] [--quiet]     sandbox up -> site.yml -> demo monitors -> report
    invoke local.status [--name NAME]           URLs and the uptime report of a running deploy
    invoke local.plan [--name NAME] [--quiet]   what a converge would change (--check --diff)
    invoke local.down [--name NAME] [-n] [-y]   hosts, loop devices, S3 and state removed

A second `local.up` is fast and changes nothing (cached release, site.yml changed=0).
"""

from __future__ import annotations

import logging

from invoke import Exit

from lighthouse_ops.deploy.ansible_run import PlaybookError
from lighthouse_ops.sandbox import SandboxError
from lighthouse_ops.tasks.flags import runbook as task


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


@task(help={"name": "sandbox name (default local)",
            "quiet": "do not stream ansible-playbook output"})
def up(c, name="local", quiet=False):
    """Deploy the whole stack to local sandbox hosts and print where it is."""
    from lighthouse_ops.deploy.local import deploy_local

    _setup_logging()
    try:
        _, report = deploy_local(name, echo=not quiet)
    except (PlaybookError, SandboxError) as exc:
        raise Exit(f"local.up failed: {exc}", code=1) from exc
    print(report)


@task(help={"name": "sandbox name (default local)"})
def status(c, name="local"):
    """Print the URLs and uptime report of a running local deployment."""
    from lighthouse_ops.deploy.local import status_report

    _setup_logging()
    try:
        print(status_report(name))
    except SandboxError as exc:
        raise Exit(f"local.status: {exc}", code=1) from exc


@task(help={"name": "sandbox name (default local)",
            "quiet": "print only the summary, not ansible-playbook's diff"})
def plan(c, name="local", quiet=False):
    """Show what a converge would change on a running local deployment (changes nothing)."""
    from lighthouse_ops.deploy.local import plan_local

    _setup_logging()
    try:
        _, summary = plan_local(name, echo=not quiet)
    except (PlaybookError, SandboxError) as exc:
        raise Exit(f"local.plan failed: {exc}", code=1) from exc
    print(summary)


@task(help={"name": "sandbox name (default local)", "dry_run": "show what would go, remove nothing",
            "yes": "do not ask for confirmation"})
def down(c, name="local", dry_run=False, yes=False):
    """Remove the local deployment: hosts, their database and data volumes, its S3, state."""
    from lighthouse_ops.deploy.local import teardown_plan

    _setup_logging()
    run_teardown(teardown_plan(name, with_s3=True), dry_run=dry_run, yes=yes)


def run_teardown(plan, *, dry_run: bool, yes: bool) -> None:
    """Show a teardown plan; unless dry run, confirm (or --yes) and carry it out."""
    from lighthouse_ops.aws.runbook import (
        RunbookAborted,
        RunbookFailed,
        TerminalConsole,
        execute,
    )

    try:
        execute(plan, TerminalConsole(), dry_run=dry_run, yes=yes)
    except RunbookAborted as exc:
        raise Exit(str(exc), code=1) from exc
    except (RunbookFailed, SandboxError) as exc:
        raise Exit(str(exc), code=1) from exc
