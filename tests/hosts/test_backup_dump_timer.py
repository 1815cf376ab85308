"""The weekly logical dump on the converged db host: the timer is scheduled, one run of the
service puts a dump and its manifest in the sandbox's S3 (through the TLS front, with the
host's CA), and what comes back from S3 checks out against the manifest."""

from __future__ import annotations

import json

import boto3
import pytest
from lighthouse_ops.backup import dump as d
from lighthouse_ops.backup import s3 as s3dump
from lighthouse_ops.deploy import s3
from lighthouse_ops.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY

from tests.hosts.deploy_support import Converged


@pytest.fixture(scope="module")
def dumped(site: Converged, sandbox, sandbox_hosts):
    out = sandbox.ssh("db-1", "systemctl start lighthouse-dump.service && "
                      "journalctl -u lighthouse-dump.service -o cat -n 20 --no-pager")
    state = s3.ensure_s3(sandbox)
    client = boto3.client(
        "s3", endpoint_url=f"https://{sandbox_hosts['db-1'].controller_ip}:{state['port']}",
        verify=state["ca_file"], region_name=REGION, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY)
    return out.stdout, client, state["bucket"]


def test_timer_is_weekly_and_persistent(site, db_host) -> None:
    timer = db_host.service("lighthouse-dump.timer")
    assert timer.is_enabled and timer.is_running
    conf = db_host.file("/etc/systemd/system/lighthouse-dump.timer").content_string
    assert "OnCalendar=Sun *-*-* 03:30:00" in conf and "Persistent=true" in conf
    env = db_host.file("/etc/lighthouse/aws.env")
    assert (env.user, env.group, env.mode) == ("root", "postgres", 0o640)


def test_a_run_uploads_a_dump_that_checks_out(dumped, db_host, tmp_path) -> None:
    journal, client, bucket = dumped
    keys = sorted(o["Key"] for o in client.list_objects_v2(
        Bucket=bucket, Prefix=s3.DUMPS_PREFIX).get("Contents", []))
    dumps = [k for k in keys if k.endswith(".dump")]
    assert dumps and f"{dumps[-1]}{d.MANIFEST_SUFFIX}" in keys, keys
    assert f"uploaded s3://{bucket}/{dumps[-1]}" in journal
    got = s3dump.download(f"s3://{bucket}/{dumps[-1]}", tmp_path, client)
    manifest = d.check_file(got, require_manifest=True)
    assert manifest.database == "lighthouse"
    assert any(name.endswith("check_history") for name in manifest.tables)
    head = client.head_object(Bucket=bucket, Key=dumps[-1])
    assert head["Metadata"]["sha256"] == manifest.sha256


def test_local_copies_are_private_and_pruned(dumped, db_host) -> None:
    listing = json.loads(db_host.check_output(
        "python3 -c 'import json,os,sys; d=\"/data/dumps\"; print(json.dumps("
        "[(n, oct(os.stat(d+\"/\"+n).st_mode & 0o777)) for n in sorted(os.listdir(d))]))'"))
    dumps = [n for n, _ in listing if n.endswith(".dump")]
    assert len(dumps) == 1  # --keep-local 1
    assert all(mode == "0o600" for _, mode in listing), listing
    assert db_host.file("/data/dumps").mode == 0o700
