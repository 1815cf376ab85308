"""aws.scale against a moto server: order of calls, refusals, stack-config drift, downtime."""

from __future__ import annotations

import pytest
from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.aws.runbook import RunbookFailed, RunbookRefused, execute
from lighthouse_ops.aws.scale import ScaleState, plan_scale, scale_summary
from lighthouse_ops.aws.stack_config import INSTANCE_TYPE_KEY, load_stack_config
from lighthouse_ops.aws.waiters import Backoff

from tests.integration.aws.builders import launch_db_host


@pytest.fixture
def stack(tmp_path):
    def write(value: str):
        (tmp_path / "Pulumi.prod.yaml").write_text(
            f"config:\n  aws:region: us-east-1\n  lighthouse:database:\n"
            f"    instanceType: {value}\n")
        return load_stack_config("prod", tmp_path)
    return write


def _scale(run, iid, new_type, cfg, **kw):
    state = ScaleState()
    ticks = iter(range(0, 1000, 7))
    plan = plan_scale(run, facts.get_instance(run.ec2, iid), new_type, stack_config=cfg,
                      state=state, now=lambda: float(next(ticks)))
    outcome = execute(plan, run.console, dry_run=kw.get("dry_run", False), yes=True,
                      summary=lambda: scale_summary(state, new_type))
    return state, outcome


def test_scale_runs_in_the_safe_order_and_reports_downtime(run, ec2, ec2_raw, events, stack):
    iid, vid = launch_db_host(ec2_raw, itype="t4g.micro")
    state, outcome = _scale(run, iid, "t4g.small", stack("t4g.small"))
    assert events.items == [
        "ec2:create_snapshot", "ec2:create_snapshot",  # root and data volume
        "host:stop_database", "ec2:stop_instances",
        "ec2:modify_instance_attribute", "ec2:start_instances", "host:start_database", "verify"]
    inst = facts.get_instance(ec2_raw, iid)
    assert inst["InstanceType"] == "t4g.small" and inst["State"]["Name"] == "running"
    snaps = ec2_raw.describe_snapshots(SnapshotIds=state.snapshots)["Snapshots"]
    assert {s["VolumeId"] for s in snaps} >= {vid}
    assert state.downtime_s() is not None and state.downtime_s() > 0
    text = outcome.render()
    assert "database downtime:" in text and "instance type now t4g.small" in text


def test_scale_refuses_unknown_type(run, ec2_raw, events, stack):
    iid, _ = launch_db_host(ec2_raw)
    with pytest.raises(RunbookRefused, match="unknown instance type 't4g.gigantic'"):
        _scale(run, iid, "t4g.gigantic", stack("t4g.micro"))
    assert events.items == []


def test_scale_refuses_architecture_mismatch(run, ec2_raw, events, stack):
    iid, _ = launch_db_host(ec2_raw)  # arm64 image
    with pytest.raises(RunbookRefused, match=r"t3\.small runs x86_64, but .* arm64 image"):
        _scale(run, iid, "t3.small", stack("t4g.micro"))
    assert events.items == []


def test_scale_refuses_when_stack_config_disagrees_and_prints_the_fix(run, ec2_raw, events,
                                                                       stack):
    iid, _ = launch_db_host(ec2_raw)
    with pytest.raises(RunbookRefused) as err:
        _scale(run, iid, "t4g.small", stack("t4g.micro"))
    assert f"pulumi config set --stack prod --path '{INSTANCE_TYPE_KEY}' t4g.small" in str(
        err.value)
    assert events.items == []
    assert facts.get_instance(ec2_raw, iid)["InstanceType"] == "t4g.micro"


def test_scale_refuses_same_type(run, ec2_raw, stack):
    iid, _ = launch_db_host(ec2_raw)
    with pytest.raises(RunbookRefused, match="already t4g.micro"):
        _scale(run, iid, "t4g.micro", stack("t4g.micro"))


def test_scale_dry_run_changes_nothing(run, ec2_raw, events, stack):
    iid, _ = launch_db_host(ec2_raw)
    _scale(run, iid, "t4g.small", stack("t4g.small"), dry_run=True)
    assert events.items == []
    assert "t4g.micro -> t4g.small (2 vCPU, 2 GiB)" in run.console.text


def test_scale_failure_says_state_and_rerun_resumes_from_stopped(run, ec2_raw, events, stack):
    iid, _ = launch_db_host(ec2_raw)
    run.verifier.ok = True
    original = run.ec2.modify_instance_attribute

    def broken(**_kw):
        raise RuntimeError("InsufficientInstanceCapacity (injected)")

    run.ec2.modify_instance_attribute = broken
    with pytest.raises(RunbookFailed) as err:
        _scale(run, iid, "t4g.small", stack("t4g.small"))
    assert f"{iid} stopped, still t4g.micro; PostgreSQL stopped" in err.value.state
    assert "re-run" in err.value.resume
    assert facts.get_instance(ec2_raw, iid)["State"]["Name"] == "stopped"

    run.ec2.modify_instance_attribute = original
    events.items.clear()
    state, outcome = _scale(run, iid, "t4g.small", stack("t4g.small"))
    assert "host:stop_database" not in events.items and "ec2:stop_instances" not in events.items
    assert events.items[-3:] == ["ec2:start_instances", "host:start_database", "verify"]
    assert facts.get_instance(ec2_raw, iid)["InstanceType"] == "t4g.small"


def test_scale_verification_failure_is_reported_with_snapshots(run, ec2_raw, stack):
    iid, _ = launch_db_host(ec2_raw)
    run.verifier.ok = False
    with pytest.raises(RunbookFailed) as err:
        _scale(run, iid, "t4g.small", stack("t4g.small"))
    assert "postgresql: refused" in str(err.value.error)
    assert "running as t4g.small" in err.value.state
    assert "snap-" in err.value.resume


def test_scale_start_timeout_is_reported(run, ec2, ec2_raw, stack):
    from tests.integration.aws.fakes import SlowEc2

    iid, _ = launch_db_host(ec2_raw)

    def initializing(result):
        for s in result["InstanceStatuses"]:
            if s["InstanceState"]["Name"] == "running":
                s["InstanceStatus"]["Status"] = "initializing"

    run.ec2 = SlowEc2(ec2, "describe_instance_status", initializing, times=None)
    run.backoff = Backoff(timeout_s=600, initial_s=5, max_s=60)
    with pytest.raises(RunbookFailed) as err:
        _scale(run, iid, "t4g.small", stack("t4g.small"))
    assert "timed out" in str(err.value.error) and "instance=initializing" in str(err.value.error)
    assert "describe-instance-status" in err.value.resume
