"""`aws.prune-snapshots`: delete runbook snapshots (manual, pre-scale, pre-upgrade) whose
`lighthouse:expires-at` tag is in the past. Only snapshots this account owns and that carry
the tag are ever considered; AWS Backup's recovery points expire by their own plan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.runbook import Plan, Step
from lighthouse_ops.aws.snapshot import EXPIRES_TAG, REASON_TAG, STAMP


def tagged_snapshots(ec2, stack: str | None = None) -> list[dict]:
    filters = [{"Name": "tag-key", "Values": [EXPIRES_TAG]}]
    if stack:
        filters.append({"Name": f"tag:{facts.STACK_TAG}", "Values": [stack]})
    pages = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters)
    return [s for page in pages for s in page["Snapshots"]]


def expiry_of(snap: dict) -> datetime | None:
    try:
        return datetime.strptime(facts.tag(snap, EXPIRES_TAG), STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def _delete(ec2, snapshot_id: str) -> Callable[[], str]:
    def run() -> str:
        try:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidSnapshot.InUse":
                return "kept: an AMI uses it (deregister the image first)"
            raise
        return "deleted"
    return run


def plan_prune(run: AwsRun, *, stack: str | None = None, now: datetime | None = None) -> Plan:
    """One delete step per expired snapshot; unreadable tags are reported and kept."""
    now = now or datetime.now(UTC)
    plan = Plan("aws.prune-snapshots")
    kept = 0
    for snap in sorted(tagged_snapshots(run.ec2, stack), key=lambda s: s["StartTime"]):
        sid, expires = snap["SnapshotId"], expiry_of(snap)
        if expires is None:
            plan.notes.append(f"{sid}: {EXPIRES_TAG}={facts.tag(snap, EXPIRES_TAG)!r} is not "
                              f"{STAMP}; kept")
        elif expires <= now:
            plan.steps.append(Step(
                f"delete {sid} of {snap.get('VolumeId', '?')} "
                f"({facts.tag(snap, REASON_TAG) or 'no reason'}, expired {expires:%Y-%m-%d})",
                _delete(run.ec2, sid),
                state_if_fails="the snapshots listed as done are deleted; the rest are kept",
                resume="run aws.prune-snapshots again"))
        else:
            kept += 1
    plan.facts.append(f"{len(plan.steps)} expired, {kept} not yet due"
                      + (f" (stack {stack})" if stack else " (every stack)"))
    return plan
