"""`aws.scale --type T`: resize the database host (seed runbook 1, automated).

Order matters and is enforced here, not left to EC2 (moto even changes the type of a
running instance): snapshot, stop PostgreSQL cleanly, stop the instance and wait, change
the type, start and wait for both status checks, start and verify PostgreSQL and the
prober. Downtime is counted from the database stop to a passing verification.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.runbook import Plan, RunbookRefused, Step
from lighthouse_ops.aws.snapshot import create_snapshot
from lighthouse_ops.aws.stack_config import INSTANCE_TYPE_KEY, StackConfig, require_matches
from lighthouse_ops.aws.verify import require_ok
from lighthouse_ops.aws.waiters import wait_instance_state, wait_instance_status_ok


@dataclass
class ScaleState:
    """Filled in while the steps run; the summary and failure messages read it."""

    snapshots: list[str] = field(default_factory=list)
    db_stopped_at: float | None = None
    verified_at: float | None = None

    def downtime_s(self) -> float | None:
        if self.db_stopped_at is None or self.verified_at is None:
            return None
        return self.verified_at - self.db_stopped_at


def check_instance_type(run: AwsRun, instance: dict, new_type: str) -> dict:
    """Refuse a type EC2 does not know or whose CPU architecture differs from the AMI's."""
    info = facts.instance_type_info(run.ec2, new_type)
    if info is None:
        raise RunbookRefused(f"unknown instance type {new_type!r} (not offered by EC2 in this "
                             "region); see `aws ec2 describe-instance-types`")
    arch = instance.get("Architecture", "")
    supported = info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    if arch and arch not in supported:
        raise RunbookRefused(
            f"{new_type} runs {'/'.join(supported)}, but {instance['InstanceId']} boots a "
            f"{arch} image; pick a {arch} type (for arm64: t4g/m7g/r7g/c7g families)")
    return info


