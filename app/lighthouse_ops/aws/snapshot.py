"""`aws.snapshot`: an EBS snapshot of a volume, tagged so people can tell why it exists and
when it may go (`lighthouse:expires-at`; `aws.prune-snapshots` deletes what is past it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.waiters import wait_snapshot_completed

REASON_TAG = "lighthouse:reason"
EXPIRES_TAG = "lighthouse:expires-at"
# Runbook snapshots (manual, pre-scale, pre-upgrade) are kept 90 days (seed 003); the daily
# AWS Backup recovery points have their own retention in the backup plan.
KEEP_DAYS = 90
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def create_snapshot(run: AwsRun, volume_id: str, *, reason: str, wait: bool = True,
                    keep_days: int = KEEP_DAYS) -> dict:
    """Snapshot `volume_id`; with `wait`, return once the snapshot is `completed`.
    keep_days=0: no expiry tag (kept until deleted by hand)."""
    if keep_days < 0:
        raise ValueError(f"keep_days must be 0 (keep forever) or more, not {keep_days}")
    volume = facts.get_volume(run.ec2, volume_id)
    now = datetime.now(UTC)
    stamp = now.strftime(STAMP)
    name = facts.tag(volume, "Name", volume_id)
    tags = [{"Key": "Name", "Value": f"{name} {reason} {stamp}"},
            {"Key": REASON_TAG, "Value": reason}]
    if keep_days:
        tags.append({"Key": EXPIRES_TAG,
                     "Value": (now + timedelta(days=keep_days)).strftime(STAMP)})
    for key in (facts.ROLE_TAG, facts.STACK_TAG):
        if value := facts.tag(volume, key):
            tags.append({"Key": key, "Value": value})
    snap: dict[str, Any] = run.ec2.create_snapshot(
        VolumeId=volume_id, Description=f"lighthouse {reason} {stamp}",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    run.console.progress(f"snapshot {snap['SnapshotId']} of {volume_id} started")
    if wait:
        snap = wait_snapshot_completed(run.ec2, snap["SnapshotId"],
                                       **run.waits(f"snapshot {snap['SnapshotId']}"))
    return snap


def snapshot_summary(snap: dict) -> str:
    expires = facts.tag(snap, EXPIRES_TAG)
    return (f"{snap['SnapshotId']} of {snap['VolumeId']} ({snap.get('VolumeSize', '?')} GiB), "
            f"state {snap['State']}" + (f", expires {expires}" if expires else ""))
