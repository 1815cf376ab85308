"""aws.restore-snapshot and aws.spot-recover against a moto server."""

from __future__ import annotations

import pytest
from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.aws.restore_snapshot import (
    RestoreState,
    plan_restore_snapshot,
    restore_summary,
)
from lighthouse_ops.aws.runbook import RunbookRefused, execute
from lighthouse_ops.aws.snapshot import create_snapshot
from lighthouse_ops.aws.spot_recover import (
    SUPERSEDED_ROLE,
    SpotState,
    plan_spot_recover,
    spot_summary,
)

from tests.integration.aws.builders import STACK, launch_db_host


def _restore(run, snap_id, iid, device="/dev/sdg", dry_run=False):
    state = RestoreState()
    plan = plan_restore_snapshot(run, facts.get_snapshot(run.ec2, snap_id),
                                 facts.get_instance(run.ec2, iid), device=device,
                                 mount_point="/mnt/restore", volume_type="gp3", state=state)
    outcome = execute(plan, run.console, dry_run=dry_run, yes=True,
                      summary=lambda: restore_summary(state, iid, "/mnt/restore"))
    return state, outcome


def test_restore_snapshot_creates_in_instance_az_attaches_and_mounts(run, ec2_raw, events):
    iid, vid = launch_db_host(ec2_raw, az="us-east-1b")
    snap = create_snapshot(run, vid, reason="nightly")
    events.items.clear()
    state, outcome = _restore(run, snap["SnapshotId"], iid)
    vol = facts.get_volume(ec2_raw, state.volume_id)
    assert vol["AvailabilityZone"] == "us-east-1b" and vol["SnapshotId"] == snap["SnapshotId"]
    assert vol["Attachments"][0]["InstanceId"] == iid
    assert vol["Attachments"][0]["Device"] == "/dev/sdg"
    assert facts.tag(vol, "lighthouse:restored-from") == snap["SnapshotId"]
    assert events.items == ["ec2:create_volume", "ec2:attach_volume",
                            f"host:mount {state.volume_id} /dev/sdg /mnt/restore"]
    assert f"delete-volume --volume-id {state.volume_id}" in outcome.render()


def test_restore_refuses_a_device_in_use(run, ec2_raw, events):
    iid, vid = launch_db_host(ec2_raw)
    snap = create_snapshot(run, vid, reason="x")
    events.items.clear()
    with pytest.raises(RunbookRefused, match="/dev/sdf is already in use"):
        _restore(run, snap["SnapshotId"], iid, device="/dev/sdf")
    assert events.items == []


def test_latest_snapshot_is_picked(run, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw)
    create_snapshot(run, vid, reason="a")
    create_snapshot(run, vid, reason="b")
    other = ec2_raw.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    create_snapshot(run, other, reason="c")
    got = facts.latest_snapshot(ec2_raw, vid)
    mine = ec2_raw.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vid]}])
    assert got["VolumeId"] == vid
    assert got["StartTime"] == max(s["StartTime"] for s in mine["Snapshots"])
    with pytest.raises(RunbookRefused, match="no completed snapshot"):
        facts.latest_snapshot(ec2_raw, "vol-12345678")


def _recover(run, dry_run=False, **kw):
    state = SpotState()
    plan = plan_spot_recover(run, stack=STACK, instance_id=kw.get("instance_id"),
                             volume_id=kw.get("volume_id"), device="/dev/sdf",
                             mount_point="/data", state=state)
    outcome = execute(plan, run.console, dry_run=dry_run, yes=True,
                      summary=lambda: spot_summary(state))
    return state, outcome


def test_spot_stopped_instance_is_started_and_verified(run, ec2_raw, events):
    iid, vid = launch_db_host(ec2_raw, spot=True)
    ec2_raw.stop_instances(InstanceIds=[iid])  # interruption behaviour "stop"
    state, _ = _recover(run)
    assert events.items == ["ec2:start_instances", f"host:mount-data {vid} /data",
                            "host:start_database", "verify"]
    assert facts.get_instance(ec2_raw, iid)["State"]["Name"] == "running"
    assert "spot" in run.console.text
    assert (state.instance_id, state.volume_id) == (iid, vid)


