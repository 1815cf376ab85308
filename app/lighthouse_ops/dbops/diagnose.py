"""`db.diagnose`: one readable report of a database's health.

Sections: server and capability, rollup lag, slowest statements (pg_stat_statements), tables read
mostly by sequential scans, compression ratio (hypertable_compression_stats(), Timescale License
only), disk use, connections, replication and WAL archiving (pg_stat_archiver). Each section
degrades to a one-line note when its source is missing (extension not installed, no privilege),
so the report never fails half-way. Findings worth acting on are listed as warnings at the end.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import psycopg
from lighthouse.db.connect import one
from psycopg import sql
from psycopg.rows import dict_row


@dataclass
class Section:
    title: str
    rows: list[dict] = field(default_factory=list)
    note: str | None = None


@dataclass
class Report:
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def section(self, title: str) -> Section | None:
        return next((s for s in self.sections if s.title == title), None)

    def render(self) -> str:
        out: list[str] = []
        for s in self.sections:
            out.append(f"== {s.title}")
            if s.note:
                out.append(f"   {s.note}")
            out.extend(_table(s.rows))
            out.append("")
        out.append("== warnings" if self.warnings else "== no warnings")
        out.extend(f"   ! {w}" for w in self.warnings)
        return "\n".join(out)


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    cols = list(rows[0])
    cells = [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [min(60, max(len(c), *(len(row[i]) for row in cells))) for i, c in enumerate(cols)]
    lines = ["   " + "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    for row in cells:
        lines.append("   " + "  ".join(v[:w].ljust(w) for v, w in zip(row, widths, strict=True)))
    return lines


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return " ".join(str(v).split())


def _query(conn: psycopg.Connection, query: str, params: tuple = ()) -> list[dict]:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _guard(report: Report, title: str, fn) -> None:
    """Runs one section; a missing view or privilege becomes a note, not a failed report."""
    section = Section(title)
    try:
        fn(section)
    except psycopg.Error as exc:
        section.note = f"unavailable: {str(exc).strip().splitlines()[0]}"
    if not section.rows and not section.note:
        section.note = "nothing to report"
    report.sections.append(section)


def _has_extension(conn: psycopg.Connection, name: str) -> bool:
    return bool(conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (name,)).fetchone())


def diagnose(dsn: str, *, top: int = 10, seq_scan_min: int = 1000,
             rollup_lag_warn_s: int = 3 * 3600) -> Report:
    report = Report()
    with psycopg.connect(dsn, autocommit=True) as conn:
        timescale = _has_extension(conn, "timescaledb")
        license_ = None
        if timescale:
            license_ = one(conn, "SELECT current_setting('timescaledb.license', true)")[0]

        def server(s: Section) -> None:
            s.rows = _query(conn, """
                SELECT current_setting('server_version') AS version,
                       date_trunc('second', now() - pg_postmaster_start_time())::text AS uptime,
                       current_database() AS database""")
            s.rows[0]["capability"] = (("timescale" if license_ == "timescale" else "apache")
                                       if timescale else "vanilla")

        def rollups(s: Section) -> None:
            s.rows = _rollup_lag(conn)
            if not s.rows:
                s.note = "no rollup tables found"
            for r in s.rows:
                if r["lag_s"] is not None and r["lag_s"] > rollup_lag_warn_s:
                    report.warnings.append(f"rollup {r['table']} lags {r['lag']}; run db.maintain")

        def statements(s: Section) -> None:
            if not _has_extension(conn, "pg_stat_statements"):
                s.note = ("pg_stat_statements not installed in this database "
                          "(CREATE EXTENSION pg_stat_statements; needs shared_preload_libraries)")
                return
            s.rows = _query(conn, """
                SELECT calls, round(mean_exec_time::numeric, 2) AS mean_ms,
                       round(max_exec_time::numeric, 2) AS max_ms,
                       round(total_exec_time::numeric, 1) AS total_ms, left(query, 60) AS query
                FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database
                                                      WHERE datname = current_database())
                ORDER BY mean_exec_time DESC LIMIT %s""", (top,))

        def seq_scans(s: Section) -> None:
            # Unlike the seed's query, tables never read by index (idx_scan = 0) are included.
            s.rows = _query(conn, """
                SELECT schemaname || '.' || relname AS table, seq_scan,
                       coalesce(idx_scan, 0) AS idx_scan, seq_tup_read, n_live_tup AS live_rows,
                       round((seq_scan::numeric / greatest(coalesce(idx_scan, 0), 1)), 1)
                         AS seq_per_idx
                FROM pg_stat_user_tables
                WHERE seq_scan >= %s AND seq_scan > coalesce(idx_scan, 0)
                ORDER BY seq_tup_read DESC LIMIT %s""", (seq_scan_min, top))
            for r in s.rows:
                if r["live_rows"] > 10_000:
                    report.warnings.append(f"{r['table']}: {r['seq_scan']} sequential scans of "
                                           f"{r['live_rows']} rows; an index may be missing")

        def compression(s: Section) -> None:
            if license_ != "timescale":
                s.note = ("not available: needs TimescaleDB with the Timescale License "
                          f"(this server: {'apache edition' if timescale else 'no TimescaleDB'})")
                return
            s.rows = _query(conn, """
                SELECT format('%%I.%%I', h.hypertable_schema, h.hypertable_name) AS hypertable,
                       c.total_chunks, c.number_compressed_chunks AS compressed,
                       pg_size_pretty(c.before_compression_total_bytes) AS before,
                       pg_size_pretty(c.after_compression_total_bytes) AS after,
                       round(c.before_compression_total_bytes::numeric
                             / nullif(c.after_compression_total_bytes, 0), 2) AS ratio
                FROM timescaledb_information.hypertables h,
                LATERAL hypertable_compression_stats(
                    format('%%I.%%I', h.hypertable_schema, h.hypertable_name)::regclass) c""")
            for r in s.rows:
                if r["ratio"] is not None and r["ratio"] < 5:
                    report.warnings.append(f"{r['hypertable']}: compression ratio {r['ratio']} "
                                           "< 5; check the compression policy and segmentby")

        def disk(s: Section) -> None:
            # Partitioned parents hold no data themselves: add up their partitions.
            plain = ("CASE WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(relid))"
                     " FROM pg_partition_tree(c.oid))::bigint "
                     "ELSE pg_total_relation_size(c.oid) END")
            size_expr = ("CASE WHEN h.hypertable_name IS NOT NULL THEN hypertable_size("
                         "format('%%I.%%I', n.nspname, c.relname)::regclass) "
                         f"ELSE {plain} END") if timescale else plain
            ht_join = ("LEFT JOIN timescaledb_information.hypertables h "
                       "ON h.hypertable_schema = n.nspname AND h.hypertable_name = c.relname"
                       if timescale else "")
            s.rows = _query(conn, """
                SELECT 'database ' || current_database() AS what,
                       pg_size_pretty(pg_database_size(current_database())) AS size""")
            with contextlib.suppress(psycopg.Error):
                s.rows += _query(conn, """
                    SELECT 'WAL (pg_wal)' AS what, pg_size_pretty(sum(size)) AS size
                    FROM pg_ls_waldir()""")
            s.rows += _query(conn, f"""
                SELECT 'table ' || n.nspname || '.' || c.relname AS what,
                       pg_size_pretty({size_expr}) AS size
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace {ht_join}
                WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND n.nspname NOT LIKE '\\_timescaledb%%'
                ORDER BY {size_expr} DESC LIMIT %s""", (top,))

        def connections(s: Section) -> None:
            s.rows = _query(conn, """
                SELECT coalesce(state, 'background') AS state, count(*) AS connections,
                       current_setting('max_connections')::int AS max_connections
                FROM pg_stat_activity GROUP BY 1 ORDER BY 2 DESC""")
            client = one(conn, "SELECT count(*) FROM pg_stat_activity "
                                  "WHERE backend_type = 'client backend'")[0]
            limit = int(one(conn, "SHOW max_connections")[0])
            if client > 0.8 * limit:
                report.warnings.append(f"{client} of {limit} connections in use")

        def archiving(s: Section) -> None:
            s.rows = _query(conn, """
                SELECT current_setting('archive_mode') AS archive_mode,
                       current_setting('archive_timeout') AS archive_timeout,
                       archived_count, failed_count, last_archived_wal,
                       date_trunc('second', now() - last_archived_time)::text AS since_archived,
                       last_failed_wal,
                       date_trunc('second', now() - last_failed_time)::text AS since_failed
                FROM pg_stat_archiver""")
            a = s.rows[0]
            if a["archive_mode"] == "off":
                report.warnings.append("WAL archiving is off: no point-in-time recovery")
            elif a["failed_count"]:
                report.warnings.append(f"WAL archiving failed {a['failed_count']} times "
                                       f"(last {a['last_failed_wal']}); see the server log "
                                       "and `pgbackrest check`")
            s.rows += _query(conn, """
                SELECT 'replica ' || coalesce(application_name, '') AS archive_mode,
                       state AS archive_timeout, NULL::bigint AS archived_count,
                       NULL::bigint AS failed_count,
                       pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))
                         AS last_archived_wal, NULL AS since_archived, NULL AS last_failed_wal,
                       NULL AS since_failed
                FROM pg_stat_replication""")

        for title, fn in (("server", server), ("rollup lag", rollups),
                          ("slowest statements (pg_stat_statements)", statements),
                          ("sequential-scan-heavy tables", seq_scans),
                          ("compression", compression), ("disk use", disk),
                          ("connections", connections),
                          ("replication and WAL archiving", archiving)):
            _guard(report, title, fn)
    return report


def _rollup_lag(conn: psycopg.Connection) -> list[dict]:
    """Lag of each rollup table: now() minus its newest bucket (first timestamptz column)."""
    tables = _query(conn, """
        SELECT n.nspname AS schema, c.relname AS table,
               (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                  AND NOT a.attisdropped AND a.atttypid = 'timestamptz'::regtype
                ORDER BY (a.attname IN ('bucket', 'hour', 'day')) DESC, a.attnum LIMIT 1) AS col
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
          AND c.relname LIKE '%%rollup%%'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        ORDER BY 1, 2""")
    rows = []
    if any(t["table"] == "rollup_watermarks" for t in tables):
        # The schema's own record of how far each rollup has been refreshed.
        for name, until, lag in conn.execute(
                "SELECT name, rolled_until, extract(epoch FROM now() - rolled_until)::bigint "
                "FROM rollup_watermarks ORDER BY name").fetchall():
            rows.append({"table": f"watermark {name}", "newest": until,
                         "lag": None if lag is None else f"{lag // 3600}h{lag % 3600 // 60:02d}m",
                         "lag_s": lag})
    for t in tables:
        if not t["col"] or t["table"] == "rollup_watermarks":
            continue
        newest, lag = one(conn, sql.SQL(
            "SELECT max({c}), extract(epoch FROM now() - max({c}))::bigint FROM {t}").format(
            c=sql.Identifier(t["col"]), t=sql.Identifier(t["schema"], t["table"])))
        rows.append({"table": f"{t['schema']}.{t['table']}", "newest": newest,
                     "lag": None if lag is None else f"{lag // 3600}h{lag % 3600 // 60:02d}m",
                     "lag_s": lag})
    return rows
