"""invoke tasks: aws (see tasks.py) — AWS runbooks over boto3, Ansible and the Pulumi stack.

Task bodies only parse arguments and print; the work is in lighthouse_ops.aws. Destructive
tasks show the plan and ask before acting (--yes skips the question, --dry-run stops after
the plan). Point boto3 elsewhere (moto, a proxy) with AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import inspect
import logging
import sys
from pathlib import Path

from lighthouse_ops.tasks.flags import runbook as task

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_INVENTORY = ROOT / "inventories" / "aws" / "hosts.yml"

VOLUME_HELP = ("data volume id (default: the generated inventory's, else the one tagged "
               "role=db-data for the stack)")
COMMON = {
    "region": "AWS region (default: $AWS_REGION / $AWS_DEFAULT_REGION / us-east-1)",
    "stack": "Pulumi stack (dev|prod); default: the one the inventory was generated from "
             "(lighthouse_stack), never a guess",
    "instance": "EC2 instance id (default: db-1's in the generated inventory, else the "
                "instance tagged role=db for the stack)",
    "inventory": f"Ansible inventory for host steps (default: {DEFAULT_INVENTORY})",
    "dry_run": "show the plan, change nothing",
    "yes": "do not ask for confirmation",
}


def aws_task(**extra: str):
    """invoke's @task with COMMON help for whichever of those options the task has."""

    def decorate(fn):
        params = inspect.signature(fn).parameters
        return task(help={k: v for k, v in {**COMMON, **extra}.items() if k in params})(fn)

    return decorate


def _generated(inventory: str | None) -> dict:
    """What the stack wrote into the inventory (`pulumi stack output ansible_inventory`):
    stack, db instance, data volume, backup vault and role. {} without an inventory."""
    import yaml

    inv = Path(inventory) if inventory else DEFAULT_INVENTORY
    if not inv.is_file():
        return {}
    doc = yaml.safe_load(inv.read_text()) or {}
    top = doc.get("all") or {}
    db = (((top.get("children") or {}).get("db") or {}).get("hosts") or {}).get("db-1") or {}
    found = {"stack": (top.get("vars") or {}).get("lighthouse_stack"),
             "instance": db.get("lighthouse_instance_id"),
             "volume": db.get("data_volume_ebs_volume_id"),
             "vault": (top.get("vars") or {}).get("lighthouse_backup_vault"),
             "backup_role_arn": (top.get("vars") or {}).get("lighthouse_backup_role_arn")}
    return {k: v for k, v in found.items() if v}


def _stack(task: str, stack: str | None, inventory: str | None) -> tuple[str, dict]:
    """(--stack, else the stack the inventory was generated from; what the inventory holds).
    A mismatch or neither refuses (a half-awake operator must not act on prod by default)."""
    inv = Path(inventory) if inventory else DEFAULT_INVENTORY
    generated = _generated(inventory)
    named = generated.get("stack")
    if stack and named and stack != named:
        sys.exit(f"{task}: --stack {stack} but {inv} was generated from stack {named!r}; "
                 "refusing (pass the matching --inventory)")
    if not (stack or named):
        sys.exit(f"{task}: which stack? pass --stack dev|prod (no inventory {inv} names one)")
    return str(stack or named), generated


def _run(region: str | None, inventory: str | None, *, with_host: bool = True):
    from lighthouse_ops.aws.context import AwsRun, ec2_client
    from lighthouse_ops.aws.hostops import AnsibleHostOps
    from lighthouse_ops.aws.verify import HostVerifier

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    run = AwsRun(ec2=ec2_client(region))
    if with_host:
        inv = Path(inventory) if inventory else DEFAULT_INVENTORY
        if not inv.exists():
            sys.exit(f"Ansible inventory {inv} not found: write it from the stack with "
                     "`pulumi stack output ansible_inventory > inventories/aws/hosts.yml`, "
                     "or pass --inventory")
        ops = AnsibleHostOps(inventory=inv)
        run.host_ops = ops
        run.verifier = HostVerifier(run_adhoc=ops.adhoc)
    return run


