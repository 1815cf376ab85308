"""aws.backup-now / aws.recovery-points through the AWS Backup interface (stubbed: moto has
no AWS Backup jobs), and the boto3 implementation's request shapes via botocore's Stubber."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from lighthouse_ops.aws.backup import (
    Boto3Backup,
    backup_now,
    render_recovery_points,
    volume_arn,
)
from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.waiters import Backoff, WaitFailed

from tests.integration.aws.fakes import FakeClock, RecordingConsole, StubBackup

ARN = volume_arn("us-east-1", "123456789012", "vol-0abc")
ROLE = "arn:aws:iam::123456789012:role/lighthouse-backup"


def _run() -> AwsRun:
    return AwsRun(ec2=None, console=RecordingConsole(), clock=FakeClock(),
                  backoff=Backoff(timeout_s=60, initial_s=1, max_s=4))


def test_backup_now_follows_the_job_to_a_recovery_point():
    service, run = StubBackup(), _run()
    job = backup_now(run, service, vault="lighthouse-prod", resource_arn=ARN, role_arn=ROLE)
    assert job.state == "COMPLETED" and job.recovery_point_arn
    assert service.started == [{"vault": "lighthouse-prod", "resource_arn": ARN,
                                "role_arn": ROLE, "job_id": "job-1"}]
    assert "RUNNING" in run.console.text  # progress shown while it ran
    points = service.recovery_points(vault="lighthouse-prod", resource_arn=ARN)
    assert [p.arn for p in points] == [job.recovery_point_arn]
    table = render_recovery_points(points)
    assert "5.0 GiB" in table and "COMPLETED" in table


def test_backup_now_failed_job_raises():
    service = StubBackup(states=["CREATED", "FAILED"])
    with pytest.raises(WaitFailed, match="FAILED"):
        backup_now(_run(), service, vault="v", resource_arn=ARN, role_arn=ROLE)


def test_no_recovery_points_says_so():
    assert render_recovery_points([]) == "no recovery points"


def test_boto3_backup_request_shapes():
    client = boto3.client("backup", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # noqa: S106 (stubbed, never sent)
    created = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    with Stubber(client) as stub:
        stub.add_response("start_backup_job", {"BackupJobId": "j-1"},
                          {"BackupVaultName": "v", "ResourceArn": ARN, "IamRoleArn": ROLE})
        stub.add_response("describe_backup_job", {"BackupJobId": "j-1", "State": "RUNNING",
                                                  "PercentDone": "40"}, {"BackupJobId": "j-1"})
        stub.add_response("list_recovery_points_by_backup_vault", {"RecoveryPoints": [
            {"RecoveryPointArn": "arn:rp:1", "ResourceArn": ARN, "CreationDate": created,
             "Status": "COMPLETED", "BackupSizeInBytes": 2**30}]},
            {"BackupVaultName": "v", "ByResourceArn": ARN})
        svc = Boto3Backup(client)
        assert svc.start_backup(vault="v", resource_arn=ARN, role_arn=ROLE) == "j-1"
        assert svc.job("j-1").percent == "40"
        [point] = svc.recovery_points(vault="v", resource_arn=ARN)
    assert point.created == created and point.size_bytes == 2**30
