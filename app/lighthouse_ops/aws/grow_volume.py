"""`aws.grow-volume`: grow an EBS volume online, then its filesystem, then verify.

EBS volumes cannot shrink (moto allows it; AWS does not), so a smaller size is refused
during planning. Re-running with the same size after a failure skips `modify-volume`
and continues with the filesystem, which makes the runbook resumable.
"""

from __future__ import annotations

from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.runbook import Plan, RunbookRefused, Step
from lighthouse_ops.aws.stack_config import VOLUME_SIZE_KEY, StackConfig, require_matches
from lighthouse_ops.aws.verify import require_ok
from lighthouse_ops.aws.waiters import wait_volume_modified

# ext4/xfs metadata takes a few percent of the device; below this the grow did not happen.
FS_MIN_FRACTION = 0.9


def plan_grow_volume(run: AwsRun, volume_id: str, size_gib: int, *, mount_point: str,
                     stack_config: StackConfig | None = None) -> Plan:
    volume = facts.get_volume(run.ec2, volume_id)
    current = int(volume["Size"])
    if size_gib < current:
        raise RunbookRefused(
            f"refusing to shrink {volume_id} from {current} GiB to {size_gib} GiB: EBS volumes "
            "cannot shrink. To use less space, restore into a new, smaller volume instead.")
    if stack_config is not None:
        require_matches(stack_config, VOLUME_SIZE_KEY, size_gib, "data volume size (GiB)")
    attached = [a for a in volume.get("Attachments", []) if a["State"] == "attached"]
    plan = Plan("aws.grow-volume", facts=[
        f"volume {volume_id} ({volume['VolumeType']}, {volume['AvailabilityZone']}): "
        f"{current} GiB -> {size_gib} GiB",
        "attached to " + (", ".join(f"{a['InstanceId']} at {a['Device']}" for a in attached)
                          or "nothing (filesystem step skipped)"),
    ])
    if size_gib == current:
        plan.notes.append(f"already {current} GiB: skipping modify-volume, "
                          "continuing with the filesystem")
    else:
        def modify() -> str:
            run.ec2.modify_volume(VolumeId=volume_id, Size=size_gib)
            mod = wait_volume_modified(run.ec2, volume_id, **run.waits(f"volume {volume_id}"))
            return f"modification {mod['ModificationState']}, target {size_gib} GiB"

        plan.steps.append(Step(
            f"modify-volume {volume_id} to {size_gib} GiB and wait for 'optimizing'", modify,
            state_if_fails=f"{volume_id} may be modifying; the filesystem still has its old size",
            resume=f"check `aws ec2 describe-volumes-modifications --volume-ids {volume_id}`; "
                   f"when it shows optimizing/completed, re-run "
                   f"`invoke aws.grow-volume --volume {volume_id} --size {size_gib}`"))
    if attached:
        host_ops = run.need_host_ops()

        def grow_fs() -> str:
            host_ops.grow_filesystem(volume_id, mount_point)
            size = host_ops.filesystem_size_gib(mount_point)
            if size < size_gib * FS_MIN_FRACTION:
                raise RuntimeError(f"{mount_point} is {size:.1f} GiB after growing, "
                                   f"expected about {size_gib} GiB")
            return f"{mount_point} is {size:.1f} GiB"

        plan.steps.append(Step(
            f"grow the filesystem at {mount_point} (Ansible) and check its size", grow_fs,
            state_if_fails=f"{volume_id} is {size_gib} GiB; the filesystem has its old size "
                           "(the database keeps running)",
            resume=f"re-run `invoke aws.grow-volume --volume {volume_id} --size {size_gib}` "
                   "(skips modify-volume), or grow it by hand: growpart + resize2fs/xfs_growfs"))
        if run.verifier is not None:
            verifier = run.verifier
            plan.steps.append(Step(
                "verify PostgreSQL and the prober", lambda: require_ok(verifier),
                state_if_fails=f"{volume_id} and its filesystem are {size_gib} GiB; "
                               "a service check failed",
                resume="look at `invoke db.diagnose` and `systemctl status postgresql` "
                       "on the host"))
    return plan
