"""The migrator on vanilla PostgreSQL 15 (this machine's server)."""

from __future__ import annotations

import io

import psycopg
import pytest
from lighthouse.db import (
    Capability,
    ChecksumMismatchError,
    DatabaseUnreachableError,
    PrivilegeError,
    SchemaOutdatedError,
    SchemaTooNewError,
    detect_capability,
)
from lighthouse.db.migrate import ensure_schema, migrate, schema_status
from lighthouse.db.migrations import load_migrations

from tests.support.threads import run_at_once

LATEST = len(load_migrations(Capability.VANILLA))


def _versions(dsn: str) -> list[tuple[int, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT version, capability FROM schema_migrations ORDER BY version").fetchall()


def test_migrate_applies_all_then_second_run_is_noop(pg15_db):
    applied = migrate(pg15_db)
    assert [m.version for m in applied] == list(range(1, LATEST + 1))
    assert _versions(pg15_db) == [(v, "vanilla") for v in range(1, LATEST + 1)]
    assert migrate(pg15_db) == []
    status = schema_status(pg15_db)
    assert status.up_to_date and status.capability is Capability.VANILLA


def test_detect_capability_is_vanilla_here(pg15_db):
    with psycopg.connect(pg15_db) as conn:
        assert detect_capability(conn) is Capability.VANILLA


def test_schema_matches_contract(pg15_db):
    migrate(pg15_db)
    with psycopg.connect(pg15_db) as conn:
        labels = {r[0] for r in conn.execute(
            "SELECT unnest(enum_range(NULL::monitor_type))::text")}
        assert {"http", "tcp", "tls", "websocket", "balance", "canary", "graphql"} <= labels
        cols = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'check_history'").fetchall())
        assert cols["http_status"] == "smallint" and cols["timings"] == "jsonb"
        assert cols["error_code"] == "character varying"
        assert "cert_days_left" in cols and "alert_sent_at" in cols
        user_id = conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO subscriptions (user_id, name, target_type, target_config,"
                         " check_interval_seconds) VALUES (%s, 'x', 'http', '{}', 60)",
                         (user_id,))
        conn.rollback()


def test_notify_on_subscription_change(pg15_db):
    migrate(pg15_db)
    with psycopg.connect(pg15_db, autocommit=True) as listener, \
            psycopg.connect(pg15_db, autocommit=True) as writer:
        listener.execute("LISTEN lighthouse_subscriptions")
        uid = writer.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()[0]
        sid = writer.execute(
            "INSERT INTO subscriptions (user_id, name, target_type, target_config) "
            "VALUES (%s, 'api', 'tcp', '{\"host\": \"db\", \"port\": 5432}') RETURNING id",
            (uid,)).fetchone()[0]
        note = next(listener.notifies(timeout=5))
        assert f'"id" : "{sid}"' in note.payload and '"op" : "INSERT"' in note.payload


def test_replayed_batch_is_ignored(pg15_db):
    migrate(pg15_db)
    row = ("2026-01-01T00:00:00Z", "00000000-0000-0000-0000-000000000001", "success", 12)
    with psycopg.connect(pg15_db) as conn:
        for _ in range(2):
            conn.execute("INSERT INTO check_history (time, subscription_id, status, latency_ms) "
                         "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", row)
        assert conn.execute("SELECT count(*) FROM check_history").fetchone()[0] == 1


def test_dry_run_prints_sql_and_changes_nothing(pg15_db):
    out = io.StringIO()
    pending = migrate(pg15_db, dry_run=True, out=out)
    assert len(pending) == LATEST
    assert "CREATE TABLE check_history" in out.getvalue()
    assert "PARTITION BY RANGE (time)" in out.getvalue()
    with psycopg.connect(pg15_db) as conn:
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None


def test_concurrent_migrators_serialize(pg15_db):
    results, errors = run_at_once(lambda: migrate(pg15_db), 3)
    assert not errors
    assert sorted(len(r) for r in results) == [0, 0, LATEST]
    assert [v for v, _ in _versions(pg15_db)] == list(range(1, LATEST + 1))


def test_changed_applied_migration_is_refused(pg15_db):
    migrate(pg15_db)
    with psycopg.connect(pg15_db) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1")
    with pytest.raises(ChecksumMismatchError, match="001_core"):
        migrate(pg15_db)


def test_ensure_schema(pg15_db):
    with pytest.raises(SchemaOutdatedError, match="run `lighthouse migrate`"):
        ensure_schema(pg15_db, wait_s=0.3, poll_s=0.1)
    migrate(pg15_db)
    assert ensure_schema(pg15_db, wait_s=0).current_version == LATEST
    with psycopg.connect(pg15_db) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', repeat('a', 64),"
                     " 'vanilla', now(), 1)")
    with pytest.raises(SchemaTooNewError, match=r"\[999\]"):
        ensure_schema(pg15_db, wait_s=5)
    with pytest.raises(SchemaTooNewError):
        migrate(pg15_db)


def test_unreachable_database_is_named_without_password():
    dsn = "postgresql://lh:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseUnreachableError) as info:
        migrate(dsn)
    assert "127.0.0.1:1/nowhere" in str(info.value) and "s3cret" not in str(info.value)


def test_missing_privileges_are_reported(pg15, pg15_db):
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS lh_weak")
        conn.execute("CREATE ROLE lh_weak LOGIN PASSWORD 'weak'")
    dsn = pg15_db.replace("postgres:lighthouse-test@", "lh_weak:weak@")
    with pytest.raises(PrivilegeError, match="lh_weak"):
        migrate(dsn)


def test_requesting_an_unavailable_level_is_refused(pg15_db):
    from lighthouse.db import MigrationError

    with pytest.raises(MigrationError, match="server offers vanilla"):
        migrate(pg15_db, capability="apache")
    migrate(pg15_db, capability="vanilla")
    with pytest.raises(MigrationError, match="created for capability vanilla"):
        migrate(pg15_db, capability="timescale")


def test_invoke_tasks_run_against_the_database(pg15_db, capsys, monkeypatch):
    from invoke import Context
    from lighthouse_ops.tasks import db as db_tasks

    db_tasks.migrate(Context(), dsn=pg15_db, dry_run=True)
    assert "would apply" in capsys.readouterr().out
    monkeypatch.setenv("LIGHTHOUSE_DATABASE__DSN", pg15_db)
    db_tasks.migrate(Context())
    db_tasks.maintain(Context())
    db_tasks.status(Context())
    out = capsys.readouterr().out
    assert "rolled_until" in out and "vanilla" in out and "unavailable" in out
    monkeypatch.delenv("LIGHTHOUSE_DATABASE__DSN")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit, match="pass --dsn"):
        db_tasks.status(Context())
