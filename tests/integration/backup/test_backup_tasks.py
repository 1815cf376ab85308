"""The backup.* invoke tasks end to end against PostgreSQL 15 (exit codes, plan, summaries)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[3]
INVOKE = str(Path(sys.executable).with_name("invoke"))


def _invoke(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIGHTHOUSE_DATABASE__DSN": dsn}
    return subprocess.run([INVOKE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


def test_dump_restore_verify_via_tasks(pg15, pg15_db, tmp_path):
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t SELECT g, g::text FROM generate_series(1, 300) g")
    out = tmp_path / "x.dump"
    r = _invoke("backup.dump", "--out", str(out), dsn=pg15_db)
    assert r.returncode == 0, r.stderr
    assert "1 tables, 300 rows" in r.stdout

    r = _invoke("backup.verify", "--dump", str(out), "--yes", dsn=pg15.dsn())
    assert r.returncode == 0, r.stderr
    assert "OK: 1 tables, 300 rows" in r.stdout

    # Over an existing, non-empty database: no TTY and no --yes -> refused, nothing changed.
    r = _invoke("backup.restore-dump", "--file", str(out), "--to", pg15_db, dsn=pg15.dsn())
    assert r.returncode != 0 and "--yes" in r.stderr
    assert "replace database" in r.stdout and "(1 tables, all data in it)" in r.stdout
    r = _invoke("backup.restore-dump", "--file", str(out), "--to", pg15_db, "--dry-run",
                dsn=pg15.dsn())
    assert r.returncode == 0 and "dry run" in r.stdout
    r = _invoke("backup.restore-dump", "--file", str(out), "--to", "task_copy", "--yes",
                dsn=pg15.dsn())
    assert r.returncode == 0, r.stderr
    assert "matches the dump-time fingerprint" in r.stdout

    out.write_bytes(out.read_bytes()[:100])  # truncated
    r = _invoke("backup.verify", "--dump", str(out), "--yes", dsn=pg15.dsn())
    assert r.returncode != 0 and "truncated" in r.stderr