@aws_task(output="where to write the release variables (JSON for `-e @FILE`)")
def release(c, inventory=None, output="release.json"):
    """Build the prober release for the stack's hosts: the wheel, and a wheelhouse for the
    Python and CPU the generated inventory names (t4g: aarch64; Debian 12: 3.11)."""
    import json

    from lighthouse_ops.deploy.release import ReleaseError, build_release, stack_hosts_target

    inv = Path(inventory) if inventory else DEFAULT_INVENTORY
    try:
        python, arch = stack_hosts_target(inv)
        rel = build_release(python, arch=arch)
    except ReleaseError as exc:
        sys.exit(f"aws.release: {exc}")
    Path(output).write_text(json.dumps(rel.ansible_vars(), indent=1) + "\n")
    print(f"release {rel.name} for CPython {python} on {arch}: {output} "
          f"(ansible-playbook -i {inv.parent} playbooks/site.yml -e @{output})")


def _guard(name: str, body):
    """Run a task body; refusals, aborts and failures end with a clear message and exit 1."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lighthouse_ops.aws.runbook import RunbookAborted, RunbookFailed, RunbookRefused
    from lighthouse_ops.aws.waiters import WaitFailed, WaitTimeout

    try:
        return body()
    except RunbookRefused as exc:
        sys.exit(f"{name}: refused, nothing changed:\n  {exc}")
    except RunbookAborted as exc:
        sys.exit(str(exc))
    except RunbookFailed as exc:
        sys.exit(str(exc))
    except (WaitTimeout, WaitFailed) as exc:
        sys.exit(f"{name}: {exc}")
    except (ClientError, BotoCoreError) as exc:
        sys.exit(f"{name}: AWS error: {exc}")


@aws_task(volume="EBS volume id to snapshot", description="reason, stored in the tags",
          no_wait="return once started instead of waiting for 'completed'",
          keep_days="days until aws.prune-snapshots may delete it (default 90; 0 = keep)")
def snapshot(c, volume, description="manual", no_wait=False, keep_days=90, region=None):
    """Snapshot an EBS volume and wait for it to complete.

    The snapshot is tagged with the reason (--description), the volume's role/stack and
    lighthouse:expires-at (now + --keep-days).
    """
    from lighthouse_ops.aws.snapshot import create_snapshot, snapshot_summary

    try:
        days = int(keep_days)
        if days < 0:
            raise ValueError
    except ValueError:
        sys.exit(f"aws.snapshot: --keep-days must be a whole number >= 0, got {keep_days!r}")
    run = _run(region, None, with_host=False)
    snap = _guard("aws.snapshot", lambda: create_snapshot(run, volume, reason=description,
                                                          wait=not no_wait, keep_days=days))
    print(f"aws.snapshot: {snapshot_summary(snap)}")


@aws_task(stack="only snapshots tagged with this stack (default: every stack)")
def prune_snapshots(c, stack=None, region=None, dry_run=False, yes=False):
    """Delete runbook snapshots whose lighthouse:expires-at has passed.

    Manual, pre-scale and pre-upgrade snapshots carry the tag (90 days by default); nothing
    without it is touched. Run it daily from cron or a systemd timer on the controller.
    """
    from lighthouse_ops.aws.runbook import execute
    from lighthouse_ops.aws.snapshot_expiry import plan_prune

    run = _run(region, None, with_host=False)
    _guard("aws.prune-snapshots",
           lambda: execute(plan_prune(run, stack=stack), run.console, dry_run=dry_run, yes=yes))


@aws_task(snapshot="snapshot id (default: latest completed snapshot of --from-volume)",
                 from_volume="volume whose latest snapshot to restore (default: data volume)",
                 device="device name to attach at", mount_point="where to mount it",
                 volume_type="EBS type of the new volume")
def restore_snapshot(c, snapshot=None, from_volume=None, instance=None, stack=None,
                     device="/dev/sdg", mount_point="/mnt/restore", volume_type="gp3",
                     region=None, inventory=None, dry_run=False, yes=False):
    """Restore a snapshot to a new, attached, mounted volume.

    The volume is made in the instance's AZ; the live data volume is not touched.
    """
    from lighthouse_ops.aws import ec2 as facts
    from lighthouse_ops.aws.restore_snapshot import (
        RestoreState,
        plan_restore_snapshot,
        restore_summary,
    )
    from lighthouse_ops.aws.runbook import execute

    stack, generated = _stack("aws.restore-snapshot", stack, inventory)
    run = _run(region, inventory)

    def body():
        inst = facts.resolve_instance(
            run.ec2, instance or generated.get("instance"), stack)
        if snapshot:
            snap = facts.get_snapshot(run.ec2, snapshot)
        else:
            vol = facts.find_data_volume(run.ec2, inst, stack,
                                         from_volume or generated.get("volume"))
            snap = facts.latest_snapshot(run.ec2, vol["VolumeId"])
        state = RestoreState()
        plan = plan_restore_snapshot(run, snap, inst, device=device, mount_point=mount_point,
                                     volume_type=volume_type, state=state)
        execute(plan, run.console, dry_run=dry_run, yes=yes,
                summary=lambda: restore_summary(state, inst["InstanceId"], mount_point))

    _guard("aws.restore-snapshot", body)


@aws_task(type="new instance type, e.g. t4g.small",
                 skip_stack_check="do not compare with Pulumi.<stack>.yaml (unmanaged host)")
def scale(c, type, instance=None, stack=None, skip_stack_check=False, region=None,
          inventory=None, dry_run=False, yes=False):
    """Change the db host's instance type, snapshot first.

    Snapshot, stop PostgreSQL (Ansible), stop the instance, change the type, start, wait
    for status checks, verify PostgreSQL and the prober, report the downtime.
    """
    from lighthouse_ops.aws import ec2 as facts
    from lighthouse_ops.aws.runbook import execute
    from lighthouse_ops.aws.scale import ScaleState, plan_scale, scale_summary
    from lighthouse_ops.aws.stack_config import load_stack_config

    stack, generated = _stack("aws.scale", stack, inventory)
    run = _run(region, inventory)

    def body():
        cfg = None if skip_stack_check else load_stack_config(stack, ROOT)
        inst = facts.resolve_instance(
            run.ec2, instance or generated.get("instance"), stack)
        state = ScaleState()
        plan = plan_scale(run, inst, type, stack_config=cfg, state=state)
        execute(plan, run.console, dry_run=dry_run, yes=yes,
                summary=lambda: scale_summary(state, type))

    _guard("aws.scale", body)


@aws_task(size="new size in GiB (larger than now; EBS cannot shrink)",
                 volume=VOLUME_HELP,
                 mount_point="where its filesystem is mounted",
                 skip_stack_check="do not compare with Pulumi.<stack>.yaml")
def grow_volume(c, size, volume=None, stack=None, mount_point="/data",
                skip_stack_check=False, region=None, inventory=None, dry_run=False, yes=False):
    """Grow the data volume and its filesystem online.

    modify-volume, wait for 'optimizing', grow the filesystem (data_volume role), verify.
    """
    from lighthouse_ops.aws import ec2 as facts
    from lighthouse_ops.aws.grow_volume import plan_grow_volume
    from lighthouse_ops.aws.runbook import execute
    from lighthouse_ops.aws.stack_config import load_stack_config

    try:
        size_gib = int(size)
    except ValueError:
        sys.exit(f"aws.grow-volume: --size must be a whole number of GiB, got {size!r}")
    stack, generated = _stack("aws.grow-volume", stack, inventory)
    run = _run(region, inventory)

    def body():
        cfg = None if skip_stack_check else load_stack_config(stack, ROOT)
        vol = facts.find_data_volume(run.ec2, None, stack,
                                     volume or generated.get("volume"))
        plan = plan_grow_volume(run, vol["VolumeId"], size_gib, mount_point=mount_point,
                                stack_config=cfg)
        execute(plan, run.console, dry_run=dry_run, yes=yes)

    _guard("aws.grow-volume", body)


@aws_task(volume=VOLUME_HELP,
                 device="device to attach the data volume at",
                 mount_point="data mount point")
def spot_recover(c, stack, instance=None, volume=None, device="/dev/sdf",
                 mount_point="/data", region=None, inventory=None, dry_run=False, yes=False):
    """Bring the db host back after a spot interruption.

    Data volume into the right AZ and attached, instance started, PostgreSQL verified.
    """
    from lighthouse_ops.aws.runbook import execute
    from lighthouse_ops.aws.spot_recover import SpotState, plan_spot_recover, spot_summary

    run = _run(region, inventory)

    def body():
        state = SpotState()
        generated = _generated(inventory)
        plan = plan_spot_recover(run, stack=stack,
                                 instance_id=instance or generated.get("instance"),
                                 volume_id=volume or generated.get("volume"),
                                 device=device, mount_point=mount_point, state=state)
        execute(plan, run.console, dry_run=dry_run, yes=yes,
                summary=lambda: spot_summary(state))

    _guard("aws.spot-recover", body)


def _backup_target(run, stack: str, volume: str | None, vault: str | None, generated: dict):
    from lighthouse_ops.aws import ec2 as facts
    from lighthouse_ops.aws.backup import volume_arn

    vol = facts.find_data_volume(run.ec2, None, stack, volume or generated.get("volume"))
    region = run.ec2.meta.region_name
    account = vol.get("OwnerId") or _account(region)
    return (vault or generated.get("vault") or f"lighthouse-{stack}-vault",
            volume_arn(region, account, vol["VolumeId"]))


def _account(region: str) -> str:
    import boto3

    return boto3.client("sts", region_name=region).get_caller_identity()["Account"]


def _backup_role_arn(region: str, stack: str) -> str:
    """The stack's AWS Backup role: Pulumi names it backup-<suffix>, tagged Name=..."""
    import boto3

    iam = boto3.client("iam", region_name=region)
    wanted = f"lighthouse-{stack}-backup-role"
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if not role["RoleName"].startswith("backup"):
                continue
            tags = iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
            if {"Key": "Name", "Value": wanted} in tags:
                return role["Arn"]
    sys.exit(f"aws.backup-now: no IAM role tagged Name={wanted}; pass --role-arn")


