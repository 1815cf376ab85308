"""The invoke front (`invoke aws.*`) end to end against the moto server (AWS_ENDPOINT_URL),
parsed by invoke's own Program as an operator's command line would be."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
from invoke import Collection, Program
from lighthouse_ops.aws import ec2 as facts
from lighthouse_ops.tasks import aws as aws_tasks

from tests.integration.aws.builders import launch_db_host


@pytest.fixture
def invoke(moto_url, tmp_path, monkeypatch, capsys):
    """Run `invoke aws.* ...` in-process against moto; returns (exit code, stdout, stderr)."""
    inventory = tmp_path / "hosts.yml"
    # as the stack generates it: names the stack the runbooks act on
    inventory.write_text("all:\n  vars:\n    lighthouse_stack: prod\n"
                         "  children:\n    db:\n      hosts: {}\n")
    for key, value in {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ns = Collection()
    ns.add_collection(Collection.from_module(aws_tasks))

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            Program(namespace=ns, version="0").run(["invoke", *args], exit=False)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    run.inventory = str(inventory)
    return run


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def test_snapshot_task(invoke, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw, stack="prod")
    got = invoke("aws.snapshot", "--volume", vid, "--description", "before-upgrade")
    assert got.returncode == 0, got.stderr
    assert f"of {vid} (20 GiB), state completed" in got.stdout
    snaps = ec2_raw.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vid]}])
    assert len(snaps["Snapshots"]) == 1


def test_scale_dry_run_shows_the_plan_and_changes_nothing(invoke, ec2_raw):
    iid, _ = launch_db_host(ec2_raw, stack="prod", itype="t4g.micro")
    got = invoke("aws.scale", "--type", "t4g.small", "--dry-run", "--inventory",
                 invoke.inventory)
    assert got.returncode == 0, got.stderr
    assert "Plan for aws.scale" in got.stdout and "stop PostgreSQL cleanly" in got.stdout
    assert "dry run, nothing changed" in got.stdout
    assert facts.get_instance(ec2_raw, iid)["InstanceType"] == "t4g.micro"


def test_scale_without_yes_and_without_terminal_changes_nothing(invoke, ec2_raw):
    iid, _ = launch_db_host(ec2_raw, stack="prod", itype="t4g.micro")
    got = invoke("aws.scale", "--type", "t4g.small", "--inventory", invoke.inventory)
    assert got.returncode == 1
    assert "pass --yes" in got.stdout and "not confirmed; nothing changed" in got.stderr
    assert facts.get_instance(ec2_raw, iid)["State"]["Name"] == "running"


def test_scale_refused_by_stack_config_exits_1_with_the_fix(invoke, ec2_raw):
    launch_db_host(ec2_raw, stack="prod", itype="t4g.micro")
    got = invoke("aws.scale", "--type", "t4g.medium", "--yes", "--inventory", invoke.inventory)
    assert got.returncode == 1
    assert "refused, nothing changed" in got.stderr
    assert ("pulumi config set --stack prod --path 'lighthouse:database.instanceType' "
            "t4g.medium") in got.stderr


def test_no_stack_anywhere_is_refused_not_guessed(invoke, ec2_raw, tmp_path):
    iid, _ = launch_db_host(ec2_raw, stack="prod", itype="t4g.micro")
    bare = tmp_path / "bare.yml"
    bare.write_text("all:\n  children:\n    db:\n      hosts: {}\n")
    got = invoke("aws.scale", "--type", "t4g.small", "--yes", "--inventory", str(bare))
    assert got.returncode == 1
    assert "which stack? pass --stack dev|prod" in got.stderr
    assert facts.get_instance(ec2_raw, iid)["InstanceType"] == "t4g.micro"


def test_a_stack_other_than_the_inventorys_is_refused(invoke, ec2_raw):
    launch_db_host(ec2_raw, stack="dev", itype="t4g.micro")
    got = invoke("aws.scale", "--type", "t4g.small", "--stack", "dev", "--yes", "--inventory",
                 invoke.inventory)
    assert got.returncode == 1
    assert "--stack dev but" in got.stderr and "generated from stack 'prod'" in got.stderr


def test_ids_come_from_the_generated_inventory_not_a_tag_scan(invoke, ec2_raw, tmp_path):
    # two tagged prod data volumes: a tag scan cannot tell them apart, the stack's output can
    _iid, first = launch_db_host(ec2_raw, stack="prod", size=100)
    _iid2, second = launch_db_host(ec2_raw, stack="prod", size=100)
    guess = invoke("aws.grow-volume", "--size", "150", "--dry-run", "--inventory",
                   invoke.inventory)
    assert guess.returncode == 1 and "cannot tell which volume" in guess.stderr
    generated = tmp_path / "generated.yml"
    generated.write_text(
        "all:\n  vars:\n    lighthouse_stack: prod\n  children:\n    db:\n      hosts:\n"
        f"        db-1:\n          data_volume_ebs_volume_id: {second}\n")
    got = invoke("aws.grow-volume", "--size", "150", "--dry-run", "--skip-stack-check",
                 "--inventory", str(generated))
    assert got.returncode == 0, got.stderr
    assert second in got.stdout and first not in got.stdout


def test_grow_volume_refuses_to_shrink(invoke, ec2_raw):
    _iid, vid = launch_db_host(ec2_raw, stack="prod", size=100)
    got = invoke("aws.grow-volume", "--size", "50", "--yes", "--inventory", invoke.inventory)
    assert got.returncode == 1 and "refusing to shrink" in got.stderr
    assert facts.get_volume(ec2_raw, vid)["Size"] == 100