def plan_scale(run: AwsRun, instance: dict, new_type: str, *,
               stack_config: StackConfig | None, state: ScaleState,
               now=time.monotonic) -> Plan:
    iid = instance["InstanceId"]
    current = instance["InstanceType"]
    if new_type == current:
        raise RunbookRefused(f"{iid} is already {current}; nothing to do")
    info = check_instance_type(run, instance, new_type)
    if stack_config is not None:
        require_matches(stack_config, INSTANCE_TYPE_KEY, new_type, "database instance type")
    status = instance["State"]["Name"]
    if status not in ("running", "stopped"):
        raise RunbookRefused(f"{iid} is {status}; wait until it is running or stopped")
    volumes = facts.attached_volumes(instance)
    mem = info.get("MemoryInfo", {}).get("SizeInMiB", 0) / 1024
    vcpu = info.get("VCpuInfo", {}).get("DefaultVCpus", "?")
    plan = Plan("aws.scale", facts=[
        f"instance {iid} ({facts.tag(instance, 'Name', '-')}) in "
        f"{instance['Placement']['AvailabilityZone']}: {status}, {current} -> {new_type} "
        f"({vcpu} vCPU, {mem:g} GiB)",
        "volumes: " + (", ".join(f"{v} at {d}" for d, v in volumes) or "none"),
    ])
    host_ops = run.need_host_ops()
    rerun = f"invoke aws.scale --instance {iid} --type {new_type} --yes"

    def snapshot() -> str:
        for _device, vid in volumes:
            snap = create_snapshot(run, vid, reason=f"pre-scale {current} to {new_type}",
                                   wait=False)
            state.snapshots.append(snap["SnapshotId"])
        return ", ".join(state.snapshots) or "no volumes"

    plan.steps.append(Step(
        "snapshot every attached volume (safety net)", snapshot,
        state_if_fails="nothing changed on the instance; some snapshots may have been started",
        resume=f"re-run `{rerun}`"))

    if status == "running":
        def stop_db() -> str:
            state.db_stopped_at = now()
            host_ops.stop_database()
            return "stopped cleanly"

        def stop_instance() -> str:
            run.ec2.stop_instances(InstanceIds=[iid])
            wait_instance_state(run.ec2, iid, "stopped", **run.waits(f"instance {iid}"))
            return "stopped"

        plan.steps.append(Step(
            "stop PostgreSQL cleanly on the host (Ansible)", stop_db,
            state_if_fails=f"{iid} running as {current}; PostgreSQL may be stopped",
            resume="start it again with `systemctl start postgresql` on the host (or re-run "
                   f"`{rerun}`)"))
        plan.steps.append(Step(
            f"stop {iid} and wait for 'stopped'", stop_instance,
            state_if_fails=f"PostgreSQL stopped; {iid} stopping or stopped, still {current}",
            resume=f"re-run `{rerun}` once the instance is stopped (it skips the stop), or "
                   f"`aws ec2 start-instances --instance-ids {iid}` to go back"))
    else:
        plan.notes.append(f"{iid} is already stopped: skipping the database and instance stop")

    def modify() -> str:
        now_state = facts.get_instance(run.ec2, iid)["State"]["Name"]
        if now_state != "stopped":  # EC2 rejects this for a running instance; we never try
            raise RuntimeError(f"{iid} is {now_state}, not stopped; refusing to change its type")
        run.ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": new_type})
        return f"{current} -> {new_type}"

    def start() -> str:
        run.ec2.start_instances(InstanceIds=[iid])
        wait_instance_state(run.ec2, iid, "running", **run.waits(f"instance {iid}"))
        wait_instance_status_ok(run.ec2, iid, **run.waits(f"instance {iid} status"))
        got = facts.get_instance(run.ec2, iid)["InstanceType"]
        if got != new_type:
            raise RuntimeError(f"{iid} came back as {got}, expected {new_type}")
        return f"running as {new_type}, status checks ok"

    def start_db_and_verify() -> str:
        host_ops.start_database()
        result = require_ok(run.verifier) if run.verifier is not None else "no verifier"
        state.verified_at = now()
        return result

    plan.steps.append(Step(
        f"change the instance type to {new_type}", modify,
        state_if_fails=f"{iid} stopped, still {current}; PostgreSQL stopped",
        resume=f"re-run `{rerun}`, or start unchanged: `aws ec2 start-instances --instance-ids "
               f"{iid}`"))
    plan.steps.append(Step(
        f"start {iid}, wait for running and status checks ok", start,
        state_if_fails=f"{iid} is {new_type}, starting or failed to start; PostgreSQL down",
        resume=f"check `aws ec2 describe-instance-status --instance-ids {iid}`; when ok, run "
               "`invoke db.status`; if the type cannot start (capacity), re-run with the old "
               f"type: invoke aws.scale --instance {iid} --type {current}"))
    plan.steps.append(Step(
        "start PostgreSQL (Ansible), verify PostgreSQL and the prober", start_db_and_verify,
        state_if_fails=f"{iid} running as {new_type}; PostgreSQL or the prober not healthy",
        resume=lambda: "see `systemctl status postgresql lighthouse-prober` on the hosts and "
        "`invoke db.diagnose`; snapshots " + (", ".join(state.snapshots) or "(none)")
        + " hold the pre-scale data"))
    plan.notes.append(f"afterwards: `pulumi refresh --stack {stack_config.stack}` records the "
                      "new type in Pulumi state" if stack_config else
                      "no Pulumi stack checked (--stack not given)")
    return plan


def scale_summary(state: ScaleState, new_type: str) -> list[str]:
    down = state.downtime_s()
    lines = [f"instance type now {new_type}"]
    lines.append(f"database downtime: {down:.1f}s" if down is not None
                 else "database downtime: none (instance was already stopped)")
    if state.snapshots:
        lines.append("pre-scale snapshots: " + ", ".join(state.snapshots))
    return lines
