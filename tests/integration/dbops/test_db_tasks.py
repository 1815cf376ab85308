"""db.tune / db.diagnose through invoke (dry run only: the session server is shared)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
INVOKE = str(Path(sys.executable).with_name("invoke"))


def _invoke(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INVOKE, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "LIGHTHOUSE_DATABASE__DSN": dsn},
                          stdin=subprocess.DEVNULL, timeout=120)


def test_tune_dry_run_shows_reload_and_restart(pg15):
    r = _invoke("db.tune", "--ram", "2GB", "--cpus", "2", "--dry-run", dsn=pg15.dsn())
    assert r.returncode == 0, r.stderr
    assert "shared_buffers" in r.stdout and "512MB" in r.stdout and "restart" in r.stdout
    assert "work_mem" in r.stdout and "reload" in r.stdout
    assert "dry run: nothing was changed" in r.stdout


def test_tune_without_yes_and_tty_refuses(pg15):
    r = _invoke("db.tune", "--ram", "2GB", "--cpus", "2", dsn=pg15.dsn())
    assert r.returncode != 0 and "--yes" in r.stderr


def test_diagnose_prints_one_report(pg15_db):
    r = _invoke("db.diagnose", dsn=pg15_db)
    assert r.returncode == 0, r.stderr
    for title in ("== server", "== rollup lag", "== connections",
                  "== replication and WAL archiving"):
        assert title in r.stdout
    assert "WAL archiving is off" in r.stdout


def test_maintain_asks_before_retention_drops_history(pg15_db):
    from datetime import UTC, datetime

    import psycopg
    from lighthouse.db.migrate import migrate
    from lighthouse.db.partitions import CHECKS, ensure_partitions, list_partitions

    migrate(pg15_db)
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        ensure_partitions(conn, now=datetime.now(UTC), days_back=100)  # ~10 days past retention
        before = len(list_partitions(conn, CHECKS))
    refused = _invoke("db.maintain", dsn=pg15_db)  # no terminal, no --yes
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert "Plan: drop" in refused.stdout
    dry = _invoke("db.maintain", "-n", dsn=pg15_db)
    assert dry.returncode == 0 and "dry run: nothing was changed" in dry.stdout
    with psycopg.connect(pg15_db) as conn:
        assert len(list_partitions(conn, CHECKS)) == before
    done = _invoke("db.maintain", "-y", dsn=pg15_db)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(pg15_db) as conn:
        assert len(list_partitions(conn, CHECKS)) < before


def test_compact_shows_the_days_asks_then_packs(pg15_db):
    from datetime import UTC, datetime, timedelta

    import psycopg
    from lighthouse.db.maintenance import RetentionPolicy, run_maintenance_on
    from lighthouse.db.migrate import migrate
    from lighthouse.db.partitions import ensure_partitions

    migrate(pg15_db)
    now = datetime.now(UTC)
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        ensure_partitions(conn, now=now, days_back=6)
        conn.execute("INSERT INTO check_history (time, subscription_id, status, latency_ms) "
                     "SELECT %s - g * interval '1 minute', gen_random_uuid(), 'success', 5 "
                     "FROM generate_series(1, 5 * 1440) g", (now,))
        run_maintenance_on(conn, RetentionPolicy(compact_max_days=0))  # rollups, no packing
        total = conn.execute("SELECT count(*) FROM check_history").fetchone()[0]
    refused = _invoke("db.compact", dsn=pg15_db)  # no terminal, no --yes
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert "Plan: pack 3 day(s)" in refused.stdout and "MB raw -> ~" in refused.stdout
    dry = _invoke("db.compact", "-n", "--older-than-days", "3", dsn=pg15_db)
    assert dry.returncode == 0 and "Plan: pack 2 day(s)" in dry.stdout
    young = _invoke("db.compact", "-n", "--older-than-days", "0.5", dsn=pg15_db)
    assert young.returncode != 0 and "at least 1 day" in young.stderr
    done = _invoke("db.compact", "-y", "--max-days", "2", dsn=pg15_db)
    assert done.returncode == 0, done.stderr
    assert "1 day(s) left" in done.stdout and "bytes per check: raw" in done.stdout
    assert "0 day(s) left" in _invoke("db.compact", "-y", dsn=pg15_db).stdout
    assert "nothing to pack" in _invoke("db.compact", "-y", dsn=pg15_db).stdout
    with psycopg.connect(pg15_db) as conn:
        assert conn.execute("SELECT count(*) FROM lh_checks('-infinity', 'infinity')"
                            ).fetchone()[0] == total
        assert conn.execute("SELECT min(time) FROM check_history").fetchone()[0] >= (
            now - timedelta(days=3))
