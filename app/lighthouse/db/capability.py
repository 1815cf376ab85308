"""Which of the three database capability levels a server offers (DESIGN.md §2.1).

- timescale: TimescaleDB with the Timescale License (hypertables, compression, policies, jobs)
- apache:    TimescaleDB Apache edition (hypertables, drop_chunks; no compression/policies/jobs)
- vanilla:   PostgreSQL >= 14 without TimescaleDB (declarative partitioning by day)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import psycopg

from lighthouse.db.connect import one
from lighthouse.db.errors import TimescaleNotPreloadedError, UnsupportedServerError

MIN_SERVER_VERSION = 140000  # date_trunc(field, ts, zone) and partitioned-table features


class Capability(enum.StrEnum):
    TIMESCALE = "timescale"
    APACHE = "apache"
    VANILLA = "vanilla"

    @property
    def hypertables(self) -> bool:
        return self is not Capability.VANILLA

    @property
    def compression(self) -> bool:
        """Native compression and the database's own policy jobs need the Timescale License."""
        return self is Capability.TIMESCALE

    @property
    def sql_tags(self) -> tuple[str, ...]:
        """Variant file tags applied, in order, after a migration's base file."""
        if self is Capability.VANILLA:
            return ("vanilla",)
        return ("hypertable", self.value)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    server_version: int
    extension_installed: bool  # CREATE EXTENSION timescaledb done in this database
    extension_available: bool  # package installed on the server
    preloaded: bool  # 'timescaledb' in shared_preload_libraries
    license: str | None  # SHOW timescaledb.license when the library is loaded


def _setting(conn: psycopg.Connection, name: str) -> str | None:
    """A setting's value, or None if unknown or hidden from this role (pg_settings filters
    superuser-only settings instead of raising, so an unprivileged role can still detect)."""
    row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def server_info(conn: psycopg.Connection) -> ServerInfo:
    version = conn.info.server_version
    installed = one(
        conn, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")[0]
    available = one(
        conn, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
    )[0]
    libs = _setting(conn, "shared_preload_libraries")
    license_ = _setting(conn, "timescaledb.license")  # registered only once the library loaded
    if libs is None:
        preloaded = license_ is not None
    else:
        preloaded = any(lib.strip().strip('"') == "timescaledb" for lib in libs.split(","))
    return ServerInfo(version, bool(installed), bool(available), preloaded, license_ or None)


def check_server(info: ServerInfo) -> None:
    if info.server_version < MIN_SERVER_VERSION:
        raise UnsupportedServerError(
            f"PostgreSQL {info.server_version // 10000} is too old: the schema needs >= 14"
        )


def not_preloaded_error() -> TimescaleNotPreloadedError:
    return TimescaleNotPreloadedError(
        "TimescaleDB is installed on the server but its library is not preloaded: add "
        "shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL "
        "(or migrate with capability=vanilla to use plain partitioning)"
    )


def level_of(info: ServerInfo) -> Capability:
    """The level a server offers once the extension is created (it may not be yet)."""
    if not (info.extension_installed or (info.extension_available and info.preloaded)):
        return Capability.VANILLA
    return Capability.TIMESCALE if info.license == "timescale" else Capability.APACHE


def detect_capability(conn: psycopg.Connection) -> Capability:
    """The capability level of the database behind `conn`.

    Raises TimescaleNotPreloadedError when the extension exists in the database (or is
    installed on the server) but the library is not preloaded: using it would fail later
    with a less helpful message, and silently falling back to vanilla would split the schema.
    """
    info = server_info(conn)
    check_server(info)
    if info.extension_installed and not info.preloaded:
        raise not_preloaded_error()
    return level_of(info)
