"""pgBackRest against this machine's PostgreSQL 15 and moto S3 over TLS: backup, list, verify,
and detection of a corrupted backup file. (The PITR drill on a real host is in tests/hosts.)"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from lighthouse_ops.backup.pgbackrest import ClusterPaths, PgBackRest, verify_latest
from lighthouse_ops.backup.remote import LocalRunner
from lighthouse_ops.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

from tests.support.pgserver import PASSWORD, PgServer

pytestmark = pytest.mark.skipif(shutil.which("pgbackrest") is None,
                                reason="pgbackrest not installed (scripts/apt-packages.txt)")
STANZA = "lh"
BUCKET = "lh-pgbackrest"
CIPHER_PASS = "test-only-" + "x" * 40  # noqa: S105 - a throw-away repository's passphrase


def _config(base: Path, s3: MotoS3, pg: PgServer) -> Path:
    conf = base / "pgbackrest.conf"
    conf.write_text(f"""[global]
repo1-type=s3
repo1-path=/repo
repo1-s3-bucket={BUCKET}
repo1-s3-endpoint=127.0.0.1
repo1-storage-port={s3.port}
repo1-s3-region={REGION}
repo1-s3-uri-style=path
repo1-s3-key={ACCESS_KEY}
repo1-s3-key-secret={SECRET_KEY}
repo1-storage-ca-file={s3.ca_file}
repo1-retention-full=2
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass={CIPHER_PASS}
repo1-bundle=y
compress-type=zst
start-fast=y
log-path={base}/log
lock-path={base}/lock
log-level-console=warn
log-level-file=off

[{STANZA}]
pg1-path={pg.datadir}
pg1-port={pg.port}
pg1-socket-path={pg.base}
pg1-user=postgres
""")
    return conf


@pytest.fixture(scope="module")
def rig():
    # pytest's tmp dirs are 0700 root: the postgres user running pgbackrest must read ours.
    base = Path(tempfile.mkdtemp(prefix="lh-pgbr-"))
    os.chmod(base, 0o755)  # noqa: S103 - read by the postgres user
    s3 = MotoS3.start(base / "moto", buckets=[BUCKET])
    os.chmod(base / "moto", 0o755)  # noqa: S103 - CA file read by postgres
    for d in ("log", "lock"):
        (base / d).mkdir()
        shutil.chown(base / d, "postgres", "postgres")
    conf = base / "pgbackrest.conf"
    pg = PgServer.create(extra_conf={
        "archive_mode": "on", "wal_level": "replica", "archive_timeout": "60",
        "archive_command": f"'pgbackrest --config={conf} --stanza={STANZA} archive-push %p'"})
    _config(base, s3, pg)
    os.environ.setdefault("PGPASSWORD", PASSWORD)
    pgbr = PgBackRest(LocalRunner(), stanza=STANZA, config=str(conf))
    # pg1 connections from pgbackrest use the socket; scram needs the password in the env
    pgbr.runner.run(f"chmod 644 {conf}")
    pgbr.extra = []
    dsn = pg.create_database("lighthouse")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE hist (id bigint PRIMARY KEY, v text)")
        conn.execute("INSERT INTO hist SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
    yield pg, pgbr, dsn, base
    pg.destroy()
    s3.stop()
    shutil.rmtree(base, ignore_errors=True)


def _paths(pg: PgServer, base: Path) -> ClusterPaths:
    return ClusterPaths(pg_bin="/usr/lib/postgresql/15/bin", scratch_root=str(base / "scratch"),
                        source_conninfo=f"host={pg.base} port={pg.port} dbname=lighthouse "
                                        f"user=postgres password={PASSWORD}",
                        scratch_port=pg.port + 1, script_user="root")  # venv python: root


def test_backup_list_and_verify_roundtrip(rig):
    pg, pgbr, dsn, base = rig
    pgbr.run("stanza-create", "--log-level-console=warn")
    pgbr.check()
    full = pgbr.backup("full")
    assert full.type == "full"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO hist SELECT g, 'later' FROM generate_series(5001, 5100) g")
    incr = pgbr.backup("incr")
    assert incr.type == "incr"
    assert [b.label for b in pgbr.sets()][-2:] == [full.label, incr.label]
    (wal,) = pgbr.info().wal  # the archive covers both backups' WAL
    assert wal.first <= full.wal_start and wal.last >= incr.wal_stop, (wal, full, incr)
    # the repository is encrypted at rest (OpenSSL's salted format), manifests and WAL too
    s3 = boto_client(base)
    for key in (f"repo/backup/{STANZA}/backup.info",
                f"repo/backup/{STANZA}/{full.label}/backup.manifest"):
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read(8) == b"Salted__", key
    wal_key = next(o["Key"] for o in s3.list_objects_v2(
        Bucket=BUCKET, Prefix=f"repo/archive/{STANZA}/")["Contents"] if o["Key"].endswith(".zst"))
    assert s3.get_object(Bucket=BUCKET, Key=wal_key)["Body"].read(8) == b"Salted__"
    # rows written after the last backup come back too: verify replays WAL to a restore point
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM hist WHERE id <= 10")
    result = verify_latest(pgbr, _paths(pg, base), yes=True)
    assert result.ok, "\n".join(result.differences)
    assert result.rows == 5090
    assert not list((base / "scratch").iterdir())  # scratch removed


def test_verify_catches_a_corrupted_backup_file(rig):
    pg, pgbr, dsn, base = rig
    if not pgbr.sets():
        pgbr.run("stanza-create", "--log-level-console=warn")
        pgbr.backup("full")
    latest = pgbr.sets()[-1]
    s3 = boto_client(base)
    prefix = f"repo/backup/{STANZA}/{latest.label}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
            if "backup.manifest" not in o["Key"]]
    victim = max(keys, key=lambda k: s3.head_object(Bucket=BUCKET, Key=k)["ContentLength"])
    body = s3.get_object(Bucket=BUCKET, Key=victim)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=victim, Body=body[: len(body) // 2])  # truncated
    result = verify_latest(pgbr, _paths(pg, base), yes=True)
    assert not result.ok
    assert any(victim.rsplit("/", 1)[-1].split(".")[0] in d or "repository" in d
               for d in result.differences)


def boto_client(base: Path):
    import boto3

    port = int((base / "moto" / "stunnel.conf").read_text().split("connect = 127.0.0.1:")[1]
               .split()[0])
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
