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
from lighthouse.db.connect import one
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
        write_private(path, (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode())

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
    return make_conninfo("", **params), env


def _run(argv: list[str], env: dict[str, str], what: str, left: str) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"{what} failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-2000:]}\nState: {left}")
    return proc.stdout


def write_private(path: Path, data: bytes = b"") -> None:
    """Creates (or truncates) path readable by its owner only: dumps hold every secret in the
    database (alert channel tokens, monitor credentials)."""
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def dump(dsn: str, out: Path, *, pg_bin: Path | None = None, sample_rows: int = 200) -> Manifest:
    """Writes `out` (custom format) and `out.manifest.json`, both 0600; returns the manifest."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    write_private(tmp)  # pg_dump -f keeps the mode of the file it truncates
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = one(conn, "SELECT pg_export_snapshot()")[0]
        with step("fingerprint", database=conn.info.dbname) as info:
            tables = fp.fingerprint(conn, sample_rows=sample_rows)
            info["tables"] = len(tables)
            info["rows"] = sum(t.rows for t in tables.values())
        pg_dump = client_bin(conn, "pg_dump", pg_bin)
        clean_dsn, env = libpq_env(dsn)
        with step("pg_dump", file=out) as info:
            try:
                _run([str(pg_dump), "-Fc", "--snapshot", snapshot, "-f", str(tmp), "-d",
                      clean_dsn], env, "pg_dump", "nothing was changed")
            except BaseException:
                tmp.unlink(missing_ok=True)  # no half-written dump left to be mistaken for one
                raise
            info["bytes"] = tmp.stat().st_size
        manifest = Manifest(
            file=out.name, bytes=tmp.stat().st_size, sha256=sha256_file(tmp),
            database=conn.info.dbname, server_version=one(conn, "SHOW server_version")[0],
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
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


def _create(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _swap(admin_dsn: str, staging: str, target: str, exists: bool) -> None:
    """Put the verified staging database in target's place; the old target is dropped last.

    Renames need the target free of sessions: new connections are refused first, then the
    remaining ones ended (the prober spools meanwhile and reconnects to the restored copy)."""
    old = _side_name(target, "old")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if exists:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false")
                         .format(sql.Identifier(target)))
            try:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (target,))
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}")
                             .format(sql.Identifier(target), sql.Identifier(old)))
            except psycopg.Error:
                conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true")
                             .format(sql.Identifier(target)))
                raise
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}")
                     .format(sql.Identifier(staging), sql.Identifier(target)))
        if exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(old)))


def _side_name(target: str, tag: str) -> str:
    """A database name next to target's (63 bytes at most, as PostgreSQL allows)."""
    return f"{target[:40]}__{tag}_{uuid.uuid4().hex[:8]}"


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

    Nothing is touched until the restore has succeeded: the dump goes into a new staging
    database beside the target, is read to the end by pg_restore (a truncated or corrupt file
    fails there, manifest or not) and compared with the dump-time fingerprint when a manifest
    exists; only then is the target swapped for it (renames) and the old copy dropped. A failed
    restore or a copy that differs drops the staging database and leaves the target as it was.
    Replacing a non-empty target is destructive: plan + confirmation.
    """
    dump_file = Path(dump_file)
    t0 = time.monotonic()
    name = conninfo_to_dict(target_dsn).get("dbname")
    if not name:
        raise BackupError(f"target {target_dsn!r} names no database (dbname)")
    name = str(name)
    admin_dsn = make_conninfo(target_dsn, dbname="postgres")
    with step("check-file", file=dump_file):
        manifest = check_file(dump_file)
    with psycopg.connect(admin_dsn) as conn:
        pg_restore = client_bin(conn, "pg_restore", pg_bin)
        can_timescale = conn.execute("SELECT 1 FROM pg_available_extensions "
                                     "WHERE name = 'timescaledb'").fetchone() is not None
    toc = list_contents(dump_file, pg_restore)
    timescale = " EXTENSION - timescaledb" in toc or "EXTENSION public timescaledb" in toc
    if timescale and not can_timescale:
        # Its hypertables and chunks need the extension; nothing is created or changed.
        raise BackupError(
            f"{dump_file.name} was dumped from TimescaleDB, and the target server has no "
            "timescaledb extension to restore it with (vanilla PostgreSQL, e.g. RDS). Restore "
            "it into a TimescaleDB server, or move the data with a logical copy into a schema "
            "migrated for this server (`lighthouse migrate` on the target, then copy the rows)")
    exists, ntables = database_state(admin_dsn, name)
    staging = _side_name(name, "restore")
    plan = Plan(plan_title or f"restore {dump_file.name} into database {name}",
                destructive=exists and ntables > 0)
    plan.add("checked file against its manifest (size, SHA-256)" if manifest
             else "no manifest beside the file: pg_restore reads it whole before anything "
                  "is replaced")
    plan.add(f"create staging database {staging} and "
             + ("timescaledb_pre_restore(), pg_restore, timescaledb_post_restore() into it"
                if timescale else "pg_restore --exit-on-error --no-owner into it"))
    if manifest:
        plan.add(f"compare {len(manifest.tables)} tables with the dump-time fingerprint")
    if exists and ntables:
        plan.add(f"only if that worked: replace database {name} ({ntables} tables, all data "
                 "in it) by the staging copy, then drop the old one")
    elif exists:
        plan.add(f"only if that worked: replace the empty database {name} by the staging copy")
    else:
        plan.add(f"only if that worked: rename the staging copy to {name}")
    if not plan.approve(yes=yes, dry_run=dry_run, ask=ask, interactive=interactive):
        return RestoreResult(name, 0.0, 0, [], applied=False)

    _create(admin_dsn, staging)
    staging_dsn = make_conninfo(target_dsn, dbname=staging)
    try:
        restored, differences = _restore_into(dump_file, staging_dsn, pg_restore, manifest,
                                              timescale)
        if differences:  # the copy is not what was dumped: keep what the target holds
            _drop(admin_dsn, staging, keep=False)
            return RestoreResult(name, time.monotonic() - t0, restored, differences,
                                 applied=False)
        with step("swap", database=name, staging=staging):
            _swap(admin_dsn, staging, name, exists)
    except BaseException:
        _drop(admin_dsn, staging, keep=False)
        raise
    return RestoreResult(name, time.monotonic() - t0, restored, [])


def _restore_into(dump_file: Path, dsn: str, pg_restore: Path, manifest: Manifest | None,
                  timescale: bool) -> tuple[int, list[str]]:
    """pg_restore into the (new, empty) database at dsn; (tables, differences)."""
    clean_dsn, env = libpq_env(dsn)
    with step("pg_restore", database=conninfo_to_dict(dsn).get("dbname")):
        if timescale:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                conn.execute("SELECT timescaledb_pre_restore()")
        try:
            _run([str(pg_restore), "--exit-on-error", "--no-owner", "-d", clean_dsn,
                  str(dump_file)], env, "pg_restore",
                 "the target was not touched (the staging copy is dropped)")
        finally:
            if timescale:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("SELECT timescaledb_post_restore()")
    differences: list[str] = []
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with step("compare", database=conninfo_to_dict(dsn).get("dbname")) as info:
            restored = fp.fingerprint(conn, tables=[tuple(k.split(".", 1)) for k in
                                                    manifest.tables] if manifest else None)
            if manifest:
                differences = fp.compare(manifest.fingerprint, restored)
                # Tables restored but not fingerprinted at dump time are differences too.
                all_tables = {f"{s}.{t}" for s, t in fp.user_tables(conn)}
                differences += [f"{t}: present in the restored copy only"
                                for t in sorted(all_tables - manifest.tables.keys())]
            info["differences"] = len(differences)
    return len(restored), differences


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
