"""invoke tasks: backup (see tasks.py). Logical dumps, pgBackRest backups, PITR, verification.

Databases: --dsn, else $LIGHTHOUSE_DATABASE__DSN, else $DATABASE_URL. Hosts: --inventory (default
inventories/local or $LIGHTHOUSE_INVENTORY) and --host (default: first host of `db`).
Destructive tasks show their plan and ask first; --yes skips the question, --dry-run only shows.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from lighthouse_ops.tasks.db import resolve_dsn
from lighthouse_ops.tasks.flags import runbook as task

HOST_HELP = {"inventory": "Ansible inventory file or directory (default: inventories/local)",
             "host": "database host (default: first host of group db)",
             "stanza": "pgBackRest stanza (default: lighthouse)"}


def _fail(task_name: str, exc: Exception) -> None:
    sys.exit(f"backup.{task_name}: {exc}")


@task(help={"dsn": "database to dump (default: $LIGHTHOUSE_DATABASE__DSN or $DATABASE_URL)",
            "out": "output file (default: backups/<db>-<UTC time>.dump)",
            "upload": "also upload file + manifest to this S3 prefix (s3://bucket/prefix/)",
            "endpoint_url": "S3 endpoint (moto/sandbox); default AWS"})
def dump(c, dsn=None, out=None, upload=None, endpoint_url=None):
    """pg_dump -Fc with a manifest (SHA-256 + table fingerprint); optional S3 upload."""
    from lighthouse_ops.backup import dump as d

    dsn = resolve_dsn(dsn)
    from psycopg.conninfo import conninfo_to_dict
    name = conninfo_to_dict(dsn).get("dbname", "db")
    path = Path(out or f"backups/{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump")
    try:
        manifest = d.dump(dsn, path)
        urls = []
        if upload:
            import boto3

            from lighthouse_ops.backup import s3
            client = boto3.client("s3", endpoint_url=endpoint_url)
            urls = s3.upload(path, upload, client)
    except Exception as exc:  # noqa: BLE001 - every failure ends the task with its reason
        _fail("dump", exc)
    rows = sum(t["rows"] for t in manifest.tables.values())
    print(f"dumped {manifest.database}: {path} ({manifest.bytes} bytes, sha256 "
          f"{manifest.sha256[:16]}…, {len(manifest.tables)} tables, {rows} rows)")
    for url in urls:
        print(f"uploaded {url}")


@task(name="restore-dump",
      help={"file": "dump file (local path or s3://bucket/key)",
            "to": "target database name (on the --dsn server) or a full DSN",
            "dsn": "server to restore on (default: $LIGHTHOUSE_DATABASE__DSN)",
            "endpoint_url": "S3 endpoint for s3:// files",
            "dry_run": "show the plan only", "yes": "do not ask for confirmation"})
def restore_dump(c, file, to, dsn=None, endpoint_url=None, dry_run=False, yes=False):
    """Restore a pg_dump file into a database (replaced only once a staging copy checks out)."""
    from psycopg.conninfo import make_conninfo

    from lighthouse_ops.backup import dump as d
    target = to if ("=" in to or "://" in to) else make_conninfo(resolve_dsn(dsn), dbname=to)
    try:
        path = Path(file)
        if file.startswith("s3://"):
            import tempfile

            import boto3

            from lighthouse_ops.backup import s3
            path = s3.download(file, Path(tempfile.mkdtemp(prefix="lh-restore-")),
                               boto3.client("s3", endpoint_url=endpoint_url))
        result = d.restore_dump(path, target, yes=yes, dry_run=dry_run)
    except Exception as exc:  # noqa: BLE001
        _fail("restore-dump", exc)
    if result.differences:
        print("\n".join(f"  DIFF {x}" for x in result.differences))
        sys.exit(f"backup.restore-dump: the restored copy differs from the dump-time "
                 f"fingerprint (see above); {result.database} was NOT replaced")
    if not result.applied:
        return
    print(f"restored {path.name} into {result.database}: {result.tables} tables in "
          f"{result.seconds:.1f}s; matches the dump-time fingerprint")


@task(help={"type": "full | diff | incr (default incr)", **HOST_HELP})
def now(c, type="incr", inventory=None, host=None, stanza="lighthouse"):  # noqa: A002
    """Take a pgBackRest backup on the database host now."""
    from lighthouse_ops.backup.runbook import pgbackrest_for

    try:
        pgbr = pgbackrest_for(inventory, host, stanza)
        print(f"step=backup status=start host={pgbr.runner.name} type={type}", file=sys.stderr)
        b = pgbr.backup(type)
    except Exception as exc:  # noqa: BLE001
        _fail("now", exc)
    print(f"backup {b.label} ({b.type}) done in {b.seconds}s; database {b.size} bytes, "
          f"stored {b.repo_size} bytes")


@task(name="list", help=HOST_HELP)
def list_(c, inventory=None, host=None, stanza="lighthouse"):
    """List pgBackRest backups (oldest first) and the WAL archive range."""
    from lighthouse_ops.backup.pgbackrest import render_sets, render_wal
    from lighthouse_ops.backup.runbook import pgbackrest_for

    try:
        pgbr = pgbackrest_for(inventory, host, stanza)
        info = pgbr.info()
    except Exception as exc:  # noqa: BLE001
        _fail("list", exc)
    print(f"stanza {stanza} on {pgbr.runner.name}: {info.status.get('message', '?')}")
    print(render_sets(info.sets) if info.sets else "no backups yet (backup.now --type full)")
    print(render_wal(info.wal))


@task(help={"time": "target time with offset, e.g. '2026-01-02 03:04:05+00'",
            "to": "host to restore in place (default: first host of group db)",
            "inventory": HOST_HELP["inventory"], "stanza": HOST_HELP["stanza"],
            "dry_run": "show the plan only", "yes": "do not ask for confirmation"})
def restore(c, time, to=None, inventory=None, stanza="lighthouse", dry_run=False, yes=False):
    """Point-in-time restore of a database host (pgBackRest via playbooks/restore.yml)."""
    from lighthouse_ops.backup.runbook import restore_pitr

    try:
        run = restore_pitr(inventory, to, time, stanza=stanza, yes=yes, dry_run=dry_run)
    except Exception as exc:  # noqa: BLE001
        _fail("restore", exc)
    if run is not None:
        print(f"restored to {time} in {run.seconds:.0f}s (stop, restore, recovery, promote, "
              "archiving resumed, new full backup)")


@task(help={"dump": "verify this dump file instead of the latest pgBackRest backup",
            "dsn": "server for the dump's scratch database (default: $LIGHTHOUSE_DATABASE__DSN)",
            "database": "database compared for pgBackRest (default lighthouse)",
            "keep": "keep the scratch database/cluster for inspection",
            "pg_version": "PostgreSQL major version on the db host (default 17)",
            "dry_run": "show the plan only", "yes": "do not ask for confirmation", **HOST_HELP})
def verify(c, dump=None, dsn=None, database="lighthouse", keep=False, inventory=None, host=None,
           stanza="lighthouse", pg_version=17, dry_run=False, yes=False):
    """Restore the latest backup to scratch and compare row counts + sampled checksums."""
    try:
        if dump:
            from lighthouse_ops.backup.dump import verify_dump

            r = verify_dump(Path(dump), resolve_dsn(dsn), yes=yes, dry_run=dry_run, keep=keep)
            label, ok, diffs, tables, rows, secs = (r.file, r.ok, r.differences, r.tables,
                                                    r.rows, r.seconds)
        else:
            from lighthouse_ops.backup.pgbackrest import ClusterPaths, verify_latest
            from lighthouse_ops.backup.runbook import pgbackrest_for

            pgbr = pgbackrest_for(inventory, host, stanza)
            paths = ClusterPaths(pg_bin=f"/usr/lib/postgresql/{int(pg_version)}/bin",
                                 source_conninfo=f"host=/var/run/postgresql dbname={database}")
            r = verify_latest(pgbr, paths, yes=yes, dry_run=dry_run, keep=keep)
            label, ok, diffs, tables, rows, secs = (r.backup, r.ok, r.differences, r.tables,
                                                    r.rows, r.seconds)
        applied = r.applied
    except Exception as exc:  # noqa: BLE001
        _fail("verify", exc)
    if not applied:
        return
    if not ok:
        print("\n".join(f"  DIFF {x}" for x in diffs))
        sys.exit(f"backup.verify: {label} FAILED: {len(diffs)} difference(s); do not rely on "
                 "it. Scratch copies were removed unless --keep.")
    print(f"backup.verify: {label} OK: {tables} tables, {rows} rows match the source "
          f"({secs:.0f}s)")
