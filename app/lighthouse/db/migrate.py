"""The one migrator: `invoke db.migrate`, `lighthouse migrate`, prober start-up and tests.

- Each migration runs in its own transaction together with its schema_migrations row.
- A session advisory lock serializes concurrent migrators; the loser re-reads and finds
  nothing to do.
- The applied checksum of every migration is compared with the file: a changed applied
  migration is refused (write a new migration instead).
- The capability level is chosen once, when the first migration is applied, and recorded;
  later runs keep it so a schema is never half vanilla, half hypertable.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import psycopg
from psycopg import errors as pgerrors

from lighthouse.db.capability import (
    Capability,
    check_server,
    detect_capability,
    level_of,
    not_preloaded_error,
    server_info,
)
from lighthouse.db.connect import connect, describe_dsn, one
from lighthouse.db.errors import (
    ChecksumMismatchError,
    DatabaseUnreachableError,
    LockTimeoutError,
    MigrationError,
    PrivilegeError,
    SchemaOutdatedError,
    SchemaTooNewError,
)
from lighthouse.db.migrations import Migration, load_migrations

__all__ = [
    "Capability", "Migration", "SchemaStatus", "detect_capability", "ensure_schema", "migrate",
    "schema_status",
]

log = logging.getLogger("lighthouse.db.migrate")

LOCK_KEY = 0x4C48_4D49  # "LHMI": one key per database for every migrator

CREATE_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version      integer PRIMARY KEY,
  name         text NOT NULL,
  checksum     char(64) NOT NULL,
  capability   text NOT NULL,
  applied_at   timestamptz NOT NULL DEFAULT now(),
  execution_ms integer NOT NULL
)"""


@dataclass(frozen=True, slots=True)
class AppliedRow:
    version: int
    name: str
    checksum: str
    capability: Capability


@dataclass(slots=True)
class SchemaStatus:
    current_version: int  # highest applied, 0 on an empty database
    latest_version: int  # highest this code knows
    capability: Capability | None  # recorded level (None before the first migration)
    detected: Capability | None = None  # what the server offers now
    pending: list[Migration] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.pending and self.current_version == self.latest_version