def test_spot_terminated_replacement_same_az_gets_the_volume(run, ec2_raw, events):
    old, vid = launch_db_host(ec2_raw, spot=True, az="us-east-1a")
    ec2_raw.detach_volume(VolumeId=vid, InstanceId=old)
    ec2_raw.terminate_instances(InstanceIds=[old])
    new, spare = launch_db_host(ec2_raw, spot=True, az="us-east-1a")
    ec2_raw.detach_volume(VolumeId=spare, InstanceId=new)
    ec2_raw.delete_volume(VolumeId=spare)
    ec2_raw.stop_instances(InstanceIds=[new])
    state, _ = _recover(run)
    assert state.instance_id == new and state.volume_id == vid
    assert facts.get_volume(ec2_raw, vid)["Attachments"][0]["InstanceId"] == new
    assert events.items[:2] == ["ec2:attach_volume", "ec2:start_instances"]
    assert f"terminated: {old}" in run.console.text


def test_spot_replacement_in_another_az_gets_a_copy_via_snapshot(run, ec2_raw, events):
    old, vid = launch_db_host(ec2_raw, spot=True, az="us-east-1a")
    ec2_raw.detach_volume(VolumeId=vid, InstanceId=old)
    ec2_raw.terminate_instances(InstanceIds=[old])
    new, spare = launch_db_host(ec2_raw, spot=True, az="us-east-1c")
    ec2_raw.detach_volume(VolumeId=spare, InstanceId=new)
    ec2_raw.delete_volume(VolumeId=spare)
    state, outcome = _recover(run, volume_id=vid)
    copy = facts.get_volume(ec2_raw, state.volume_id)
    assert state.old_volume_id == vid and state.volume_id != vid
    assert copy["AvailabilityZone"] == "us-east-1c"
    assert copy["Attachments"][0]["InstanceId"] == new
    assert facts.tag(facts.get_volume(ec2_raw, vid), facts.ROLE_TAG) == SUPERSEDED_ROLE
    assert facts.tag(copy, facts.ROLE_TAG) == facts.DATA_ROLE
    assert events.items[:3] == ["ec2:create_snapshot", "ec2:create_volume", "ec2:create_tags"]
    assert f"delete-volume --volume-id {vid}" in outcome.render()


def test_spot_without_replacement_is_refused_with_the_way_forward(run, ec2_raw, events):
    old, vid = launch_db_host(ec2_raw, spot=True)
    ec2_raw.detach_volume(VolumeId=vid, InstanceId=old)
    ec2_raw.terminate_instances(InstanceIds=[old])
    with pytest.raises(RunbookRefused, match=f"pulumi up --stack {STACK}") as err:
        _recover(run)
    assert old in str(err.value)
    assert events.items == []


def test_spot_healthy_host_only_verifies(run, ec2_raw, events):
    _iid, vid = launch_db_host(ec2_raw, spot=True)
    _recover(run)
    assert events.items == [f"host:mount-data {vid} /data", "host:start_database", "verify"]


def test_spot_refuses_a_volume_attached_to_another_live_instance(run, ec2_raw):
    _a, vid = launch_db_host(ec2_raw, spot=True)
    other = ec2_raw.run_instances(ImageId=facts.get_instance(ec2_raw, _a)["ImageId"],
                                  MinCount=1, MaxCount=1, InstanceType="t4g.micro",
                                  Placement={"AvailabilityZone": "us-east-1a"})
    other_id = other["Instances"][0]["InstanceId"]
    ec2_raw.create_tags(Resources=[_a], Tags=[{"Key": facts.ROLE_TAG, "Value": "old"}])
    ec2_raw.create_tags(Resources=[other_id], Tags=[{"Key": facts.ROLE_TAG, "Value": "db"},
                                                    {"Key": facts.STACK_TAG, "Value": STACK}])
    with pytest.raises(RunbookRefused, match=f"attached to live instance {_a}"):
        _recover(run, volume_id=vid)
