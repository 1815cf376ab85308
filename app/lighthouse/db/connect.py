"""Connecting with errors that say which server failed, never the password."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from lighthouse.db.errors import DatabaseUnreachableError


def describe_dsn(dsn: str) -> str:
    """host:port/dbname as user — safe for logs and error messages."""
    try:
        d = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable dsn>"
    return (f"{d.get('host', 'localhost')}:{d.get('port', 5432)}/{d.get('dbname', '?')} "
            f"as {d.get('user', '?')}")


def connect(dsn: str, *, autocommit: bool = True, connect_timeout: int = 10,
            application_name: str = "lighthouse") -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=connect_timeout,
                               application_name=application_name)
    except psycopg.OperationalError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = "; ".join(lines) or type(e).__name__
        raise DatabaseUnreachableError(
            f"cannot connect to PostgreSQL at {describe_dsn(dsn)}: {reason}") from e


def one(conn: psycopg.Connection, query: Any, params: Any = None) -> tuple[Any, ...]:
    """The row a query always returns (an aggregate, SHOW, RETURNING, a function call);
    its absence is a bug worth a clear error, not a TypeError on None."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"expected one row, got none: {str(query)[:120]}")
    return row
