"""`aws.spot-recover`: bring the database back after a spot interruption (seed runbook).

Two cases: the spot instance was *stopped* (interruption behaviour "stop") and only needs
its data volume attached and a start; or it was *terminated* and a replacement exists (from
`pulumi up` or a persistent request), possibly in another availability zone. A volume cannot
attach across zones, so then the data is carried over through a snapshot. The old volume is
kept (retagged) until the operator deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.runbook import Plan, RunbookRefused, Step
from lighthouse_ops.aws.snapshot import create_snapshot
from lighthouse_ops.aws.stack_config import SPOT_KEY
from lighthouse_ops.aws.verify import require_ok
from lighthouse_ops.aws.waiters import (
    wait_attached,
    wait_instance_state,
    wait_instance_status_ok,
    wait_volume_state,
)

LIVE = ("pending", "running", "stopping", "stopped")
SUPERSEDED_ROLE = "db-data-superseded"


@dataclass
class SpotState:
    instance_id: str = ""
    volume_id: str = ""
    old_volume_id: str | None = None
    snapshot_id: str | None = None


def _reason(instance: dict) -> str:
    reason = instance.get("StateReason", {})
    return reason.get("Code") or instance.get("StateTransitionReason") or "no reason recorded"


def _spot_requests(run: AwsRun, instance_ids: list[str]) -> list[str]:
    if not instance_ids:
        return []
    got = run.ec2.describe_spot_instance_requests(
        Filters=[{"Name": "instance-id", "Values": instance_ids}])["SpotInstanceRequests"]
    return [f"spot request {r['SpotInstanceRequestId']}: {r['State']}, "
            f"{r.get('Status', {}).get('Code', '?')}" for r in got]


def pick_target(run: AwsRun, *, stack: str | None,
                instance_id: str | None) -> tuple[dict, list[dict]]:
    """The live database instance to recover onto, and the terminated ones (for the report)."""
    if instance_id:
        given = facts.get_instance(run.ec2, instance_id)
        if given["State"]["Name"] in LIVE:
            return given, []
        gone = [given]
    else:
        gone = []
    tagged = facts.find_instances(run.ec2, stack=stack)
    gone += [i for i in tagged if i["State"]["Name"] in ("terminated", "shutting-down")
             and i not in gone]
    live = [i for i in tagged if i["State"]["Name"] in LIVE]
    if not live:
        lost = ", ".join(f"{i['InstanceId']} ({_reason(i)})" for i in gone) or "none found"
        hint = f"pulumi up --stack {stack}" if stack else "pulumi up"
        raise RunbookRefused(
            f"no live database instance to recover onto (terminated: {lost}).\n"
            f"  Launch a replacement with `{hint}` (the data volume is kept), then re-run.")
    if len(live) > 1:
        raise RunbookRefused("several live database instances ("
                             + ", ".join(i["InstanceId"] for i in live) + "); pass --instance")
    return live[0], gone


def plan_spot_recover(run: AwsRun, *, stack: str | None, instance_id: str | None,
                      volume_id: str | None, device: str, mount_point: str,
                      state: SpotState) -> Plan:
    target, gone = pick_target(run, stack=stack, instance_id=instance_id)
    iid, az, status = target["InstanceId"], target["Placement"]["AvailabilityZone"], \
        target["State"]["Name"]
    volume = facts.find_data_volume(run.ec2, target if not gone else None, stack, volume_id)
    vid, vol_az = volume["VolumeId"], volume["AvailabilityZone"]
    state.instance_id, state.volume_id = iid, vid
    attachments = [a for a in volume.get("Attachments", []) if a["State"] in
                   ("attaching", "attached")]
    elsewhere = [a for a in attachments if a["InstanceId"] != iid]
    for a in elsewhere:
        other = facts.get_instance(run.ec2, a["InstanceId"])
        if other["State"]["Name"] in LIVE:
            raise RunbookRefused(f"data volume {vid} is attached to live instance "
                                 f"{a['InstanceId']} ({other['State']['Name']}); not moving it")
    on_target = any(a["InstanceId"] == iid for a in attachments)

    plan = Plan("aws.spot-recover", facts=[
        f"target {iid} ({target.get('InstanceLifecycle', 'on-demand')}, {target['InstanceType']}) "
        f"in {az}: {status}" + (f" ({_reason(target)})" if status != "running" else ""),
        f"data volume {vid} in {vol_az}: {volume['State']}"
        + (f", attached to {iid}" if on_target else ""),
    ])
    plan.facts += [f"terminated: {i['InstanceId']} in {i['Placement']['AvailabilityZone']} "
                   f"({_reason(i)})" for i in gone]
    plan.facts += _spot_requests(run, [i["InstanceId"] for i in [target, *gone]])
    host_ops = run.need_host_ops()

    if status in ("pending", "stopping"):
        wanted = "running" if status == "pending" else "stopped"
        plan.steps.append(Step(
            f"wait for {iid} to be {wanted}",
            lambda: wait_instance_state(run.ec2, iid, wanted, **run.waits(iid))["State"]["Name"],
            state_if_fails=f"{iid} {status}", resume="re-run `invoke aws.spot-recover`"))

    if not on_target and vol_az != az:
        def carry_over() -> str:
            snap = create_snapshot(run, vid, reason="spot-recover AZ move", wait=True)
            state.snapshot_id = snap["SnapshotId"]
            tags = [t for t in volume.get("Tags", []) if not t["Key"].startswith("aws:")]
            new = run.ec2.create_volume(
                SnapshotId=state.snapshot_id, AvailabilityZone=az,
                VolumeType=volume["VolumeType"], Encrypted=bool(volume.get("Encrypted")),
                TagSpecifications=[{"ResourceType": "volume", "Tags": tags or [
                    {"Key": "Name", "Value": "lighthouse-db-data"}]}])
            state.old_volume_id, state.volume_id = vid, new["VolumeId"]
            wait_volume_state(run.ec2, state.volume_id, "available",
                              **run.waits(f"volume {state.volume_id}"))
            run.ec2.create_tags(Resources=[vid], Tags=[{"Key": facts.ROLE_TAG,
                                                       "Value": SUPERSEDED_ROLE}])
            return (f"{vid} ({vol_az}) -> snapshot {state.snapshot_id} -> {state.volume_id} "
                    f"({az}); old volume retagged {facts.ROLE_TAG}={SUPERSEDED_ROLE}")

        plan.steps.append(Step(
            f"copy the data volume into {az} (snapshot {vid}, new volume from it)", carry_over,
            state_if_fails=lambda: f"data still on {vid} in {vol_az}; snapshot "
            f"{state.snapshot_id or 'not made'}; new volume "
            f"{state.volume_id if state.old_volume_id else 'not made'}",
            resume="delete any half-made volume, then re-run `invoke aws.spot-recover`"))

    if not on_target:
        if elsewhere:
            plan.steps.append(Step(
                f"wait for {vid} to detach from the terminated instance",
                lambda: wait_volume_state(run.ec2, vid, "available",
                                          **run.waits(f"volume {vid}"))["State"],
                state_if_fails=f"{vid} still attached to a terminated instance",
                resume=f"aws ec2 detach-volume --volume-id {vid} --force, then re-run"))

        def attach() -> str:
            run.ec2.attach_volume(VolumeId=state.volume_id, InstanceId=iid, Device=device)
            wait_attached(run.ec2, state.volume_id, iid, **run.waits(f"volume {state.volume_id}"))
            return f"{state.volume_id} attached to {iid} at {device}"

        plan.steps.append(Step(
            f"attach the data volume to {iid} at {device}", attach,
            state_if_fails=lambda: f"{state.volume_id} available in {az}, not attached",
            resume=lambda: f"aws ec2 attach-volume --volume-id {state.volume_id} --instance-id "
                           f"{iid} --device {device}, then re-run `invoke aws.spot-recover`"))

    if status in ("stopped", "stopping"):
        def start() -> str:
            run.ec2.start_instances(InstanceIds=[iid])
            wait_instance_state(run.ec2, iid, "running", **run.waits(f"instance {iid}"))
            wait_instance_status_ok(run.ec2, iid, **run.waits(f"instance {iid} status"))
            return "running, status checks ok"

        plan.steps.append(Step(
            f"start {iid}, wait for running and status checks ok", start,
            state_if_fails=lambda: f"{state.volume_id} attached; {iid} not running",
            resume=f"spot capacity may be short: retry later, or launch on-demand with "
                   f"`pulumi config set --stack {stack or '<stack>'} --path '{SPOT_KEY}' false` "
                   "+ `pulumi up`, then re-run"))

    def mount_start_verify() -> str:
        host_ops.mount_data_volume(state.volume_id, mount_point)
        host_ops.start_database()
        return require_ok(run.verifier) if run.verifier is not None else "no verifier"

    plan.steps.append(Step(
        f"mount the data volume at {mount_point}, start PostgreSQL (Ansible), verify",
        mount_start_verify,
        state_if_fails=lambda: f"{iid} running with {state.volume_id} attached; PostgreSQL "
                               "or the prober not healthy",
        resume="see `systemctl status postgresql` and `journalctl -u postgresql` on the host; "
               "then `invoke db.diagnose`"))
    return plan


def spot_summary(state: SpotState) -> list[str]:
    lines = [f"database on {state.instance_id} with data volume {state.volume_id}"]
    if state.old_volume_id:
        lines.append(f"old data volume {state.old_volume_id} kept (tag {facts.ROLE_TAG}="
                     f"{SUPERSEDED_ROLE}); delete it once satisfied: aws ec2 delete-volume "
                     f"--volume-id {state.old_volume_id}")
        lines.append("the stack's volume resource now differs: run `pulumi refresh` / import "
                     f"{state.volume_id} so Pulumi does not recreate the old one")
    return lines
