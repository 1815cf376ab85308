"""Move a live Lighthouse database to another PostgreSQL server (`invoke db.migrate-to`).

The seeds' option C2 (RDS) and any move to a vanilla server (capability level 3): TimescaleDB
or vanilla source, any level on the target (its own migrations pick the level it offers).

1. **prepare**: the schema on the target (`lighthouse migrate`), the same tables and columns
   on both sides (tables the migrations did not make stay behind, named), nothing of ours on
   the target yet (or only what an earlier run of this copy left, which the copy then
   corrects), partitions for the whole history (vanilla target).
2. **bulk** (live, the probers keep writing to the source): every time-keyed table copied one
   UTC day at a time (COPY text between the servers: enum arrays do not survive binary COPY
   between servers). A day whose digest already matches is skipped, so a second run resumes.
3. **cutover**: the source database turns read-only (`default_transaction_read_only`, its
   sessions ended): the probers' writes fail and go to their spools. Every table is compared
   by digest (rows per UTC day for time-keyed tables: count and an order-free sum of row
   hashes) and what differs is copied again (late rows, rollups and packed hours that changed,
   the small tables in full); identity sequences follow. Verified equal, then `switch` runs
   (Ansible points the probers at the target; they replay their spools there).
   A failure before the switch makes the source writable again and loses nothing.

Target writes run with `session_replication_role = replica` (no triggers, no foreign-key
checks while tables fill out of order): the target's user needs superuser or rds_superuser.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg
from lighthouse.db.connect import describe_dsn
from lighthouse.db.errors import DatabaseError
from lighthouse.db.migrate import migrate
from psycopg import sql

from lighthouse_ops.backup.fingerprint import order_key, prepare_session, user_tables

# Tables copied by UTC day of this column; every other table is copied whole.
TIME_KEYED = {"check_history": "time", "alert_history": "time", "check_history_packed": "hour",
              "check_rollup_hourly": "bucket", "check_rollup_daily": "bucket"}
# The target's own record of its migrations (its variant files differ from the source's).
NOT_COPIED = frozenset({"schema_migrations"})


class MoveError(RuntimeError):
    """The move cannot go on; the message says why and what was left as it was."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    time_column: str | None
    key: tuple[str, ...]  # ordering for nothing but determinism; the digest is order-free
    identity: tuple[str, ...]  # columns with a sequence behind them

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier("public", self.name)

    def select_list(self) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)


Digest = tuple[int, int]  # rows, sum of 60-bit row hashes
DayDigests = dict[date | None, Digest]


@dataclass
class Report:
    tables: dict[str, int] = field(default_factory=dict)  # rows on the target
    days_copied: int = 0
    tables_copied: int = 0
    bulk_rows: int = 0  # copied while the source was writable
    cutover_rows: int = 0  # copied again while it was read-only
    read_only_s: float = 0.0  # source read-only until the switch was done
    verify_s: float = 0.0
    switch_s: float = 0.0


def _connect(dsn: str) -> psycopg.Connection:
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10,
                               application_name="lighthouse-migrate-to")
    except psycopg.Error as exc:
        raise MoveError(f"cannot connect to {describe_dsn(dsn)}: "
                        f"{str(exc).strip().splitlines()[0]}") from None
    prepare_session(conn)
    return conn


