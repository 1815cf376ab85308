"""Logical backups: `pg_dump -Fc` with a manifest (SHA-256, source fingerprint), restore, verify.

The manifest's fingerprint is taken in the very snapshot pg_dump reads (`pg_export_snapshot()`
+ `pg_dump --snapshot`), so it describes exactly what the dump holds even while the prober keeps
writing; `verify_dump` restores the file to a scratch database and compares against it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lighthouse_ops.backup import fingerprint as fp
from lighthouse_ops.backup.plan import Plan, step

MANIFEST_SUFFIX = ".manifest.json"


class BackupError(RuntimeError):
    """A backup or restore step failed; the message says what state was left behind."""


class CorruptBackup(BackupError):
    """The file does not match its manifest, or pg_restore cannot read it."""


@dataclass
class Manifest:
    file: str
    bytes: int
    sha256: str
    database: str
    server_version: str
    created_at: str
    kind: str = "pg_dump-custom"
    tables: dict = field(default_factory=dict)  # fingerprint.to_json()

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise CorruptBackup(f"manifest {path} is unreadable: {exc}") from exc

    @property
    def fingerprint(self) -> fp.Fingerprint:
        return fp.from_json(self.tables)


def manifest_path(dump_file: Path) -> Path:
    return dump_file.with_name(dump_file.name + MANIFEST_SUFFIX)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def client_bin(conn: psycopg.Connection, tool: str, pg_bin: Path | None = None) -> Path:
    """The client tool matching the server: pg_dump refuses servers newer than itself."""
    major = conn.info.server_version // 10000
    if pg_bin is not None:
        return pg_bin / tool
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0):
        if candidate.parent.name.isdigit() and int(candidate.parent.name) >= major \
                and (candidate / tool).exists():
            return candidate / tool
    found = shutil.which(tool)
    if found:
        return Path(found)
    raise BackupError(f"no {tool} for PostgreSQL {major} on this machine; install "
                      f"postgresql-client-{major} or run the task on the database host")


def libpq_env(dsn: str) -> tuple[str, dict[str, str]]:
    """DSN without the password (kept out of the process list) and the environment carrying it."""
    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**params), env


def _run(argv: list[str], env: dict[str, str], what: str, left: str) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"{what} failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-2000:]}\nState: {left}")
    return proc.stdout


def dump(dsn: str, out: Path, *, pg_bin: Path | None = None, sample_rows: int = 200) -> Manifest:
    """Writes `out` (custom format) and `out.manifest.json`; returns the manifest."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        with step("fingerprint", database=conn.info.dbname) as info:
            tables = fp.fingerprint(conn, sample_rows=sample_rows)
            info["tables"] = len(tables)
            info["rows"] = sum(t.rows for t in tables.values())
        pg_dump = client_bin(conn, "pg_dump", pg_bin)
        clean_dsn, env = libpq_env(dsn)
        with step("pg_dump", file=out) as info:
            _run([str(pg_dump), "-Fc", "--snapshot", snapshot, "-f", str(tmp), "-d", clean_dsn],
                 env, "pg_dump", f"partial file {tmp} may remain; nothing else was changed")
            info["bytes"] = tmp.stat().st_size
        manifest = Manifest(
            file=out.name, bytes=tmp.stat().st_size, sha256=sha256_file(tmp),
            database=conn.info.dbname, server_version=conn.execute("SHOW server_version")
            .fetchone()[0], created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            tables=fp.to_json(tables))
    tmp.replace(out)
    manifest.write(manifest_path(out))
    return manifest


def check_file(dump_file: Path, *, require_manifest: bool = False) -> Manifest | None:
    """Size and SHA-256 against the manifest; raises CorruptBackup on any mismatch."""
    dump_file = Path(dump_file)
    if not dump_file.is_file():
        raise BackupError(f"dump file {dump_file} does not exist")
    mpath = manifest_path(dump_file)
    if not mpath.exists():
        if require_manifest:
            raise CorruptBackup(f"{mpath} is missing: cannot check {dump_file}")
        return None
    manifest = Manifest.read(mpath)
    size = dump_file.stat().st_size
    if size != manifest.bytes:
        raise CorruptBackup(f"{dump_file} is {size} bytes, manifest says {manifest.bytes} "
                            "(truncated or replaced)")
    digest = sha256_file(dump_file)
    if digest != manifest.sha256:
        raise CorruptBackup(f"{dump_file} SHA-256 {digest} does not match manifest "
                            f"{manifest.sha256} (corrupt)")
    return manifest


