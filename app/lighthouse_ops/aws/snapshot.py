"""`aws.snapshot`: an EBS snapshot of a volume, tagged so people can tell why it exists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.waiters import wait_snapshot_completed


def create_snapshot(run: AwsRun, volume_id: str, *, reason: str, wait: bool = True) -> dict:
    """Snapshot `volume_id`; with `wait`, return once the snapshot is `completed`."""
    volume = facts.get_volume(run.ec2, volume_id)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = facts.tag(volume, "Name", volume_id)
    tags = [{"Key": "Name", "Value": f"{name} {reason} {stamp}"},
            {"Key": "lighthouse:reason", "Value": reason}]
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
    return (f"{snap['SnapshotId']} of {snap['VolumeId']} ({snap.get('VolumeSize', '?')} GiB), "
            f"state {snap['State']}")
