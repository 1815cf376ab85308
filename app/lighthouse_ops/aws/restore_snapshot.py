"""`aws.restore-snapshot`: a new volume from a snapshot, attached and mounted (seed runbook 2).

The volume is created in the instance's availability zone (EBS volumes cannot attach
across zones) and mounted read-write at a separate mount point; the live data volume is
not touched, so the operator copies out what was lost (pg_dump from a scratch server).
"""

from __future__ import annotations

from dataclasses import dataclass

from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.runbook import Plan, RunbookRefused, Step
from lighthouse_ops.aws.waiters import wait_attached, wait_volume_state


@dataclass
class RestoreState:
    volume_id: str | None = None


def plan_restore_snapshot(run: AwsRun, snapshot: dict, instance: dict, *, device: str,
                          mount_point: str, volume_type: str, state: RestoreState) -> Plan:
    iid = instance["InstanceId"]
    if instance["State"]["Name"] not in ("running", "stopped"):
        raise RunbookRefused(f"{iid} is {instance['State']['Name']}; attach needs it running "
                             "or stopped")
    used = {d for d, _ in facts.attached_volumes(instance)}
    if device in used:
        raise RunbookRefused(f"{device} is already in use on {iid}; pass another --device "
                             f"(in use: {', '.join(sorted(used))})")
    if snapshot["State"] != "completed":
        raise RunbookRefused(f"snapshot {snapshot['SnapshotId']} is {snapshot['State']}, "
                             "not completed; wait for it")
    az = instance["Placement"]["AvailabilityZone"]
    sid = snapshot["SnapshotId"]
    plan = Plan("aws.restore-snapshot", facts=[
        f"snapshot {sid} of {snapshot.get('VolumeId', '?')} ({snapshot.get('VolumeSize')} GiB, "
        f"taken {snapshot['StartTime']:%Y-%m-%d %H:%M:%S %Z})",
        f"target {iid} in {az}: attach at {device}, mount at {mount_point}",
    ])
    host_ops = run.need_host_ops()

    def create() -> str:
        vol = run.ec2.create_volume(
            SnapshotId=sid, AvailabilityZone=az, VolumeType=volume_type,
            TagSpecifications=[{"ResourceType": "volume", "Tags": [
                {"Key": "Name", "Value": "lighthouse-db-restored"},
                {"Key": "lighthouse:restored-from", "Value": sid}]}])
        state.volume_id = vol["VolumeId"]
        wait_volume_state(run.ec2, state.volume_id, "available",
                          **run.waits(f"volume {state.volume_id}"))
        return f"{state.volume_id} ({volume_type}, {az}) available"

    def attach() -> str:
        run.ec2.attach_volume(VolumeId=state.volume_id, InstanceId=iid, Device=device)
        wait_attached(run.ec2, str(state.volume_id), iid, **run.waits(f"volume {state.volume_id}"))
        return f"{state.volume_id} attached to {iid} at {device}"

    def mount() -> str:
        host_ops.mount_volume(str(state.volume_id), device, mount_point)
        return f"mounted at {mount_point}"

    plan.steps += [
        Step(f"create a {volume_type} volume from {sid} in {az} and wait for 'available'",
             create, state_if_fails="no new volume, or a new volume being created (see tag "
             f"lighthouse:restored-from={sid})",
             resume="re-run the task; delete any half-made volume tagged "
                    f"lighthouse:restored-from={sid} first"),
        Step(f"attach it to {iid} at {device}", attach,
             state_if_fails=lambda: f"volume {state.volume_id} exists, not attached",
             resume=lambda: f"aws ec2 attach-volume --volume-id {state.volume_id} "
                            f"--instance-id {iid} --device {device}, then mount it"),
        Step(f"mount it at {mount_point} (Ansible)", mount,
             state_if_fails=lambda: f"volume {state.volume_id} attached at {device}, not mounted",
             resume=f"mount it on the host: mkdir -p {mount_point} && mount <device> "
                    f"{mount_point} (Nitro: /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…)"),
    ]
    return plan


def restore_summary(state: RestoreState, iid: str, mount_point: str) -> list[str]:
    return [f"restored data: {state.volume_id} mounted at {mount_point} on {iid}",
            "copy out what you need (e.g. a scratch PostgreSQL on that directory, pg_dump -t ...),",
            f"then clean up: umount {mount_point}; aws ec2 detach-volume --volume-id "
            f"{state.volume_id}; aws ec2 delete-volume --volume-id {state.volume_id}"]
