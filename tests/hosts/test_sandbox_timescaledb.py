"""Proof that sandbox hosts are real enough for the database role: PostgreSQL 17 with
TimescaleDB from Debian's mirror (through the apt proxy), running under the host's systemd.

Uses its own one-host sandbox (`pytest-tsdb`), so the shared `pytest` hosts stay pristine for the
Ansible roles converged by other tests/hosts tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from lighthouse_ops.sandbox import Sandbox

from tests.hosts.conftest import own_sandbox_name, sandbox_capability_or_skip, session_lock

PACKAGES = "postgresql-17 postgresql-17-timescaledb"


@pytest.fixture(scope="module")
def tsdb() -> Iterator[Sandbox]:
    sandbox_capability_or_skip()
    with session_lock(own_sandbox_name("tsdb")):
        yield from _tsdb_sandbox(Sandbox(own_sandbox_name("tsdb")))


def _tsdb_sandbox(sb: Sandbox) -> Iterator[Sandbox]:
    sb.down()
    try:
        sb.up(db=1, prober=0)
        sb.ssh(
            "db-1",
            "export DEBIAN_FRONTEND=noninteractive && apt-get update -qq && "
            f"apt-get install -y -qq --no-install-recommends {PACKAGES} >/dev/null",
            timeout=900,
        )
        sb.ssh(
            "db-1",
            "echo \"shared_preload_libraries = 'timescaledb'\" "
            "> /etc/postgresql/17/main/conf.d/timescaledb.conf && "
            "systemctl restart postgresql@17-main && sudo -u postgres "
            "psql -v ON_ERROR_STOP=1 -qc 'CREATE EXTENSION IF NOT EXISTS timescaledb'",
        )
        yield sb
    finally:
        sb.down()


@pytest.fixture(scope="module")
def db(tsdb: Sandbox) -> Any:
    return tsdb.testinfra_host("db-1")


def psql(host: Any, sql: str) -> str:
    return host.check_output(f"sudo -u postgres psql -XAtc {sql!r}")


def test_postgresql_runs_under_systemd(db: Any) -> None:
    service = db.service("postgresql@17-main")
    assert service.is_running
    assert service.is_enabled
    main_pid = db.check_output("systemctl show -p MainPID --value postgresql@17-main")
    assert db.check_output(f"ps -o comm= -p {main_pid}") == "postgres"
    # PID 1 of the host is its own systemd, and PostgreSQL sits in its unit's cgroup
    assert db.check_output("cat /proc/1/comm") == "systemd"
    assert "postgresql@17-main.service" in db.check_output(f"cat /proc/{main_pid}/cgroup")


def test_postgresql_listens(db: Any) -> None:
    assert db.socket("tcp://127.0.0.1:5432").is_listening
    assert db.socket("unix:///var/run/postgresql/.s.PGSQL.5432").is_listening


def test_timescaledb_extension_matches_the_package(db: Any) -> None:
    package = db.package("postgresql-17-timescaledb")
    assert package.is_installed
    upstream = package.version.split("+")[0].split("-")[0]  # 2.19.3+dfsg-1 -> 2.19.3
    assert psql(db, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'") == upstream
    # Debian's build is the Apache edition (DESIGN.md §2): hypertables yes, compression no
    assert psql(db, "SHOW timescaledb.license") == "apache"
    psql(db, "CREATE TABLE t (time timestamptz NOT NULL, v int); "
             "SELECT create_hypertable('t', 'time');")
    assert psql(db, "SELECT count(*) FROM timescaledb_information.hypertables") == "1"
