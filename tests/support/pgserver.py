"""A throw-away PostgreSQL 15 server from this machine's packages, for integration tests.

PostgreSQL refuses to run as root, so the cluster belongs to the `postgres` system user
(created by Debian's postgresql-15 package) and is driven through `runuser`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("LIGHTHOUSE_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
PASSWORD = "lighthouse-test"  # noqa: S105 - throw-away test cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


@dataclass
class PgServer:
    """One cluster on 127.0.0.1:<port>; stop()/start() keep the data (outage tests)."""

    datadir: Path
    port: int = field(default_factory=free_port)
    extra_conf: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, extra_conf: dict[str, str] | None = None) -> PgServer:
        base = Path(tempfile.mkdtemp(prefix="lh-pg15-"))
        shutil.chown(base, "postgres", "postgres") if os.geteuid() == 0 else None
        server = cls(datadir=base / "data", extra_conf=extra_conf or {})
        pwfile = base / "pw"
        pwfile.write_text(PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            _as_postgres(str(PG_BIN / "initdb"), "-D", str(server.datadir), "-U", SUPERUSER,
                         "--pwfile", str(pwfile), "-A", "scram-sha-256", "--data-checksums",
                         "-E", "UTF8", "--locale", "C.UTF-8"),
            check=True, capture_output=True,
        )
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(server.port),
            "unix_socket_directories": f"'{base}'",
            "fsync": "off",  # test clusters are disposable; durability costs seconds here
            "max_connections": "200",
            "shared_preload_libraries": "'pg_stat_statements'",
            **server.extra_conf,
        }
        with open(server.datadir / "postgresql.auto.conf", "a") as f:
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        server.start()
        return server

    @property
    def base(self) -> Path:
        return self.datadir.parent

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER,
            password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def start(self, timeout: float = 30) -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l",
                         str(self.base / "log"), "-w", "-t", str(int(timeout)), "start"),
            check=True, capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w",
                         "stop"),
            check=False, capture_output=True,
        )

    def create_database(self, name: str) -> str:
        """Creates (or recreates) database `name` and returns its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Polls `predicate` until true or `timeout` seconds pass; bounded by design."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
