"""Table fingerprints: exact row counts plus md5 checksums of sampled, key-ordered row ranges.

Two databases holding the same data give equal fingerprints whatever their server version or
physical layout, so a restored copy can be compared with its source (or with the fingerprint
recorded when the backup was taken). Rows are rendered as text under fixed session settings
(UTC, ISO dates, full float precision) so the rendering does not depend on the connection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql

# Catalog and extension-internal schemas: their content is not the user's data, and TimescaleDB's
# chunks are counted through their hypertable.
SKIPPED_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "_timescaledb_internal",
                   "_timescaledb_catalog", "_timescaledb_config", "_timescaledb_cache",
                   "_timescaledb_functions", "_timescaledb_debug", "timescaledb_information",
                   "timescaledb_experimental", "toolkit_experimental")

SESSION_SETTINGS = ("SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, YMD'",
                    "SET IntervalStyle = 'postgres'", "SET extra_float_digits = 3",
                    "SET bytea_output = 'hex'")


@dataclass(frozen=True)
class Sample:
    offset: int
    limit: int
    md5: str | None


@dataclass
class TableFingerprint:
    rows: int
    samples: list[Sample] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TableFingerprint:
        return cls(rows=int(data["rows"]), samples=[Sample(**s) for s in data["samples"]])


Fingerprint = dict[str, TableFingerprint]


def sample_offsets(rows: int, sample_rows: int, ranges: int) -> list[tuple[int, int]]:
    """Evenly spread (offset, limit) ranges covering the first and the last rows."""
    if rows <= sample_rows * ranges:
        return [(0, rows)] if rows else []
    if ranges == 1:
        return [(0, sample_rows)]
    last = rows - sample_rows
    return [(round(i * last / (ranges - 1)), sample_rows) for i in range(ranges)]


def user_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Ordinary and partitioned tables that hold user data (partitions counted via the parent)."""
    rows = conn.execute(
        """SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
             AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_temp%%'
             AND n.nspname NOT LIKE 'pg\\_toast%%'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
           ORDER BY 1, 2""",
        (list(SKIPPED_SCHEMAS),),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def order_key(conn: psycopg.Connection, schema: str, table: str) -> list[str] | None:
    """Columns of the primary key, else of a unique index on NOT NULL columns; None = whole row."""
    rows = conn.execute(
        """SELECT i.indisprimary, array_agg(a.attname ORDER BY k.ord) AS cols,
                  bool_and(a.attnotnull) AS notnull
           FROM pg_index i
           JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
           WHERE n.nspname = %s AND c.relname = %s AND i.indisunique AND i.indpred IS NULL
             AND i.indexprs IS NULL
           GROUP BY i.indexrelid, i.indisprimary
           ORDER BY i.indisprimary DESC, i.indexrelid""",
        (schema, table),
    ).fetchall()
    for primary, cols, notnull in rows:
        if primary or notnull:
            return list(cols)
    return None


def _value(conn: psycopg.Connection, query: sql.Composed, params: tuple = ()) -> Any:
    # This file also runs alone on the db host (backup.remote ships it): no lighthouse import.
    row = conn.execute(query, params).fetchone()
    assert row is not None, "an aggregate always returns a row"
    return row[0]


def table_fingerprint(conn: psycopg.Connection, schema: str, table: str, *,
                      sample_rows: int = 200, ranges: int = 3) -> TableFingerprint:
    ident = sql.Identifier(schema, table)
    rows = _value(conn, sql.SQL("SELECT count(*) FROM {}").format(ident))
    key = order_key(conn, schema, table)
    order = (sql.SQL(", ").join(sql.Identifier(c) for c in key) if key
             else sql.SQL("t::text"))
    samples = []
    for offset, limit in sample_offsets(rows, sample_rows, ranges):
        query = sql.SQL(
            "SELECT md5(string_agg(t::text, E'\\n' ORDER BY {order})) FROM ("
            "SELECT * FROM {tbl} t ORDER BY {order} OFFSET %s LIMIT %s) t"
        ).format(tbl=ident, order=order)
        md5 = _value(conn, query, (offset, limit))
        samples.append(Sample(offset, limit, md5))
    return TableFingerprint(rows=rows, samples=samples)


def prepare_session(conn: psycopg.Connection) -> None:
    for stmt in SESSION_SETTINGS:
        conn.execute(stmt)


def fingerprint(conn: psycopg.Connection, *, sample_rows: int = 200, ranges: int = 3,
                tables: list[tuple[str, str]] | None = None) -> Fingerprint:
    """Fingerprint of every user table, read in the connection's current transaction/snapshot."""
    prepare_session(conn)
    return {f"{s}.{t}": table_fingerprint(conn, s, t, sample_rows=sample_rows, ranges=ranges)
            for s, t in (tables if tables is not None else user_tables(conn))}


def fingerprint_dsn(dsn: str, **kwargs) -> Fingerprint:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return fingerprint(conn, **kwargs)


def compare(source: Fingerprint, restored: Fingerprint) -> list[str]:
    """Human-readable differences; an empty list means the copies match."""
    diffs: list[str] = []
    for name in sorted(source.keys() - restored.keys()):
        diffs.append(f"{name}: missing from the restored copy ({source[name].rows} rows in source)")
    for name in sorted(restored.keys() - source.keys()):
        diffs.append(f"{name}: present in the restored copy only")
    for name in sorted(source.keys() & restored.keys()):
        a, b = source[name], restored[name]
        if a.rows != b.rows:
            diffs.append(f"{name}: row count {b.rows} restored vs {a.rows} in source")
            continue
        for sa, sb in zip(a.samples, b.samples, strict=False):
            if sa != sb:
                diffs.append(f"{name}: checksum of rows {sa.offset}..{sa.offset + sa.limit - 1} "
                             "differs")
        if len(a.samples) != len(b.samples):
            diffs.append(f"{name}: sampled {len(b.samples)} ranges vs {len(a.samples)}")
    return diffs


def to_json(fp: Fingerprint) -> dict:
    return {k: v.to_json() for k, v in fp.items()}


def from_json(data: dict) -> Fingerprint:
    return {k: TableFingerprint.from_json(v) for k, v in data.items()}
