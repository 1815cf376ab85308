"""The schema, migrator, rollups and retention on TimescaleDB (Apache edition, Debian's
postgresql-17-timescaledb) in a sandbox host, reached over the host's own address.

Own one-host sandbox `pytest-dbts` so the shared `pytest` hosts stay pristine for the Ansible
roles. The install is idempotent (apt skips installed packages; config files are rewritten).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from lighthouse.db import Capability, TimescaleNotPreloadedError, compaction, detect_capability
from lighthouse.db.maintenance import RetentionPolicy, describe, run_maintenance_on
from lighthouse.db.migrate import migrate, schema_status
from lighthouse.db.queries import subscription_stats
from lighthouse.db.rollups import refresh_rollups
from lighthouse_ops.sandbox import Sandbox

from tests.hosts.conftest import sandbox_capability_or_skip
from tests.integration.db import test_compaction_pg15 as packing

PASSWORD = "lh-dbts-test"  # noqa: S105 - throw-away sandbox cluster
CONF = "/etc/postgresql/17/main/conf.d/lighthouse-test.conf"


def _setup_script(controller_ip: str, preload: bool) -> str:
    libs = "timescaledb" if preload else ""
    return f"""set -e
export DEBIAN_FRONTEND=noninteractive
dpkg -s postgresql-17-timescaledb >/dev/null 2>&1 || {{
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql-17 postgresql-17-timescaledb >/dev/null
}}
cat > {CONF} <<CONF
listen_addresses = '*'
shared_preload_libraries = '{libs}'
password_encryption = 'scram-sha-256'
CONF
grep -q '^host all all {controller_ip}/32' /etc/postgresql/17/main/pg_hba.conf ||
  echo 'host all all {controller_ip}/32 scram-sha-256' >> /etc/postgresql/17/main/pg_hba.conf
systemctl restart postgresql@17-main
sudo -u postgres psql -Xqc "ALTER ROLE postgres PASSWORD '{PASSWORD}'"
"""


@pytest.fixture(scope="module")
def tsdb() -> Iterator[Sandbox]:
    sandbox_capability_or_skip()
    sb = Sandbox("pytest-dbts")
    sb.down()
    sb.up(db=1, prober=0)
    yield sb
    sb.down()


def _configure(sb: Sandbox, preload: bool) -> str:
    host = sb.host("db-1")
    sb.ssh("db-1", _setup_script(host.controller_ip, preload), timeout=900)
    return f"postgresql://postgres:{PASSWORD}@{host.ip}:5432/postgres"


def _fresh_db(admin_dsn: str, name: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def apache_dsn(tsdb: Sandbox) -> str:
    return _configure(tsdb, preload=True)


def test_not_preloaded_is_a_clear_error(tsdb: Sandbox, apache_dsn: str) -> None:
    admin = _configure(tsdb, preload=False)
    try:
        dsn = _fresh_db(admin, "lh_nopreload")
        with pytest.raises(TimescaleNotPreloadedError, match="shared_preload_libraries"):
            migrate(dsn)
    finally:
        _configure(tsdb, preload=True)


def test_migrate_detects_apache_and_builds_hypertables(apache_dsn: str) -> None:
    dsn = _fresh_db(apache_dsn, "lh_migrate")
    out = io.StringIO()
    assert migrate(dsn, dry_run=True, out=out)
    assert "create_hypertable('check_history'" in out.getvalue()
    assert "add_compression_policy" not in out.getvalue()  # timescale-license only
    applied = migrate(dsn)
    assert [m.capability for m in applied] == [Capability.APACHE] * len(applied)
    assert migrate(dsn) == []
    with psycopg.connect(dsn) as conn:
        assert detect_capability(conn) is Capability.APACHE
        tables = {r[0]: r[1] for r in conn.execute(
            "SELECT hypertable_name, d.time_interval FROM timescaledb_information.dimensions d "
            "JOIN timescaledb_information.hypertables USING (hypertable_name)")}
    assert tables == {"check_history": timedelta(days=1), "alert_history": timedelta(days=7)}
    assert schema_status(dsn).capability is Capability.APACHE
    assert describe(dsn)["compression"].startswith("unavailable")


def test_rollups_queries_and_retention(apache_dsn: str) -> None:
    dsn = _fresh_db(apache_dsn, "lh_rollups")
    migrate(dsn)
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    sid = uuid.uuid4()
    with psycopg.connect(dsn, autocommit=True) as conn:
        # one check a minute for 3 days, every 10th a failure; plus one 120-day-old check
        conn.execute(
            "INSERT INTO check_history (time, subscription_id, status, latency_ms) "
            "SELECT %(now)s - g * interval '1 minute', %(sid)s, "
            "  CASE WHEN g %% 10 = 0 THEN 'failure' ELSE 'success' END::check_status, g %% 300 "
            "FROM generate_series(1, 4320) g", {"now": now, "sid": sid})
        conn.execute("INSERT INTO check_history (time, subscription_id, status) "
                     "VALUES (%s, %s, 'success')", (now - timedelta(days=120), sid))
        refresh_rollups(conn, upto=now)
        stats = subscription_stats(conn, sid, start=now - timedelta(days=2), end=now)
        exact = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'success'), "
            "percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) FROM check_history "
            "WHERE subscription_id = %s AND time >= %s AND time < %s",
            (sid, now - timedelta(days=2), now)).fetchone()
        assert (stats.total, stats.success) == (exact[0], exact[1])
        assert abs(stats.percentiles[0.95] - exact[2]) <= exact[2] * 0.2 + 1

        report = run_maintenance_on(conn, RetentionPolicy(), now=now)
        assert report["capability"] == "apache" and len(report["dropped"]) >= 1
        assert report["compacted_checks"] > 0  # the oldest of the three days
        assert conn.execute("SELECT count(*) FROM lh_checks('-infinity', 'infinity')"
                            ).fetchone()[0] == 4320
        assert run_maintenance_on(conn, RetentionPolicy(), now=now)["dropped"] == []


def test_packing_on_the_apache_edition_keeps_every_answer(apache_dsn: str) -> None:
    """The same seed and questions as on vanilla PostgreSQL: each packed day's chunk is
    dropped, and every answer and row is what it was."""
    dsn = _fresh_db(apache_dsn, "lh_packing")
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        packing.seed(conn)
        run_maintenance_on(conn, RetentionPolicy(compact_max_days=0), now=packing.NOW)
        rows, before = conn.execute(packing.ALL_ROWS).fetchall(), packing.answers(conn)
        chunks = conn.execute("SELECT count(*) FROM show_chunks('check_history')").fetchone()[0]
        report = run_maintenance_on(conn, RetentionPolicy(compact_max_days=None),
                                    now=packing.NOW)
        assert len(report["compaction_plan"]) == 4 and report["compaction_left"] == 0
        assert all("_timescaledb_internal." in p for p in report["compaction_plan"])
        assert conn.execute("SELECT count(*) FROM show_chunks('check_history')"
                            ).fetchone()[0] == chunks - 4
        assert conn.execute(packing.ALL_ROWS).fetchall() == rows
        assert packing.answers(conn) == before
        size = compaction.bytes_per_check(conn, Capability.APACHE)
        assert size["packed"] < size["raw"] / 3, size