def _columns(conn: psycopg.Connection, table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    rows = conn.execute(
        "SELECT column_name, (is_identity = 'YES' OR column_default LIKE 'nextval(%%') "
        "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
        "ORDER BY ordinal_position", (table,)).fetchall()
    return tuple(r[0] for r in rows), tuple(r[0] for r in rows if r[1])


def tables(conn: psycopg.Connection) -> dict[str, Table]:
    out = {}
    for schema, name in user_tables(conn):
        if schema != "public" or name in NOT_COPIED:
            continue
        cols, identity = _columns(conn, name)
        key = tuple(order_key(conn, schema, name) or cols)
        out[name] = Table(name, cols, TIME_KEYED.get(name), key, identity)
    return out


def _row_hash(t: Table) -> sql.Composable:
    # 60 bits of md5 per row, summed as numeric: equal multisets of rows give equal sums in
    # any order, in constant memory, on any PostgreSQL version.
    return sql.SQL("('x' || left(md5(ROW({cols})::text), 15))::bit(60)::bigint").format(
        cols=t.select_list())


def digests(conn: psycopg.Connection, t: Table) -> DayDigests:
    """Rows and the sum of row hashes, per UTC day (time-keyed) or for the whole table."""
    hashed = _row_hash(t)
    if t.time_column is None:
        row = conn.execute(sql.SQL("SELECT count(*), coalesce(sum({h}), 0) FROM {t}").format(
            h=hashed, t=t.ident)).fetchone()
        assert row is not None
        return {None: (int(row[0]), int(row[1]))}
    day = sql.SQL("({c} AT TIME ZONE 'UTC')::date").format(c=sql.Identifier(t.time_column))
    rows = conn.execute(sql.SQL(
        "SELECT {day}, count(*), sum({h}) FROM {t} GROUP BY 1").format(
        day=day, h=hashed, t=t.ident)).fetchall()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def row_count(conn: psycopg.Connection, t: Table) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {t}").format(t=t.ident)).fetchone()
    return int(row[0]) if row else 0


def _bounds(d: date) -> tuple[datetime, datetime]:
    lo = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return lo, lo + timedelta(days=1)


def _copy(src: psycopg.Connection, dst: psycopg.Connection, t: Table,
          where: sql.Composable) -> int:
    """COPY the rows `where` selects from source to target (text format); rows copied."""
    out_q = sql.SQL("COPY (SELECT {cols} FROM {t} WHERE {w}) TO STDOUT").format(
        cols=t.select_list(), t=t.ident, w=where)
    in_q = sql.SQL("COPY {t} ({cols}) FROM STDIN").format(t=t.ident, cols=t.select_list())
    rows = 0
    with src.cursor() as sc, dst.cursor() as dc, sc.copy(out_q) as out, dc.copy(in_q) as inp:
        for data in out:
            rows += bytes(data).count(b"\n")  # one per row: text COPY escapes newlines in data
            inp.write(data)
    return rows


class Mover:
    """One move from `source` to `target` (DSNs); `say` gets one line per step."""

    def __init__(self, source: str, target: str, say: Callable[[str], None] = print,
                 resume: bool = False) -> None:
        self.source_dsn, self.target_dsn, self.say = source, target, say
        self.resume = resume  # the target's rows are an earlier run's copy: correct them
        self.report = Report()
        self._tables: dict[str, Table] = {}

    # -- 1. prepare ----------------------------------------------------------------------
    def prepare(self) -> dict[str, Table]:
        with _connect(self.source_dsn) as src:
            if src.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                raise MoveError("the source is a standby: point --source at the primary")
            ok = src.execute(
                "SELECT rolsuper OR pg_has_role(current_user, d.datdba, 'MEMBER') "
                "FROM pg_roles, pg_database d WHERE rolname = current_user "
                "AND d.datname = current_database()").fetchone()
            if ok != (True,):
                raise MoveError("the source user can neither own nor administer the database: "
                                "the cutover makes it read-only (connect as its owner)")
            theirs = tables(src)
            if "subscriptions" not in theirs:
                raise MoveError("the source has no Lighthouse schema (no subscriptions table)")
        try:
            applied = migrate(self.target_dsn, maintain=True, out=io.StringIO())
        except (psycopg.Error, DatabaseError) as exc:
            raise MoveError(f"target: the schema could not be applied: "
                            f"{str(exc).strip().splitlines()[0]}") from None
        self.say(f"target schema: {len(applied)} migration(s) applied")
        with _connect(self.source_dsn) as src, _connect(self.target_dsn) as dst:
            ours = tables(dst)
            theirs_v, ours_v = (int((c.execute("SELECT coalesce(max(version), 0) FROM "
                                               "schema_migrations").fetchone() or (0,))[0])
                                for c in (src, dst))
            held = sum(row_count(dst, t) for t in ours.values())
        if theirs_v > ours_v:
            raise MoveError(f"the source's schema is at version {theirs_v}, this release's at "
                            f"{ours_v}: run db.migrate-to from the source's release (or newer)")
        # the schema's tables are what this release's migrations made on the target; any other
        # table in the source's public schema is someone else's and stays behind
        foreign = sorted(set(theirs) - set(ours))
        if foreign:
            self.say(f"not copied (not part of the Lighthouse schema): {', '.join(foreign)}")
        theirs = {n: t for n, t in theirs.items() if n in ours}
        for name, t in theirs.items():
            if set(t.columns) != set(ours[name].columns):
                raise MoveError(f"{name}: columns differ between source and target "
                                f"({sorted(set(t.columns) ^ set(ours[name].columns))})")
        if held and not self.resume:
            raise MoveError(f"the target already holds {held} rows: a move writes over every "
                            "table it copies. Pass --resume only if an earlier db.migrate-to "
                            "of this source left them; otherwise use an empty database")
        self._tables = theirs
        self._partitions()
        return theirs

    def _partitions(self) -> None:
        """Vanilla target: day partitions back to the oldest source row (else old rows pile
        up in the DEFAULT partition, which retention and packing do not drop by day)."""
        with _connect(self.source_dsn) as src, _connect(self.target_dsn) as dst:
            partitioned = dst.execute(
                "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c "
                "ON c.oid = p.partrelid WHERE c.relname = 'check_history'").fetchone()
            if partitioned != (1,):
                return
            oldest = src.execute("SELECT least((SELECT min(time) FROM check_history), "
                                 "(SELECT min(time) FROM alert_history))").fetchone()
            if not oldest or oldest[0] is None:
                return
            from lighthouse.db.partitions import ensure_partitions

            back = (datetime.now(UTC).date() - oldest[0].astimezone(UTC).date()).days + 1
            made = ensure_partitions(dst, days_back=back)
            self.say(f"target partitions: {len(made)} created back to {oldest[0]:%Y-%m-%d}")

    # -- 2 and 3: the copy ---------------------------------------------------------------
    def sync(self, names: Iterable[str] | None = None) -> int:
        """Copy again whatever differs (per day or per table); rows copied."""
        copied = 0
        with _connect(self.source_dsn) as src, _connect(self.target_dsn) as dst:
            dst.execute("SET session_replication_role = replica")
            for name in names or self._tables:
                t = self._tables[name]
                theirs, ours = digests(src, t), digests(dst, t)
                stale = sorted((d for d in theirs.keys() | ours.keys()
                                if theirs.get(d) != ours.get(d)),
                               key=lambda d: d or date.min)
                for d in stale:
                    copied += self._copy_part(src, dst, t, d)
        return copied

    def _copy_part(self, src: psycopg.Connection, dst: psycopg.Connection, t: Table,
                   d: date | None) -> int:
        if d is None or t.time_column is None:
            where: sql.Composable = sql.SQL("true")
            self.report.tables_copied += 1
        else:
            lo, hi = _bounds(d)
            where = sql.SQL("{c} >= {lo} AND {c} < {hi}").format(
                c=sql.Identifier(t.time_column), lo=sql.Literal(lo), hi=sql.Literal(hi))
            self.report.days_copied += 1
        with dst.transaction():
            dst.execute(sql.SQL("DELETE FROM {t} WHERE {w}").format(t=t.ident, w=where))
            rows = _copy(src, dst, t, where)
        return rows

    def bulk(self) -> int:
        """The live copy of the time-keyed tables (and the rest, refreshed at cutover)."""
        started = time.monotonic()
        rows = self.report.bulk_rows = self.sync()
        self.say(f"bulk copy: {rows} rows in {time.monotonic() - started:.1f}s "
                 "(the source stays writable)")
        return rows

    def verify(self) -> list[str]:
        """Differences left, one line each (empty: every table equal)."""
        diffs = []
        with _connect(self.source_dsn) as src, _connect(self.target_dsn) as dst:
            for name, t in self._tables.items():
                theirs, ours = digests(src, t), digests(dst, t)
                self.report.tables[name] = sum(r for r, _ in ours.values())
                for d in sorted(theirs.keys() | ours.keys(), key=lambda d: d or date.min):
                    if theirs.get(d) != ours.get(d):
                        where = f" on {d}" if d else ""
                        diffs.append(f"{name}{where}: {ours.get(d, (0, 0))[0]} rows on the "
                                     f"target, {theirs.get(d, (0, 0))[0]} on the source"
                                     " (or their contents differ)")
        return diffs

    def _sequences(self) -> None:
        with _connect(self.target_dsn) as dst:
            for t in self._tables.values():
                for col in t.identity:
                    dst.execute(sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({t}, {c}), coalesce(max({ci}), 1),"
                        " max({ci}) IS NOT NULL) FROM {ti}").format(
                        t=sql.Literal(f"public.{t.name}"), c=sql.Literal(col),
                        ci=sql.Identifier(col), ti=t.ident))

    def _read_only(self, on: bool) -> None:
        with _connect(self.source_dsn) as src:
            db = sql.Identifier(src.info.dbname)
            src.execute("SET default_transaction_read_only = off")  # this session writes
            if on:
                src.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on")
                            .format(db))
                # sessions opened before the ALTER keep writing: end the ones we may signal
                # (our role's, i.e. the probers'; a superuser ends all), they reconnect
                # read-only and spool
                ended = src.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid)) FROM "
                    "pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid "
                    "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND ("
                    "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR "
                    "(NOT r.rolsuper AND pg_has_role(current_user, r.oid, 'MEMBER')))"
                ).fetchone()
                self.say(f"source sessions ended: {ended[0] if ended else 0}")
            else:
                src.execute(sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only")
                            .format(db))

    def cutover(self, switch: Callable[[], None]) -> Report:
        """Source read-only, copy what changed, verify, switch; the source stays read-only."""
        started = time.monotonic()
        self._read_only(True)
        self.say("source is read-only: the probers spool their results")
        try:
            rows = self.report.cutover_rows = self.sync()
            self._sequences()
            t = time.monotonic()
            diffs = self.verify()
            self.report.verify_s = time.monotonic() - t
            if diffs:
                raise MoveError("verification failed:\n  " + "\n  ".join(diffs))
            self.say(f"cutover copy: {rows} rows; every table verified equal "
                     f"({self.report.verify_s:.1f}s)")
            t = time.monotonic()
            switch()
            self.report.switch_s = time.monotonic() - t
        except BaseException:
            try:
                self._read_only(False)
            except (MoveError, psycopg.Error) as exc:  # keep the first failure the one raised
                self.say(f"the source could NOT be made writable again ({exc}): run ALTER "
                         "DATABASE … RESET default_transaction_read_only on it; the probers "
                         "spool until then")
            else:
                self.say("source is writable again: nothing was switched, the probers replay "
                         "their spools into it")
            raise
        self.report.read_only_s = time.monotonic() - started
        return self.report


