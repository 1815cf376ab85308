"""Read-only EC2 look-ups shared by the runbooks (clear errors for ids that do not exist)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from lighthouse_ops.aws.runbook import RunbookRefused

# Tags the Pulumi components put on the database host and its data volume (infra.common.tags).
ROLE_TAG = "role"
STACK_TAG = "stack"
DB_ROLE = "db"
DATA_ROLE = "db-data"
DATA_DEVICE = "/dev/sdf"


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def tag(resource: dict, key: str, default: str = "") -> str:
    for t in resource.get("Tags", []) or []:
        if t["Key"] == key:
            return t["Value"]
    return default


def get_instance(ec2: Any, instance_id: str) -> dict:
    try:
        got = ec2.describe_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if _code(exc).startswith("InvalidInstanceID"):
            raise RunbookRefused(f"no EC2 instance {instance_id!r} in this account/region") from exc
        raise
    return got["Reservations"][0]["Instances"][0]


def get_volume(ec2: Any, volume_id: str) -> dict:
    try:
        return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    except ClientError as exc:
        if _code(exc).startswith("InvalidVolume"):
            raise RunbookRefused(f"no EBS volume {volume_id!r} in this account/region") from exc
        raise


def get_snapshot(ec2: Any, snapshot_id: str) -> dict:
    try:
        return ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    except ClientError as exc:
        if _code(exc).startswith("InvalidSnapshot"):
            raise RunbookRefused(f"no EBS snapshot {snapshot_id!r} in this account/region") from exc
        raise


def latest_snapshot(ec2: Any, volume_id: str) -> dict:
    snaps = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [volume_id]},
                                    {"Name": "status", "Values": ["completed"]}])["Snapshots"]
    if not snaps:
        raise RunbookRefused(f"no completed snapshot of {volume_id}; take one with aws.snapshot")
    return max(snaps, key=lambda s: s["StartTime"])


def instance_type_info(ec2: Any, instance_type: str) -> dict | None:
    """The type's description, or None when EC2 does not know it (in this region)."""
    try:
        got = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    except ClientError as exc:
        if _code(exc) in ("InvalidInstanceType", "InvalidParameterValue"):
            return None
        raise
    return got[0] if got else None


def find_instances(ec2: Any, *, stack: str | None, role: str = DB_ROLE,
                   states: tuple[str, ...] = ("pending", "running", "stopping", "stopped",
                                              "shutting-down", "terminated")) -> list[dict]:
    filters = [{"Name": f"tag:{ROLE_TAG}", "Values": [role]},
               {"Name": "instance-state-name", "Values": list(states)}]
    if stack:
        filters.append({"Name": f"tag:{STACK_TAG}", "Values": [stack]})
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            found.extend(reservation["Instances"])
    return sorted(found, key=lambda i: i["LaunchTime"])


def resolve_instance(ec2: Any, instance_id: str | None, stack: str | None) -> dict:
    """The given instance, else the single live database host tagged for the stack."""
    if instance_id:
        return get_instance(ec2, instance_id)
    live = find_instances(ec2, stack=stack, states=("pending", "running", "stopping", "stopped"))
    where = f"{ROLE_TAG}={DB_ROLE}" + (f", {STACK_TAG}={stack}" if stack else "")
    if not live:
        raise RunbookRefused(f"no database instance tagged {where}; pass --instance")
    if len(live) > 1:
        ids = ", ".join(i["InstanceId"] for i in live)
        raise RunbookRefused(f"several instances tagged {where} ({ids}); pass --instance")
    return live[0]


def attached_volumes(instance: dict) -> list[tuple[str, str]]:
    """(device, volume id) of every EBS volume attached to the instance."""
    return [(m["DeviceName"], m["Ebs"]["VolumeId"])
            for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m]


def find_data_volume(ec2: Any, instance: dict | None, stack: str | None,
                     volume_id: str | None = None) -> dict:
    """The database's data volume: given id, else tagged, else attached at DATA_DEVICE."""
    if volume_id:
        return get_volume(ec2, volume_id)
    filters = [{"Name": f"tag:{ROLE_TAG}", "Values": [DATA_ROLE]}]
    if stack:
        filters.append({"Name": f"tag:{STACK_TAG}", "Values": [stack]})
    tagged = ec2.describe_volumes(Filters=filters)["Volumes"]
    if len(tagged) == 1:
        return tagged[0]
    if instance is not None:
        for device, vid in attached_volumes(instance):
            if device == DATA_DEVICE:
                return get_volume(ec2, vid)
    raise RunbookRefused(
        f"cannot tell which volume holds the data ({len(tagged)} tagged "
        f"{ROLE_TAG}={DATA_ROLE}, none attached at {DATA_DEVICE}); pass --volume")
