"""upgrade.yml on the converged hosts: a pgBackRest backup and an EBS snapshot (through
`invoke aws.snapshot` against a moto EC2) are taken first, the TimescaleDB step runs clean, and
a deliberately broken prober release fails its health gate and is rolled back to the previous
venv."""

from __future__ import annotations

import json
import shutil
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
from lighthouse_ops.deploy.ansible_run import PlaybookResult
from lighthouse_ops.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

from tests.hosts.deploy_support import Converged, converged_site

BROKEN = 'raise SystemExit("deliberately broken release (rollback test)")\n'


def broken_wheel(good: Path, out_dir: Path) -> Path:
    """The good wheel with lighthouse/service.py replaced: `migrate` works, `run` dies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / good.name
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = BROKEN.encode() if item.filename == "lighthouse/service.py" else src.read(item)
            dst.writestr(item, data)
    return out


@pytest.fixture(scope="module")
def ec2(tmp_path_factory):
    """A moto EC2 on loopback with one volume standing in for the db host's data volume."""
    with MotoS3.start(tmp_path_factory.mktemp("moto-ec2")) as moto:
        client = boto3.client("ec2", endpoint_url=moto.plain_endpoint, region_name=REGION,
                              aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        vol = client.create_volume(AvailabilityZone=f"{REGION}a", Size=20, TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": "stack", "Value": "sandbox"}]}])
        yield moto, client, vol["VolumeId"]


@pytest.fixture(scope="module")
def upgrade(sandbox, tmp_path_factory, ec2) -> tuple[Converged, PlaybookResult]:
    moto, _client, volume_id = ec2
    site = converged_site(sandbox)
    wheel = broken_wheel(site.dep.release.wheel, tmp_path_factory.mktemp("broken"))
    try:
        with pytest.MonkeyPatch.context() as mp:  # the controller-side aws.snapshot -> moto
            mp.setenv("AWS_ENDPOINT_URL", moto.plain_endpoint)
            mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            res = site.dep.playbook("upgrade.yml", {
                "upgrade_backup": "always",  # no package is pending in a fresh sandbox
                "data_volume_ebs_volume_id": volume_id,
                "lighthouse_aws_region": REGION,
                "prober_release": f"{site.dep.release.version}-broken",
                "prober_wheel": str(wheel),
                "prober_health_retries": 8,
            }, echo=False, check=False)
    finally:
        shutil.rmtree(wheel.parent, ignore_errors=True)
    return site, res


def test_backups_are_taken_before_the_upgrade_and_named(upgrade, ec2, sandbox) -> None:
    _, res = upgrade
    _moto, client, volume_id = ec2
    snaps = client.describe_snapshots(
        Filters=[{"Name": "volume-id", "Values": [volume_id]}])["Snapshots"]
    assert len(snaps) == 1, snaps
    tags = {t["Key"]: t["Value"] for t in snaps[0]["Tags"]}
    assert tags["lighthouse:reason"] == "pre-upgrade db-1" and tags["stack"] == "sandbox"
    assert tags["lighthouse:expires-at"] > snaps[0]["StartTime"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"aws.snapshot: {snaps[0]['SnapshotId']} of {volume_id}" in res.output
    info = json.loads(sandbox.ssh("db-1", "runuser -u postgres -- pgbackrest "
                                  "--stanza=lighthouse --output=json info").stdout)
    last = info[0]["backup"][-1]
    assert last["type"] == "incr"
    assert last["annotation"] == {"lighthouse-reason": "pre-upgrade"}
    assert f"pre-upgrade backup: pgBackRest incr {last['label']}" in res.output
    # both came before the packages were touched
    assert res.output.index("Take an on-demand backup") < res.output.index(
        "Upgrade PostgreSQL and TimescaleDB packages")


def test_timescaledb_upgrade_step_is_clean(upgrade) -> None:
    _, res = upgrade
    assert res.recap["db-1"]["failed"] == 0
    assert "Verify every database runs the available version" in res.output


def test_broken_release_fails_the_gate_and_rolls_back(upgrade, prober_host, sandbox_hosts) -> None:
    site, res = upgrade
    assert res.rc != 0 and res.recap["prober-1"]["failed"] == 1
    assert "rolled back to" in res.output
    current = prober_host.file("/opt/lighthouse/current")
    assert current.linked_to == f"/opt/lighthouse/venvs/{site.dep.release.name}"
    assert prober_host.service("lighthouse-prober").is_running
    url = f"http://{sandbox_hosts['prober-1'].ip}:8080/health"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310
        assert json.loads(resp.read())["status"] == "ok"