# -- the runbook: `invoke db.migrate-to` ----------------------------------------------------

def estimated_rows(dsn: str) -> dict[str, int]:
    """Rows per table from the statistics collector's live-row counts (counting 90 days of
    history would be a minute of its own); chunks and partitions summed under their parent."""
    with _connect(dsn) as conn:
        names = tables(conn)
        rows = conn.execute(
            "SELECT coalesce(parent.relname, s.relname), sum(s.n_live_tup)::bigint "
            "FROM pg_stat_all_tables s LEFT JOIN pg_inherits i ON i.inhrelid = s.relid "
            "LEFT JOIN pg_class parent ON parent.oid = i.inhparent GROUP BY 1").fetchall()
    found = {name: int(n) for name, n in rows}
    return {name: found.get(name, 0) for name in names}


def plan_move(mover: Mover, switch: Callable[[], None], switch_what: str):
    """The runbook's plan: what moves where, the steps, what each failure leaves behind."""
    from lighthouse_ops.aws.runbook import Plan, Step

    rows = estimated_rows(mover.source_dsn)
    facts = [f"source: {describe_dsn(mover.source_dsn)}",
             f"target: {describe_dsn(mover.target_dsn)}",
             f"tables: {len(rows)}, about {sum(rows.values())} rows (live-row statistics; "
             f"check_history ~{rows.get('check_history', 0)})"]

    def bulk() -> str:
        return f"{mover.bulk()} rows copied"

    def cutover() -> str:
        r = mover.cutover(switch)
        return (f"read-only {r.read_only_s:.1f}s (copy of what changed: {r.cutover_rows} rows; "
                f"verify {r.verify_s:.1f}s; switch {r.switch_s:.1f}s); every table equal")

    steps = [
        Step("schema on the target, tables and columns compared, partitions for the history",
             lambda: f"{len(mover.prepare())} tables to copy",
             "nothing copied; the target may hold the schema now",
             "fix the cause and run db.migrate-to again"),
        Step("bulk copy, one UTC day at a time, while the probers keep writing to the source",
             bulk, "the target holds part of the copy; the source is untouched and writable",
             "run db.migrate-to again with --resume: days already equal are skipped"),
        Step(f"cutover: source read-only (the probers spool), copy what changed, verify, "
             f"then {switch_what}", cutover,
             "if it failed before the switch: the source is writable again and the probers "
             "replay their spools into it; if the switch itself failed half way, some probers "
             "may point at the target already",
             "run db.migrate-to again with --resume (the target is corrected, not rebuilt)"),
    ]
    notes = ["after the switch the source stays read-only (nothing can write to the database "
             "that was left); ALTER DATABASE … RESET default_transaction_read_only undoes it",
             "set the probers' database host in the inventory for good (prober_db_host), or "
             "the next converge points them back at the read-only source"]
    return Plan("db.migrate-to", facts=facts, steps=steps, notes=notes)
