"""Shared by the db benchmarks: a throw-away PostgreSQL 15 unless --dsn is given."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@contextlib.contextmanager
def database(dsn: str | None, name: str) -> Iterator[str]:
    """Yields a DSN: `dsn` as given, or a fresh database on a temporary local PG15
    (fsync on, like production; destroyed afterwards)."""
    if dsn:
        yield dsn
        return
    from tests.support.pgserver import PgServer

    server = PgServer.create(extra_conf={"fsync": "on", "shared_buffers": "'1GB'",
                                         "max_wal_size": "'4GB'", "work_mem": "'32MB'",
                                         "maintenance_work_mem": "'512MB'"})
    try:
        yield server.create_database(name)
    finally:
        server.destroy()


SANDBOX_PASSWORD = "lh-bench-dbts"  # noqa: S105 - throw-away sandbox cluster


@contextlib.contextmanager
def sandbox_timescale(name: str = "bench-dbts", keep: bool = False,
                      disk_gb: int = 0) -> Iterator[str]:
    """Yields a DSN to PostgreSQL 17 + TimescaleDB (Apache edition, Debian's packages) on a
    one-host sandbox `name`, reached at the host's own address. Idempotent set-up.

    A host's writable layer is a tmpfs (RAM): for data sets of more than a few GiB pass
    disk_gb, and /var/lib/postgresql goes on a sparse disk file of that size instead.
    """
    from lighthouse_ops.sandbox import Sandbox

    sb = Sandbox(name)
    sb.up(db=1, prober=0)
    host = sb.host("db-1")
    mount = ""
    if disk_gb:
        loop = sb.attach_disk("db-1", "/dev/xvdf", disk_gb * 1024)
        probe = subprocess.run(["blkid", "-p", loop], capture_output=True)
        if probe.returncode == 2:  # no filesystem yet: format from the controller
            subprocess.run(["mkfs.ext4", "-q", "-m", "0", loop], check=True)
        mount = ("mkdir -p /var/lib/postgresql; mountpoint -q /var/lib/postgresql || "
                 "mount -o noatime /dev/xvdf /var/lib/postgresql")
    sb.ssh("db-1", f"""set -e
export DEBIAN_FRONTEND=noninteractive
{mount}
dpkg -s postgresql-17-timescaledb >/dev/null 2>&1 || {{
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql-17 postgresql-17-timescaledb >/dev/null
}}
cat > /etc/postgresql/17/main/conf.d/lighthouse-bench.conf <<CONF
listen_addresses = '*'
shared_preload_libraries = 'timescaledb'
shared_buffers = '1GB'
max_wal_size = '4GB'
work_mem = '32MB'
maintenance_work_mem = '512MB'
CONF
grep -q '^host all all {host.controller_ip}/32' /etc/postgresql/17/main/pg_hba.conf ||
  echo 'host all all {host.controller_ip}/32 scram-sha-256' >> /etc/postgresql/17/main/pg_hba.conf
systemctl restart postgresql@17-main
sudo -u postgres psql -Xqc "ALTER ROLE postgres PASSWORD '{SANDBOX_PASSWORD}'"
sudo -u postgres psql -Xqc "DROP DATABASE IF EXISTS bench WITH (FORCE)" -c "CREATE DATABASE bench"
""", timeout=900)
    try:
        yield f"postgresql://postgres:{SANDBOX_PASSWORD}@{host.ip}:5432/bench"
    finally:
        if not keep:
            sb.down()


def add_target_args(ap: argparse.ArgumentParser) -> None:
    """--dsn / --sandbox: where a database bench runs."""
    ap.add_argument("--dsn", help="target database (default: a temporary local PG15)")
    ap.add_argument("--sandbox", action="store_true",
                    help="TimescaleDB Apache edition on a one-host sandbox `bench-dbts`")
    ap.add_argument("--sandbox-disk-gb", type=int, default=0,
                    help="with --sandbox: PostgreSQL's data on a disk of this size (big loads)")


def target(args: argparse.Namespace, name: str) -> contextlib.AbstractContextManager[str]:
    """The DSN context chosen by add_target_args' options."""
    if args.sandbox:
        return sandbox_timescale(disk_gb=args.sandbox_disk_gb)
    return database(args.dsn, name)
