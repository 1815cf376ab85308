"""pgBackRest on a real database host (PostgreSQL 17 + TimescaleDB, moto S3 over TLS):
the role's archiving and timers, backup.verify (and its failure on a corrupt backup), and the
PITR drill: write, note the time, write more, delete by accident, restore, prove.

Uses site.yml converged once per session (tests/hosts/deploy_support.py), where
prepare_sandbox turns pgBackRest on. RPO/RTO figures are printed for docs/benchmarks.md.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest
from lighthouse_ops.backup.drill import archive_push_seconds, psql_on, run_drill
from lighthouse_ops.backup.pgbackrest import ClusterPaths, PgBackRest, verify_latest
from lighthouse_ops.backup.remote import runner_from_inventory
from lighthouse_ops.deploy import s3 as sandbox_s3
from lighthouse_ops.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY

from tests.hosts.deploy_support import Converged, converged_site, psql

DB = "db-1"


@pytest.fixture(scope="module")
def site(sandbox) -> Converged:
    converged = converged_site(sandbox)
    assert converged.first.ok, converged.first.output[-3000:]
    return converged


@pytest.fixture(scope="module")
def pgbr(site) -> PgBackRest:
    return PgBackRest(runner_from_inventory(site.dep.inventory, DB))


def _sql(sandbox, text: str) -> list[list[str]]:
    return psql(sandbox, text)


def test_role_archives_wal_and_schedules_backups(sandbox, site, db_host, pgbr) -> None:
    conf = db_host.file("/etc/pgbackrest/pgbackrest.conf")
    assert conf.user == "postgres" and conf.mode == 0o640
    assert "repo1-s3-uri-style=path" in conf.content_string
    for kind in ("full", "incr"):
        timer = db_host.service(f"pgbackrest-backup@{kind}.timer")
        assert timer.is_enabled and timer.is_running
    rows = _sql(sandbox, "SELECT current_setting('archive_mode'), "
                         "current_setting('archive_timeout'), failed_count FROM pg_stat_archiver")
    assert rows == [["on", "1min", "0"]]
    sets = pgbr.sets()
    assert sets and sets[0].type == "full"  # the role's first backup
    pgbr.check()


def test_verify_latest_backup_matches_source(sandbox, site, pgbr) -> None:
    _sql(sandbox, "CREATE TABLE IF NOT EXISTS verify_probe (id int PRIMARY KEY, v text);"
                  "INSERT INTO verify_probe SELECT g, md5(g::text) FROM generate_series(1, 2000) g"
                  " ON CONFLICT DO NOTHING")
    pgbr.backup("incr")
    result = verify_latest(pgbr, ClusterPaths(), yes=True)
    assert result.ok, "\n".join(result.differences)
    assert result.rows >= 2000


def test_pitr_drill_brings_back_exactly_the_rows_before_the_noted_time(site, pgbr) -> None:
    sql = psql_on(pgbr.runner)
    result = run_drill(sql, str(site.dep.inventory), DB,
                       extra_vars={"pgbackrest_restore_full_backup": False})
    assert result.rows_at_accident == 650 - 216  # 150 more written, every third row deleted
    assert result.ok, result
    t1 = time.monotonic()
    full = pgbr.backup("full")  # what the playbook does by default after promotion
    print("\nBENCH " + json.dumps({"wal_push_s": round(result.archive_push_s, 2),
                                   "archive_timeout": sql("SHOW archive_timeout"),
                                   "rto_pitr_s": round(result.rto_s, 1),
                                   "full_backup_after_s": round(time.monotonic() - t1, 1),
                                   "database_bytes": full.size}))
    # archiving is healthy again on the new timeline
    assert archive_push_seconds(sql) < 120


def test_verify_fails_on_a_corrupted_backup(sandbox, site, pgbr) -> None:
    state = sandbox_s3.ensure_s3(sandbox)  # the running sandbox S3: port, CA, bucket
    latest = pgbr.sets()[-1]
    s3 = boto3.client("s3", endpoint_url=f"https://127.0.0.1:{state['port']}",
                      verify=state["ca_file"], region_name=REGION,
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    bucket = state["bucket"]
    prefix_objs = s3.list_objects_v2(Bucket=bucket)["Contents"]
    # bundles (repo1-bundle) or single files of the latest backup; not its manifest
    files = [o for o in prefix_objs if f"/{latest.label}/" in o["Key"]
             and "backup.manifest" not in o["Key"]]
    victim = max(files, key=lambda o: o["Size"])["Key"]
    body = s3.get_object(Bucket=bucket, Key=victim)["Body"].read()
    s3.put_object(Bucket=bucket, Key=victim, Body=body[: len(body) // 2])
    try:
        result = verify_latest(pgbr, ClusterPaths(), yes=True)
        assert not result.ok
    finally:
        # leave a good backup behind for whatever runs next on this host
        s3.put_object(Bucket=bucket, Key=victim, Body=body)
    assert bucket == sandbox_s3.BUCKET