@aws_task(volume=VOLUME_HELP,
                 vault="backup vault (default: lighthouse-<stack>-vault)",
                 role_arn="IAM role AWS Backup assumes (default: the stack's backup role)",
                 no_wait="return once the job is started")
def backup_now(c, role_arn=None, stack=None, volume=None, vault=None, no_wait=False, region=None):
    """Back up the data volume with AWS Backup now.

    Starts an on-demand job in the stack's vault and follows it to completion.
    """
    from lighthouse_ops.aws.backup import Boto3Backup
    from lighthouse_ops.aws.backup import backup_now as start

    stack, generated = _stack("aws.backup-now", stack, None)
    run = _run(region, None, with_host=False)

    def body():
        vault_name, arn = _backup_target(run, stack, volume, vault, generated)
        region = run.ec2.meta.region_name
        role = (role_arn or generated.get("backup_role_arn")
                or _backup_role_arn(region, stack))
        job = start(run, Boto3Backup.create(region), vault=vault_name,
                    resource_arn=arn, role_arn=role, wait=not no_wait)
        print(f"aws.backup-now: job {job.job_id} {job.state}; recovery point "
              f"{job.recovery_point_arn or '(not yet)'}")

    _guard("aws.backup-now", body)


@aws_task(volume=VOLUME_HELP,
                 vault="backup vault (default: lighthouse-<stack>-vault)",
                 all_resources="list every resource's recovery points in the vault")
def recovery_points(c, stack=None, volume=None, vault=None, all_resources=False, region=None):
    """List the data volume's AWS Backup recovery points."""
    from lighthouse_ops.aws.backup import Boto3Backup, render_recovery_points

    stack, generated = _stack("aws.recovery-points", stack, None)
    run = _run(region, None, with_host=False)

    def body():
        vault_name, arn = _backup_target(run, stack, volume, vault, generated)
        points = Boto3Backup.create(run.ec2.meta.region_name).recovery_points(
            vault=vault_name, resource_arn=None if all_resources else arn)
        print(render_recovery_points(points))

    _guard("aws.recovery-points", body)
