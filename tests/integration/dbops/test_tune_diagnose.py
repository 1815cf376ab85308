"""db.tune and db.diagnose against a real PostgreSQL 15 of their own (ALTER SYSTEM changes it)."""

from __future__ import annotations

import psycopg
import pytest
from lighthouse_ops.dbops import diagnose, tune, tuning

from tests.support.pgserver import PgServer


@pytest.fixture(scope="module")
def own_pg():
    server = PgServer.create(extra_conf={"archive_mode": "on", "archive_command": "'/bin/false'",
                                         "archive_timeout": "60"})
    yield server
    server.destroy()


HOST = tune.HostFacts(2 * tune.GiB, 2)


def test_tune_tells_reload_from_restart(own_pg):
    dsn = own_pg.dsn()
    rules = {s.name: s.value for s in tune.recommend(HOST, max_connections=150)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        facts = tune.host_facts(conn)
        assert facts.ram_bytes > 256 * tune.MiB and facts.cpus >= 1
        changes = tune.plan_changes(conn, tune.recommend(HOST, max_connections=150))
    by_name = {c.name: c for c in changes}
    assert "timescaledb.max_background_workers" not in by_name  # vanilla: no such setting
    assert not tune.manages(changes)
    assert by_name["work_mem"].state == "planned" and by_name["work_mem"].action == "set"
    tune.apply_changes(dsn, changes)
    assert by_name["work_mem"].state == "live"
    assert by_name["maintenance_work_mem"].state == "live"
    assert by_name["shared_buffers"].state == "pending restart"
    assert by_name["max_connections"].state == "pending restart"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == rules["work_mem"]
    own_pg.stop()
    own_pg.start()
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SHOW shared_buffers").fetchone()[0] == "512MB"
        again = tune.plan_changes(conn, tune.recommend(HOST, max_connections=150))
    assert {c.state for c in again} == {"unchanged"}  # idempotent
    assert "unchanged" in tune.render(facts, again)


def test_tune_leaves_the_roles_file_in_charge():
    """A server whose conf.d/50-lighthouse.conf (the role's drop-in) sets the tuning."""
    server = PgServer.create()  # its postgresql.auto.conf sets max_connections = 200
    try:
        rules = tuning.timescaledb_tune(2048, 2, max_connections=100)
        rules["work_mem"] = "8MB"  # as a timescaledb_tune_overrides entry would
        confd = server.datadir / "conf.d"
        confd.mkdir()
        (confd / tune.ROLE_CONF_NAME).write_text(
            "".join(f"{k} = '{v}'\n" for k, v in rules.items()
                    if not k.startswith("timescaledb.")))
        with open(server.datadir / "postgresql.conf", "a") as f:
            f.write("include_dir = 'conf.d'\n")
        server.stop()
        server.start()
        dsn = server.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            changes = tune.plan_changes(conn, tune.recommend(HOST, max_connections=100))
        by_name = {c.name: c for c in changes}
        assert tune.manages(changes)
        # the stale ALTER SYSTEM value that shadows the role's file is reset, nothing is SET
        assert [(c.name, c.action) for c in changes if c.state == "planned"] == [
            ("max_connections", "reset")]
        assert by_name["work_mem"].state == "role differs"  # reported, never overridden
        assert "db.tune does not override the role's file" in tune.render(HOST, changes)
        tune.apply_changes(dsn, changes)
        assert by_name["max_connections"].state == "pending restart"
        server.stop()
        server.start()
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SHOW max_connections").fetchone()[0] == "100"
            assert conn.execute("SHOW work_mem").fetchone()[0] == "8MB"
            again = tune.plan_changes(conn, tune.recommend(HOST, max_connections=100))
            auto = conn.execute("SELECT count(*) FROM pg_file_settings WHERE sourcefile "
                                "LIKE '%postgresql.auto.conf' AND name = 'max_connections'"
                                ).fetchone()[0]
        assert auto == 0
        assert not [c for c in again if c.state == "planned"]
    finally:
        server.destroy()


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
