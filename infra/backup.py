"""Backup: an AWS Backup vault + plan + tag selection for EBS snapshots, and an S3 bucket for
pgBackRest (WAL archive, full/incremental backups) and pg_dump exports.

Plan: daily at 02:00 UTC kept ``dailyRetentionDays`` (30), optional weekly kept
``weeklyRetentionDays`` (90), optional copy of every recovery point to another vault
(cross-region). Selection: every resource tagged ``lighthouse:backup = lighthouse-<stack>``
(the data volume carries it).

Bucket: versioned, SSE (AES256), all public access blocked, TLS-only policy. Lifecycle expires
``dumps/`` after ``dumpExpirationDays`` and old object versions after
``noncurrentVersionExpirationDays``; it never expires ``pgbackrest/`` objects because
pgBackRest enforces its own retention and an expired WAL segment breaks point-in-time recovery.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import COMPONENT_PREFIX, child, stateful, tags
from infra.config import DUMPS_PREFIX, StackConfig

PGBACKREST_PREFIX = "pgbackrest/"
BACKUP_SERVICE_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
)


@dataclass(frozen=True)
class BackupArgs:
    cfg: StackConfig


class Backup(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    vault_name: pulumi.Output[str] | None
    vault_arn: pulumi.Output[str] | None
    plan_id: pulumi.Output[str] | None
    role_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: BackupArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{COMPONENT_PREFIX}:Backup", name, None, opts)
        cfg = args.cfg
        self._bucket(cfg)
        self.vault_name = self.vault_arn = self.plan_id = self.role_arn = None
        if cfg.backup.enabled:
            self._plan(cfg)
        self.register_outputs({"bucket_name": self.bucket_name, "vault_name": self.vault_name})

    def _bucket(self, cfg: StackConfig) -> None:
        b = cfg.backup
        bucket = aws.s3.Bucket(
            "backups", bucket_prefix=f"{cfg.name_prefix}-backups-",
            force_destroy=not cfg.deletion_protection, tags=tags(cfg, "backups"),
            opts=stateful(self, cfg))
        aws.s3.BucketVersioning(
            "backups", bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"), opts=child(self))
        aws.s3.BucketServerSideEncryptionConfiguration(
            "backups", bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"))],
            opts=child(self))
        aws.s3.BucketPublicAccessBlock(
            "backups", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child(self))
        aws.s3.BucketLifecycleConfiguration(
            "backups", bucket=bucket.id, opts=child(self), rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-dumps", status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=DUMPS_PREFIX),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=b.dump_expiration_days)),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-versions", status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.
                    BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=b.noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload=aws.s3.
                    BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7)),
            ])
        aws.s3.BucketPolicy(
            "backups-tls-only", bucket=bucket.id, opts=child(self),
            policy=bucket.arn.apply(lambda arn: json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
                    "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }],
            })))
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn

    def _plan(self, cfg: StackConfig) -> None:
        b = cfg.backup
        vault = aws.backup.Vault("vault", name=f"{cfg.name_prefix}-vault",
                                 force_destroy=not cfg.deletion_protection,
                                 tags=tags(cfg, "vault"), opts=stateful(self, cfg))
        copy = ([aws.backup.PlanRuleCopyActionArgs(
            destination_vault_arn=b.copy_to_vault_arn,
            lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(
                delete_after=b.daily_retention_days))] if b.copy_to_vault_arn else None)
        rules = [aws.backup.PlanRuleArgs(
            rule_name="daily", target_vault_name=vault.name, schedule=b.schedule,
            start_window=60, completion_window=180, copy_actions=copy,
            lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=b.daily_retention_days),
            recovery_point_tags=tags(cfg, "daily"))]
        if b.weekly:
            rules.append(aws.backup.PlanRuleArgs(
                rule_name="weekly", target_vault_name=vault.name, schedule=b.weekly_schedule,
                start_window=60, completion_window=180,
                lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=b.weekly_retention_days),
                recovery_point_tags=tags(cfg, "weekly")))
        plan = aws.backup.Plan("plan", name=f"{cfg.name_prefix}-plan", rules=rules,
                               tags=tags(cfg, "plan"), opts=child(self))
        role = aws.iam.Role("backup", opts=child(self), tags=tags(cfg, "backup-role"),
                            assume_role_policy=json.dumps({
                                "Version": "2012-10-17",
                                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                               "Principal": {"Service": "backup.amazonaws.com"}}],
                            }))
        for i, arn in enumerate(BACKUP_SERVICE_POLICIES):
            aws.iam.RolePolicyAttachment(f"backup-{i}", role=role.name, policy_arn=arn,
                                         opts=child(self))
        key, value = cfg.backup_tag
        aws.backup.Selection(
            "by-tag", name=f"{cfg.name_prefix}-by-tag", plan_id=plan.id, iam_role_arn=role.arn,
            selection_tags=[aws.backup.SelectionSelectionTagArgs(
                type="STRINGEQUALS", key=key, value=value)],
            opts=child(self))
        self.vault_name = vault.name
        self.role_arn = role.arn
        self.vault_arn = vault.arn
        self.plan_id = plan.id
