"""aws.snapshot and aws.grow-volume against a moto server."""

from __future__ import annotations

import pytest
from lighthouse_ops.aws.grow_volume import plan_grow_volume
from lighthouse_ops.aws.runbook import (
    RunbookAborted,
    RunbookFailed,
    RunbookRefused,
    TerminalConsole,
    execute,
)
from lighthouse_ops.aws.snapshot import create_snapshot, snapshot_summary
from lighthouse_ops.aws.waiters import Backoff, WaitTimeout

from tests.integration.aws.builders import STACK, launch_db_host
from tests.integration.aws.fakes import SlowEc2


def test_snapshot_is_tagged_and_completed(run, ec2, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw)
    snap = create_snapshot(run, vid, reason="manual")
    assert snap["State"] == "completed" and snap["VolumeId"] == vid
    got = ec2.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])["Snapshots"][0]
    tags = {t["Key"]: t["Value"] for t in got["Tags"]}
    assert tags["lighthouse:reason"] == "manual" and tags["stack"] == STACK
    assert tags["Name"].startswith("lighthouse-db-data manual ")
    assert "completed" in snapshot_summary(snap)


def test_snapshot_waiter_times_out_on_a_snapshot_stuck_pending(run, ec2, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw)

    def pending(result):
        for s in result["Snapshots"]:
            s["State"], s["Progress"] = "pending", "37%"

    run.ec2 = SlowEc2(ec2, "describe_snapshots", pending, times=None)
    run.backoff = Backoff(timeout_s=30, initial_s=1, max_s=8)
    with pytest.raises(WaitTimeout) as err:
        create_snapshot(run, vid, reason="manual")
    assert err.value.last_state == "pending 37%"
    assert run.clock.sleeps == [1, 2, 4, 8, 8, 7]  # backoff, capped, cut at the deadline


def test_grow_volume_modifies_waits_grows_filesystem_and_verifies(run, ec2, events, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw, size=20)
    run.host_ops.fs_size_gib = 39.2
    plan = plan_grow_volume(run, vid, 40, mount_point="/data")
    outcome = execute(plan, run.console, dry_run=False, yes=True)
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Size"] == 40
    assert events.items == ["ec2:modify_volume", f"host:grow {vid} /data", "verify"]
    assert "/data is 39.2 GiB" in outcome.render()


def test_grow_volume_waits_through_modifying(run, ec2, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw, size=20)

    def modifying(result):
        for m in result["VolumesModifications"]:
            m["ModificationState"], m["Progress"] = "modifying", 10

    slow = SlowEc2(ec2, "describe_volumes_modifications", modifying, times=3)
    run.ec2 = slow
    run.host_ops.fs_size_gib = 39.5
    execute(plan_grow_volume(run, vid, 40, mount_point="/data"), run.console, dry_run=False,
            yes=True)
    assert slow.calls == 4
    assert "modifying 10" in run.console.text  # progress was shown


def test_grow_volume_refuses_to_shrink(run, ec2, events, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw, size=50)
    with pytest.raises(RunbookRefused, match="refusing to shrink .* from 50 GiB to 20 GiB"):
        plan_grow_volume(run, vid, 20, mount_point="/data")
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Size"] == 50
    assert events.items == []


def test_grow_volume_dry_run_changes_nothing(run, ec2, events, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw, size=20)
    execute(plan_grow_volume(run, vid, 30, mount_point="/data"), run.console, dry_run=True,
            yes=False)
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Size"] == 20
    assert events.items == []
    assert "20 GiB -> 30 GiB" in run.console.text


def test_grow_volume_rerun_after_filesystem_failure_skips_modify(run, ec2, events, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw, size=20)
    run.host_ops.fail = {f"grow {vid} /data"}
    with pytest.raises(RunbookFailed) as err:
        execute(plan_grow_volume(run, vid, 40, mount_point="/data"), run.console,
                dry_run=False, yes=True)
    assert "filesystem has its old size" in err.value.state
    assert f"--volume {vid} --size 40" in err.value.resume
    run.host_ops.fail = set()
    run.host_ops.fs_size_gib = 39.0
    events.items.clear()
    plan = plan_grow_volume(run, vid, 40, mount_point="/data")
    assert "skipping modify-volume" in plan.render()
    execute(plan, run.console, dry_run=False, yes=True)
    assert events.items == [f"host:grow {vid} /data", "verify"]


def test_grow_volume_fails_when_the_filesystem_did_not_grow(run, ec2, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw, size=20)
    run.host_ops.fs_size_gib = 19.6
    with pytest.raises(RunbookFailed, match="is 19.6 GiB after growing"):
        execute(plan_grow_volume(run, vid, 40, mount_point="/data"), run.console,
                dry_run=False, yes=True)


def test_unknown_volume_is_refused_clearly(run):
    with pytest.raises(RunbookRefused, match="no EBS volume 'vol-0000'"):
        plan_grow_volume(run, "vol-0000", 40, mount_point="/data")


def test_prune_deletes_only_expired_runbook_snapshots(run, ec2, ec2_raw):
    from datetime import UTC, datetime, timedelta

    from lighthouse_ops.aws.snapshot import EXPIRES_TAG
    from lighthouse_ops.aws.snapshot_expiry import plan_prune

    _iid, vid = launch_db_host(ec2_raw)
    soon = create_snapshot(run, vid, reason="pre-scale t4g.small to t4g.medium", keep_days=1)
    later = create_snapshot(run, vid, reason="manual", keep_days=90)
    forever = create_snapshot(run, vid, reason="manual", keep_days=0)
    odd = create_snapshot(run, vid, reason="manual")
    ec2.create_tags(Resources=[odd["SnapshotId"]], Tags=[{"Key": EXPIRES_TAG, "Value": "soon"}])
    untagged = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]  # e.g. made in the console
    assert "expires 20" in snapshot_summary(soon) and "expires" not in snapshot_summary(forever)

    in_two_days = datetime.now(UTC) + timedelta(days=2)
    plan = plan_prune(run, stack=STACK, now=in_two_days)
    assert [s.title.split()[1] for s in plan.steps] == [soon["SnapshotId"]]
    assert plan.facts == [f"1 expired, 1 not yet due (stack {STACK})"]
    assert any(odd["SnapshotId"] in n and "kept" in n for n in plan.notes)
    assert plan_prune(run, stack="other-stack", now=in_two_days).steps == []

    dry = execute(plan, run.console, dry_run=True, yes=False)
    assert dry.dry_run and _snapshot_ids(ec2, vid) >= {soon["SnapshotId"]}
    with pytest.raises(RunbookAborted):  # no --yes and no terminal to ask on
        execute(plan, TerminalConsole(), dry_run=False, yes=False)
    outcome = execute(plan, run.console, dry_run=False, yes=True)
    assert outcome.results == [(plan.steps[0].title, "deleted")]
    assert _snapshot_ids(ec2, vid) == {later["SnapshotId"], forever["SnapshotId"],
                                      odd["SnapshotId"], untagged}


def _snapshot_ids(ec2, vid: str) -> set[str]:
    snaps = ec2.describe_snapshots(OwnerIds=["self"],
                                   Filters=[{"Name": "volume-id", "Values": [vid]}])["Snapshots"]
    return {s["SnapshotId"] for s in snaps}