def _applied(conn: psycopg.Connection) -> dict[int, AppliedRow]:
    exists = one(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL")[0]
    if not exists:
        return {}
    rows = conn.execute(
        "SELECT version, name, checksum, capability FROM schema_migrations ORDER BY version"
    ).fetchall()
    return {r[0]: AppliedRow(r[0], r[1], r[2], Capability(r[3])) for r in rows}


def _verify(applied: dict[int, AppliedRow], known: list[Migration]) -> list[Migration]:
    """Pending migrations; raises on unknown applied versions or changed files."""
    by_version = {m.version: m for m in known}
    unknown = sorted(set(applied) - set(by_version))
    if unknown:
        raise SchemaTooNewError(
            f"the database has migrations {unknown} that this code does not know (it knows "
            f"up to {max(by_version, default=0)}): run a newer Lighthouse release")
    for version, row in applied.items():
        m = by_version[version]
        if row.checksum != m.checksum:
            raise ChecksumMismatchError(
                f"migration {m.label} ({', '.join(m.files)}) changed after it was applied "
                f"(checksum {row.checksum[:12]} in the database, {m.checksum[:12]} on disk): "
                "restore the file and put the change in a new migration")
    return [m for m in known if m.version not in applied]


def _recorded_capability(applied: dict[int, AppliedRow]) -> Capability | None:
    return applied[min(applied)].capability if applied else None


def _choose_capability(conn: psycopg.Connection, applied: dict[int, AppliedRow],
                       requested: Capability | None, dry_run: bool,
                       out: TextIO) -> Capability:
    recorded = _recorded_capability(applied)
    if recorded is not None:
        if requested is not None and requested != recorded:
            raise MigrationError(f"the schema was created for capability {recorded}; "
                                 f"refusing to continue it as {requested}")
        detect_capability(conn)  # still raises if TimescaleDB lost its preload
        return recorded
    info = server_info(conn)
    check_server(info)
    if requested is Capability.VANILLA:
        return requested
    if info.extension_available and not info.preloaded:
        raise not_preloaded_error()
    if info.extension_installed:
        level = level_of(info)
    elif info.extension_available:
        statement = "CREATE EXTENSION IF NOT EXISTS timescaledb;"
        if dry_run:
            out.write(f"-- would run first:\n{statement}\n\n")
        else:
            log.info("creating extension timescaledb")
            _execute(conn, statement, "CREATE EXTENSION timescaledb")
        level = level_of(server_info(conn)) if not dry_run else level_of(info)
    else:
        level = Capability.VANILLA
    if requested is not None and requested != level:
        raise MigrationError(f"capability {requested} requested but the server offers {level}")
    return level


def _execute(conn: psycopg.Connection, sql: str, what: str) -> None:
    try:
        conn.execute(sql)  # no parameters: simple protocol, several statements allowed
    except pgerrors.InsufficientPrivilege as e:
        user = conn.info.user
        raise PrivilegeError(
            f"{what}: role {user!r} lacks a privilege: {e.diag.message_primary}. Run the "
            "migrator as the database owner (or grant CREATE on the database and schema "
            "public)") from e
    except pgerrors.FeatureNotSupported as e:
        raise MigrationError(f"{what}: {e.diag.message_primary}") from e
    except psycopg.DatabaseError as e:
        if "must be preloaded" in str(e):
            raise not_preloaded_error() from e
        raise MigrationError(f"{what} failed: {str(e).strip()}") from e


def _lock(conn: psycopg.Connection, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not one(conn, "SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))[0]:
        if time.monotonic() > deadline:
            raise LockTimeoutError(f"another migrator held the lock for more than {timeout_s}s; "
                                   "check pg_locks for advisory lock 1279806793")
        time.sleep(0.1)


def migrate(dsn: str, dry_run: bool = False, *, capability: Capability | str | None = None,
            out: TextIO | None = None, lock_timeout_s: float = 300.0,
            maintain: bool = True) -> list[Migration]:
    """Applies pending migrations; returns them (with dry_run: prints their SQL instead).

    `capability` forces a level for a new schema (e.g. vanilla on a server that has
    TimescaleDB installed but should not use it). After migrating a vanilla schema the
    partitions ahead are created (`maintain=False` skips that).
    """
    out = out or sys.stdout
    requested = Capability(capability) if capability else None
    with connect(dsn, application_name="lighthouse-migrate") as conn:
        if not dry_run:
            _lock(conn, lock_timeout_s)
        try:
            applied = _applied(conn)
            level = _choose_capability(conn, applied, requested, dry_run, out)
            pending = _verify(applied, load_migrations(level))
            if dry_run:
                for m in pending:
                    out.write(f"-- migration {m.label} (capability {level})\n{m.sql}\n")
                if not pending:
                    out.write(f"-- nothing to apply: schema is at version {max(applied)} "
                              f"({level})\n")
                return pending
            if pending:
                _execute(conn, CREATE_SCHEMA_MIGRATIONS, "creating schema_migrations")
            for m in pending:
                started = time.monotonic()
                with conn.transaction():
                    _execute(conn, m.sql, f"migration {m.label}")
                    ms = int((time.monotonic() - started) * 1000)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, capability,"
                        " execution_ms) VALUES (%s, %s, %s, %s, %s)",
                        (m.version, m.name, m.checksum, level.value, ms))
                log.info("migration applied version=%d name=%s capability=%s ms=%d",
                         m.version, m.name, level, ms)
            if maintain and level is Capability.VANILLA:
                from lighthouse.db.partitions import ensure_partitions

                ensure_partitions(conn)
            if not pending:
                log.info("schema up to date version=%d capability=%s", max(applied), level)
            return pending
        finally:
            if not dry_run and not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def schema_status(dsn: str) -> SchemaStatus:
    """What is applied, what this code would apply, and what the server offers."""
    with connect(dsn, application_name="lighthouse-status") as conn:
        return _status(conn)


def _status(conn: psycopg.Connection) -> SchemaStatus:
    applied = _applied(conn)
    recorded = _recorded_capability(applied)
    detected = detect_capability(conn)
    known = load_migrations(recorded or detected)
    pending = _verify(applied, known)
    return SchemaStatus(max(applied, default=0), max((m.version for m in known), default=0),
                        recorded, detected, pending)


def ensure_schema(dsn: str, wait_s: float = 60.0, poll_s: float = 2.0) -> SchemaStatus:
    """Prober start-up check: returns once the schema is exactly what this code expects.

    Refuses at once a schema newer than the code or a changed migration; waits up to
    `wait_s` for an unreachable server or an older schema (a migrator may be running),
    then fails with SchemaOutdatedError / DatabaseUnreachableError.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with connect(dsn, application_name="lighthouse-ensure-schema") as conn:
                status = _status(conn)
            if status.up_to_date:
                return status
            problem: Exception = SchemaOutdatedError(
                f"database {describe_dsn(dsn)} is at schema version {status.current_version}, "
                f"this code needs {status.latest_version} (pending: "
                f"{', '.join(m.label for m in status.pending)}): run `lighthouse migrate` "
                "or `invoke db.migrate`")
        except DatabaseUnreachableError as e:
            problem = e
        if time.monotonic() + poll_s > deadline:
            raise problem
        log.info("waiting for schema reason=%r", str(problem))
        time.sleep(poll_s)
