"""lighthouse-dump (the weekly timer's command) against PostgreSQL 15 and moto's S3 behind
the TLS front, configured only through boto3's environment variables as on the host."""

from __future__ import annotations

import time

import psycopg
import pytest
from lighthouse_ops.backup import dump as d
from lighthouse_ops.backup import scheduled
from lighthouse_ops.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3
from psycopg.conninfo import conninfo_to_dict


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with MotoS3.start(tmp_path_factory.mktemp("moto"), buckets=["lh-backups"]) as server:
        yield server


@pytest.fixture
def host_env(moto, monkeypatch):
    for key, value in {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_CA_BUNDLE": str(moto.ca_file),
                       "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                       "AWS_SECRET_ACCESS_KEY": SECRET_KEY}.items():
        monkeypatch.setenv(key, value)


def _args(dsn: str, tmp_path, url: str, keep: int = 1) -> list[str]:
    p = conninfo_to_dict(dsn)
    return ["--database", p["dbname"], "--port", str(p.get("port", 5432)), "--dir",
            str(tmp_path / "dumps"), "--upload", url, "--keep-local", str(keep), "--path-style"]


def test_weekly_runs_upload_and_keep_only_the_newest_locally(host_env, moto, pg15_db, tmp_path,
                                                             monkeypatch, capsys):
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g")
    monkeypatch.setattr(scheduled, "_dsn", _with_password(pg15_db))
    assert scheduled.main(_args(pg15_db, tmp_path, "s3://lh-backups/dumps/")) == 0
    time.sleep(1.1)  # file names carry the second
    assert scheduled.main(_args(pg15_db, tmp_path, "s3://lh-backups/dumps/")) == 0
    out = capsys.readouterr().out
    assert out.count("lighthouse-dump: uploaded s3://lh-backups/dumps/") == 2
    keys = [o["Key"] for o in moto.client().list_objects_v2(
        Bucket="lh-backups", Prefix="dumps/")["Contents"]]
    assert len([k for k in keys if k.endswith(".dump")]) == 2
    local = sorted((tmp_path / "dumps").iterdir())
    assert len(local) == 2 and local[0].name.endswith(".dump")  # one dump + its manifest
    assert d.check_file(local[0], require_manifest=True).tables


def test_failures_are_one_line_and_exit_1(host_env, pg15_db, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scheduled, "_dsn", _with_password(pg15_db))
    assert scheduled.main(_args(pg15_db, tmp_path, "s3://no-such-bucket/dumps/")) == 1
    last = capsys.readouterr().err.splitlines()[-1]  # before it: the step progress lines
    assert last.startswith("lighthouse-dump: ") and "NoSuchBucket" in last
    assert list((tmp_path / "dumps").glob("*.dump"))  # the local dump is kept for a retry

    monkeypatch.setattr(scheduled, "_dsn", lambda *a: "host=127.0.0.1 port=1 dbname=x")
    assert scheduled.main(_args(pg15_db, tmp_path, "s3://lh-backups/dumps/")) == 1
    assert "connection" in capsys.readouterr().err.lower()


def test_a_bad_url_fails_before_dumping(tmp_path, capsys):
    assert scheduled.main(["--dir", str(tmp_path), "--upload", "lh-backups/dumps"]) == 1
    assert "not an S3 URL" in capsys.readouterr().err and not list(tmp_path.iterdir())


def _with_password(dsn: str):
    """The host connects over the socket as the cluster owner; the test server needs its DSN."""
    return lambda socket_dir, port, database: dsn


def test_a_standby_skips_and_uploads_nothing(host_env, moto, tmp_path, monkeypatch, capsys):
    """A Patroni member that is not the primary: a real PostgreSQL 15 in recovery."""
    from tests.support.pgserver import PgServer

    server = PgServer.create()
    try:
        server.stop()
        (server.datadir / "standby.signal").touch()
        server.start()
        dsn = server.dsn()
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        before = moto.client().list_objects_v2(Bucket="lh-backups", Prefix="dumps/").get(
            "KeyCount", 0)
        monkeypatch.setattr(scheduled, "_dsn", _with_password(dsn))
        assert scheduled.main(_args(dsn, tmp_path, "s3://lh-backups/dumps/")) == 0
        assert "skipped: this server is a standby" in capsys.readouterr().out
        after = moto.client().list_objects_v2(Bucket="lh-backups", Prefix="dumps/").get(
            "KeyCount", 0)
        assert after == before and not (tmp_path / "dumps").exists()
    finally:
        server.destroy()
