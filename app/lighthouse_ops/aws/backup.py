"""`aws.backup-now` and `aws.recovery-points`: on-demand AWS Backup jobs and what they made.

AWS Backup is behind a small protocol: moto does not implement backup jobs or recovery
points, so tests use a stub with the same behaviour, and `Boto3Backup` is the real thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.waiters import wait_until

DONE = "COMPLETED"
FAILED = ("FAILED", "ABORTED", "EXPIRED", "PARTIAL")


@dataclass(frozen=True)
class BackupJob:
    job_id: str
    state: str  # CREATED | PENDING | RUNNING | COMPLETED | ABORTED | FAILED | EXPIRED | PARTIAL
    percent: str = ""
    recovery_point_arn: str | None = None
    message: str = ""


@dataclass(frozen=True)
class RecoveryPoint:
    arn: str
    resource_arn: str
    created: datetime
    status: str
    size_bytes: int | None = None


class BackupService(Protocol):
    def start_backup(self, *, vault: str, resource_arn: str, role_arn: str) -> str: ...
    def job(self, job_id: str) -> BackupJob: ...
    def recovery_points(self, *, vault: str, resource_arn: str | None) -> list[RecoveryPoint]: ...


class Boto3Backup:
    def __init__(self, client: Any):
        self.client = client

    @classmethod
    def create(cls, region: str | None = None) -> Boto3Backup:
        import boto3

        return cls(boto3.client("backup", region_name=region))

    def start_backup(self, *, vault: str, resource_arn: str, role_arn: str) -> str:
        got = self.client.start_backup_job(BackupVaultName=vault, ResourceArn=resource_arn,
                                           IamRoleArn=role_arn)
        return got["BackupJobId"]

    def job(self, job_id: str) -> BackupJob:
        j = self.client.describe_backup_job(BackupJobId=job_id)
        return BackupJob(job_id, j["State"], j.get("PercentDone", ""),
                         j.get("RecoveryPointArn"), j.get("StatusMessage", ""))

    def recovery_points(self, *, vault: str, resource_arn: str | None) -> list[RecoveryPoint]:
        kwargs: dict[str, Any] = {"BackupVaultName": vault}
        if resource_arn:
            kwargs["ByResourceArn"] = resource_arn
        points = []
        pages = self.client.get_paginator("list_recovery_points_by_backup_vault").paginate(**kwargs)
        for page in pages:
            for p in page["RecoveryPoints"]:
                points.append(RecoveryPoint(p["RecoveryPointArn"], p.get("ResourceArn", ""),
                                            p["CreationDate"], p["Status"],
                                            p.get("BackupSizeInBytes")))
        return sorted(points, key=lambda p: p.created, reverse=True)


def volume_arn(region: str, account: str, volume_id: str) -> str:
    return f"arn:aws:ec2:{region}:{account}:volume/{volume_id}"


def backup_now(run: AwsRun, service: BackupService, *, vault: str, resource_arn: str,
               role_arn: str, wait: bool = True) -> BackupJob:
    """Start an on-demand backup job; with `wait`, follow it to a final state."""
    job_id = service.start_backup(vault=vault, resource_arn=resource_arn, role_arn=role_arn)
    run.console.progress(f"backup job {job_id} started for {resource_arn}")
    if not wait:
        return service.job(job_id)
    job = wait_until(lambda: service.job(job_id), what=f"backup job {job_id}",
                     done=lambda j: j.state == DONE, failed=lambda j: j.state in FAILED,
                     show=lambda j: f"{j.state} {j.percent}%".strip().rstrip("%")
                     if j.percent else j.state, **run.waits(f"backup job {job_id}"))
    return job


def render_recovery_points(points: list[RecoveryPoint]) -> str:
    if not points:
        return "no recovery points"
    rows = [("created (UTC)", "status", "size", "recovery point")]
    for p in points:
        size = f"{p.size_bytes / 2**30:.1f} GiB" if p.size_bytes is not None else "-"
        rows.append((f"{p.created:%Y-%m-%d %H:%M}", p.status, size, p.arn))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}"
                     for r in rows)
