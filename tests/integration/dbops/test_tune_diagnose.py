"""db.tune and db.diagnose against a real PostgreSQL 15 of their own (ALTER SYSTEM changes it)."""

from __future__ import annotations

import psycopg
import pytest
from lighthouse_ops.dbops import diagnose, tune

from tests.support.pgserver import PgServer


@pytest.fixture(scope="module")
def own_pg():
    server = PgServer.create(extra_conf={"archive_mode": "on", "archive_command": "'/bin/false'",
                                         "archive_timeout": "60"})
    yield server
    server.destroy()


def test_tune_tells_reload_from_restart(own_pg):
    dsn = own_pg.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        facts = tune.host_facts(conn)
        assert facts.ram_bytes > 256 * tune.MiB and facts.cpus >= 1
        changes = tune.plan_changes(conn, tune.recommend(tune.HostFacts(2 * tune.GiB, 2),
                                                         max_connections=150))
    by_name = {c.name: c for c in changes}
    assert by_name["work_mem"].state == "planned"  # default 4MB -> 16MB
    tune.apply_changes(dsn, changes)
    assert by_name["work_mem"].state == "live"
    assert by_name["maintenance_work_mem"].state == "live"
    assert by_name["shared_buffers"].state == "pending restart"
    assert by_name["max_connections"].state == "pending restart"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "16MB"
    own_pg.stop()
    own_pg.start()
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SHOW shared_buffers").fetchone()[0] == "512MB"
        again = tune.plan_changes(conn, tune.recommend(tune.HostFacts(2 * tune.GiB, 2),
                                                       max_connections=150))
    assert {c.state for c in again} == {"unchanged"}  # idempotent
    assert "unchanged" in tune.render(facts, again)


def test_diagnose_reports_every_section_and_warns(own_pg):
    dsn = own_pg.create_database("diag")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v "
                     "FROM generate_series(1, 20000) g")
        conn.execute("CREATE TABLE hourly_rollup (bucket timestamptz, n int)")
        conn.execute("INSERT INTO hourly_rollup VALUES (now() - interval '5 hours', 1)")
        conn.execute("ANALYZE big")
        for _ in range(3):
            conn.execute("SELECT count(*) FROM big WHERE v = 'x'")
        conn.execute("SELECT pg_switch_wal()")  # the failing archive_command counts a failure
    # archive failures are retried by the archiver; poll (bounded) until one is recorded
    from tests.support.pgserver import wait_for

    def failed() -> bool:
        with psycopg.connect(dsn) as c:
            return c.execute("SELECT failed_count FROM pg_stat_archiver").fetchone()[0] > 0
    assert wait_for(failed, timeout=30, interval=0.5)
    report = diagnose.diagnose(dsn, seq_scan_min=1)
    text = report.render()
    titles = [s.title for s in report.sections]
    assert titles == ["server", "rollup lag", "slowest statements (pg_stat_statements)",
                      "sequential-scan-heavy tables", "compression", "disk use", "connections",
                      "replication and WAL archiving"]
    assert report.section("server").rows[0]["capability"] == "vanilla"
    assert report.section("rollup lag").rows[0]["table"] == "public.hourly_rollup"
    assert report.section("slowest statements (pg_stat_statements)").rows
    assert any(r["table"] == "public.big" for r in report.section(
        "sequential-scan-heavy tables").rows)
    assert "Timescale License" in report.section("compression").note
    assert any(r["what"] == "table public.big" for r in report.section("disk use").rows)
    assert any("rollup public.hourly_rollup lags" in w for w in report.warnings)
    assert any("WAL archiving failed" in w for w in report.warnings)
    assert any("public.big" in w for w in report.warnings)
    assert "== replication and WAL archiving" in text