def list_contents(dump_file: Path, pg_restore: Path) -> str:
    proc = subprocess.run([str(pg_restore), "-l", str(dump_file)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise CorruptBackup(f"pg_restore cannot read {dump_file}: {proc.stderr.strip()}")
    return proc.stdout


def database_state(admin_dsn: str, name: str) -> tuple[bool, int]:
    """(exists, number of user tables) for database `name`."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if not exists:
        return False, 0
    with psycopg.connect(make_conninfo(admin_dsn, dbname=name)) as conn:
        return True, len(fp.user_tables(conn))


def _recreate(admin_dsn: str, name: str, drop: bool) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if drop:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@dataclass
class RestoreResult:
    database: str
    seconds: float
    tables: int
    differences: list[str]
    applied: bool = True


def restore_dump(dump_file: Path, target_dsn: str, *, yes: bool = False, dry_run: bool = False,
                 pg_bin: Path | None = None, plan_title: str | None = None,
                 ask=None, interactive: bool | None = None) -> RestoreResult:
    """Restores a custom-format dump into the database named by `target_dsn`.

    An existing non-empty target is dropped and recreated (destructive: plan + confirmation).
    When a manifest exists, the file is checked first and the restored tables are compared with
    the fingerprint recorded at dump time.
    """
    dump_file = Path(dump_file)
    t0 = time.monotonic()
    name = conninfo_to_dict(target_dsn).get("dbname")
    if not name:
        raise BackupError(f"target {target_dsn!r} names no database (dbname)")
    admin_dsn = make_conninfo(target_dsn, dbname="postgres")
    with step("check-file", file=dump_file):
        manifest = check_file(dump_file)
    with psycopg.connect(admin_dsn) as conn:
        pg_restore = client_bin(conn, "pg_restore", pg_bin)
    toc = list_contents(dump_file, pg_restore)
    timescale = " EXTENSION - timescaledb" in toc or "EXTENSION public timescaledb" in toc
    exists, ntables = database_state(admin_dsn, str(name))
    plan = Plan(plan_title or f"restore {dump_file.name} into database {name}",
                destructive=exists and ntables > 0)
    plan.add("checked file against its manifest (size, SHA-256)" if manifest
             else "no manifest beside the file: restore without a content check")
    if exists and ntables:
        plan.add(f"DROP database {name} ({ntables} tables, all data in it) and recreate it")
    elif exists:
        plan.add(f"restore into existing empty database {name}")
    else:
        plan.add(f"create database {name}")
    if timescale:
        plan.add("timescaledb_pre_restore(), pg_restore, timescaledb_post_restore()")
    else:
        plan.add("pg_restore --exit-on-error --no-owner")
    if manifest:
        plan.add(f"compare {len(manifest.tables)} tables with the dump-time fingerprint")
    if not plan.approve(yes=yes, dry_run=dry_run, ask=ask, interactive=interactive):
        return RestoreResult(str(name), 0.0, 0, [], applied=False)

    if exists and ntables or not exists:
        _recreate(admin_dsn, str(name), drop=exists)
    clean_dsn, env = libpq_env(target_dsn)
    left = (f"database {name} is partially restored; re-run restore-dump (it drops and "
            "recreates it) or drop it")
    with step("pg_restore", database=name):
        if timescale:
            with psycopg.connect(target_dsn, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                conn.execute("SELECT timescaledb_pre_restore()")
        try:
            _run([str(pg_restore), "--exit-on-error", "--no-owner", "-d", clean_dsn,
                  str(dump_file)], env, "pg_restore", left)
        finally:
            if timescale:
                with psycopg.connect(target_dsn, autocommit=True) as conn:
                    conn.execute("SELECT timescaledb_post_restore()")
    differences: list[str] = []
    with psycopg.connect(target_dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with step("compare", database=name) as info:
            restored = fp.fingerprint(conn, tables=[tuple(k.split(".", 1)) for k in
                                                    manifest.tables] if manifest else None)
            if manifest:
                differences = fp.compare(manifest.fingerprint, restored)
                # Tables restored but not fingerprinted at dump time are differences too.
                all_tables = {f"{s}.{t}" for s, t in fp.user_tables(conn)}
                differences += [f"{t}: present in the restored copy only"
                                for t in sorted(all_tables - manifest.tables.keys())]
            info["differences"] = len(differences)
    return RestoreResult(str(name), time.monotonic() - t0, len(restored), differences)


@dataclass
class VerifyResult:
    file: str
    scratch: str
    tables: int
    rows: int
    differences: list[str]
    seconds: float
    applied: bool = True

    @property
    def ok(self) -> bool:
        return self.applied and not self.differences


def verify_dump(dump_file: Path, server_dsn: str, *, yes: bool = False, dry_run: bool = False,
                keep: bool = False, pg_bin: Path | None = None, ask=None,
                interactive: bool | None = None) -> VerifyResult:
    """Restores the dump into a scratch database on `server_dsn`'s server, compares, drops it.

    Needs the manifest (it is the source's fingerprint at dump time). A corrupt or truncated file
    fails the SHA-256 check; a file that matches a wrong manifest, or a restore that silently
    loses rows, fails the comparison.
    """
    dump_file = Path(dump_file)
    t0 = time.monotonic()
    manifest = check_file(dump_file, require_manifest=True)
    assert manifest is not None
    scratch = f"lh_verify_{datetime.now(UTC):%Y%m%d%H%M%S}_{uuid.uuid4().hex[:6]}"
    scratch_dsn = make_conninfo(server_dsn, dbname=scratch)
    plan = Plan(f"verify {dump_file.name} in scratch database {scratch}")
    plan.add(f"create scratch database {scratch} and pg_restore the dump into it")
    plan.add(f"compare {len(manifest.tables)} tables "
             f"({sum(t['rows'] for t in manifest.tables.values())} rows) with the manifest")
    plan.add("keep the scratch database" if keep else f"DROP scratch database {scratch}")
    if not plan.approve(yes=yes, dry_run=dry_run, ask=ask, interactive=interactive):
        return VerifyResult(dump_file.name, scratch, 0, 0, [], 0.0, applied=False)
    try:
        result = restore_dump(dump_file, scratch_dsn, yes=True, pg_bin=pg_bin,
                              plan_title=f"restore into scratch {scratch}")
    except BackupError as exc:
        _drop(server_dsn, scratch, keep)
        return VerifyResult(dump_file.name, scratch, 0, 0, [f"restore failed: {exc}"],
                            time.monotonic() - t0)
    _drop(server_dsn, scratch, keep)
    rows = sum(t["rows"] for t in manifest.tables.values())
    return VerifyResult(dump_file.name, scratch, result.tables, rows, result.differences,
                        time.monotonic() - t0)


def _drop(server_dsn: str, name: str, keep: bool) -> None:
    if keep:
        return
    with psycopg.connect(make_conninfo(server_dsn, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(name)))
