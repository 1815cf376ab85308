"""Errors raised by lighthouse.db; each message says what is wrong and what to do."""

from __future__ import annotations


class DatabaseError(Exception):
    """Base class for every lighthouse.db error."""


class DatabaseUnreachableError(DatabaseError):
    """The server could not be reached or refused the login."""


class PrivilegeError(DatabaseError):
    """The connected role lacks a privilege a migration or maintenance step needs."""


class TimescaleNotPreloadedError(DatabaseError):
    """TimescaleDB is installed but not in shared_preload_libraries."""


class UnsupportedServerError(DatabaseError):
    """PostgreSQL is older than the schema needs (declarative partitioning, 3-arg date_trunc)."""


class MigrationError(DatabaseError):
    """A migration file is malformed or failed to apply."""


class ChecksumMismatchError(MigrationError):
    """An applied migration's file changed since it was applied."""


class SchemaTooNewError(DatabaseError):
    """The database has migrations this code does not know: run a newer release."""


class SchemaOutdatedError(DatabaseError):
    """The database lacks migrations this code needs: run `lighthouse migrate`."""


class LockTimeoutError(DatabaseError):
    """Another migrator held the advisory lock for too long."""
