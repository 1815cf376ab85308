"""Backup: vault, plan rules, tag selection, and the dump/WAL bucket."""

import json


def test_plan_has_daily_0200_utc_kept_30_days(run):
    plan = run.one("aws:backup/plan:Plan")
    rules = {r["ruleName"]: r for r in plan.inputs["rules"]}
    daily = rules["daily"]
    assert daily["schedule"] == "cron(0 2 * * ? *)"
    assert daily["lifecycle"] == {"deleteAfter": 30}
    assert daily["targetVaultName"] == run.one("aws:backup/vault:Vault").id
    assert "copyActions" not in daily


def test_weekly_90_days_only_where_configured(run):
    rules = {r["ruleName"]: r for r in run.one("aws:backup/plan:Plan").inputs["rules"]}
    if run.cfg.stack == "prod":
        assert set(rules) == {"daily", "weekly"}
        assert rules["weekly"]["lifecycle"] == {"deleteAfter": 90}
        assert rules["weekly"]["schedule"] == "cron(0 3 ? * SUN *)"
    else:
        assert set(rules) == {"daily"}


def test_selection_by_tag_covers_the_data_volume(run):
    sel = run.one("aws:backup/selection:Selection")
    tag = {"type": "STRINGEQUALS", "key": "lighthouse:backup",
           "value": f"lighthouse-{run.cfg.stack}"}
    assert sel.inputs["selectionTags"] == [tag]
    assert sel.inputs["planId"] == run.one("aws:backup/plan:Plan").id
    assert run.one("aws:ebs/volume:Volume", "data").inputs["tags"][tag["key"]] == tag["value"]
    role = run.by_id("aws:iam/role:Role", sel.inputs["iamRoleArn"].rsplit("/", 1)[1])
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "backup.amazonaws.com"}
    assert run.outputs["backup_vault_name"] == f"lighthouse-{run.cfg.stack}-vault"


def _bucket_child(run, typ):
    bucket = run.one("aws:s3/bucket:Bucket")
    found = [r for r in run.of_type(typ) if r.inputs["bucket"] == bucket.id]
    assert len(found) == 1, typ
    return found[0]


def test_bucket_is_versioned_encrypted_private_and_tls_only(run):
    bucket = run.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["forceDestroy"] is (run.cfg.stack != "prod")
    assert run.outputs["backup_bucket"] == bucket.id
    assert _bucket_child(run, "aws:s3/bucketVersioning:BucketVersioning").inputs[
        "versioningConfiguration"]["status"] == "Enabled"
    sse = _bucket_child(run, "aws:s3/bucketServerSideEncryptionConfiguration:"
                             "BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    pab = _bucket_child(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for key in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                "restrictPublicBuckets"):
        assert pab.inputs[key] is True
    policy = json.loads(_bucket_child(run, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    stmt = policy["Statement"][0]
    assert stmt["Effect"] == "Deny"
    assert stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert stmt["Resource"] == [bucket.state["arn"], bucket.state["arn"] + "/*"]


def test_lifecycle_expires_dumps_but_never_pgbackrest(run):
    lc = _bucket_child(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rules = {r["id"]: r for r in lc.inputs["rules"]}
    assert rules["expire-dumps"]["filter"] == {"prefix": "dumps/"}
    assert rules["expire-dumps"]["expiration"] == {
        "days": run.cfg.backup.dump_expiration_days}
    assert rules["expire-old-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    for rule in rules.values():
        assert "expiration" not in rule or rule["filter"]["prefix"] == "dumps/"
