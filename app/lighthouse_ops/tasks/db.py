"""invoke tasks: db (see tasks.py).

The DSN comes from --dsn, else $LIGHTHOUSE_DATABASE__DSN, else $DATABASE_URL.
Task bodies only parse arguments and print; the work is in lighthouse.db.
"""

from __future__ import annotations

import logging
import os
import sys

from lighthouse_ops.tasks.flags import runbook as task

DSN_ENV = ("LIGHTHOUSE_DATABASE__DSN", "DATABASE_URL")


def resolve_dsn(dsn: str | None) -> str:
    if dsn:
        return dsn
    for name in DSN_ENV:
        if os.environ.get(name):
            return os.environ[name]
    sys.exit(f"no database: pass --dsn or set {' or '.join(DSN_ENV)}")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@task(help={"dsn": "PostgreSQL DSN (default: $LIGHTHOUSE_DATABASE__DSN or $DATABASE_URL)",
            "dry_run": "print the SQL that would run, change nothing",
            "capability": "force timescale|apache|vanilla for a new schema (default: detect)"})
def migrate(c, dsn=None, dry_run=False, capability=None):
    """Apply pending schema migrations (advisory-locked, checksummed, one transaction each)."""
    from lighthouse.db import DatabaseError
    from lighthouse.db.migrate import migrate as run_migrate

    _logging()
    try:
        done = run_migrate(resolve_dsn(dsn), dry_run=dry_run, capability=capability)
    except DatabaseError as e:
        sys.exit(f"db.migrate: {e}")
    verb = "would apply" if dry_run else "applied"
    print(f"{verb} {len(done)} migration(s): {', '.join(m.label for m in done) or '-'}")


@task(help={"dsn": "PostgreSQL DSN (default: $LIGHTHOUSE_DATABASE__DSN or $DATABASE_URL)"})
def status(c, dsn=None):
    """Show schema version, capability level, pending migrations and maintenance state."""
    from lighthouse.db import DatabaseError
    from lighthouse.db.maintenance import describe

    try:
        for key, value in describe(resolve_dsn(dsn)).items():
            print(f"{key:24} {value}")
    except DatabaseError as e:
        sys.exit(f"db.status: {e}")


@task(help={"dsn": "PostgreSQL DSN (default: $LIGHTHOUSE_DATABASE__DSN or $DATABASE_URL)",
            "dry_run": "show what retention would drop, change nothing",
            "yes": "drop expired partitions/chunks without asking"})
def maintain(c, dsn=None, dry_run=False, yes=False):
    """Partitions ahead, retention (drop_chunks / old partitions), rollup refresh."""
    from lighthouse.db import DatabaseError
    from lighthouse.db.maintenance import run_maintenance

    from lighthouse_ops.backup.plan import Aborted, Plan

    _logging()
    dsn = resolve_dsn(dsn)
    try:
        preview = run_maintenance(dsn, dry_run=True)
        doomed = preview.get("dropped")
        if isinstance(doomed, list) and doomed:  # retention deletes history: ask first
            plan = Plan(f"drop {len(doomed)} expired partition(s)/chunk(s), then refresh rollups")
            for name in doomed:
                plan.add(f"drop {name}")
            go = plan.approve(yes=yes, dry_run=dry_run)
        else:
            go = not dry_run
        report = run_maintenance(dsn) if go else preview
    except Aborted as e:
        sys.exit(f"db.maintain: {e}")
    except DatabaseError as e:
        sys.exit(f"db.maintain: {e}")
    for key, value in report.items():
        print(f"{key:24} {value}")


@task(help={"dsn": "PostgreSQL DSN (default: $LIGHTHOUSE_DATABASE__DSN or $DATABASE_URL)",
            "older_than_days": "pack whole UTC days of raw checks older than this (default 2, "
                               "at least 1; only days already rolled up)",
            "max_days": "stop after this many days (default: all; run again to carry on)",
            "dry_run": "show the days, their checks and sizes, change nothing",
            "yes": "pack without asking"})
def compact(c, dsn=None, older_than_days=2.0, max_days=None, dry_run=False, yes=False):
    """Pack old raw history into one row per monitor-hour (each day its own transaction)."""
    from datetime import timedelta

    from lighthouse.db import Capability, DatabaseError
    from lighthouse.db.compaction import bytes_per_check
    from lighthouse.db.compaction import compact as run_compact
    from lighthouse.db.connect import connect
    from lighthouse.db.maintenance import schema_capability

    from lighthouse_ops.backup.plan import Aborted, Plan

    _logging()
    age, limit = timedelta(days=float(older_than_days)), None if max_days is None else int(max_days)
    try:
        with connect(resolve_dsn(dsn), application_name="lighthouse-compact") as conn:
            level = schema_capability(conn)
            if level is Capability.TIMESCALE:  # the database compresses: only its age is set
                print(run_compact(conn, level, age, dry_run=dry_run)["compaction"])
                return
            preview = run_compact(conn, level, age, max_days=limit, dry_run=True)
            days = preview.get("compaction_plan", [])
            if not days:
                print(preview.get("compaction") or "nothing to pack")
                return
            plan = Plan(f"pack {len(days)} day(s), {preview['compaction_checks']} checks")
            for line in days:
                plan.add(line)
            if not plan.approve(yes=yes, dry_run=dry_run):
                return
            report = run_compact(conn, level, age, max_days=limit)
            print(f"packed {report['compacted_checks']} checks; "
                  f"{report['compaction_left']} day(s) left")
            print("bytes per check: " + ", ".join(
                f"{k} {v}" for k, v in bytes_per_check(conn, level).items()))
    except (Aborted, ValueError) as e:
        sys.exit(f"db.compact: {e}")
    except DatabaseError as e:
        sys.exit(f"db.compact: {e}")


# -- runbooks engineer: db.tune and db.diagnose go below this line --


@task(help={"dsn": "PostgreSQL DSN of a superuser (default: $LIGHTHOUSE_DATABASE__DSN)",
            "ram": "host RAM, e.g. 2GB (default: read from the database host's /proc)",
            "cpus": "host CPUs (default: read from the database host)",
            "max_connections": "max_connections the rules assume (default: the server's own)",
            "dry_run": "show current vs wanted, change nothing",
            "yes": "do not ask for confirmation"})
def tune(c, dsn=None, ram=None, cpus=None, max_connections=None, dry_run=False, yes=False):
    """Compare the server with the tuning rules the role uses; fix what the role does not own."""
    import psycopg

    from lighthouse_ops.backup.plan import Aborted, Plan
    from lighthouse_ops.dbops import tune as t

    dsn = resolve_dsn(dsn)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            facts = t.host_facts(conn) if ram is None or cpus is None else None
            host = t.HostFacts(
                int(t.to_base(ram, None)) if ram else facts.ram_bytes,
                int(cpus) if cpus else facts.cpus)
            conns, workers = t.server_inputs(conn)
            changes = t.plan_changes(conn, t.recommend(
                host, max_connections=int(max_connections or conns), background_workers=workers))
        todo = [x for x in changes if x.state == "planned"]
        plan = Plan(f"ALTER SYSTEM for {len(todo)} setting(s), then pg_reload_conf()")
        for x in todo:
            what = (f"RESET (the role's file gives {x.expect})" if x.action == "reset"
                    else f"{x.current} -> {x.wanted}")
            plan.add(f"{x.name}: {what} ({'needs restart' if x.needs_restart else 'reload'})")
        print(t.render(host, changes))
        if todo and plan.approve(yes=yes, dry_run=dry_run):
            t.apply_changes(dsn, changes)
            print(t.render(host, changes))
    except (Aborted, PermissionError, ValueError, psycopg.Error) as e:
        sys.exit(f"db.tune: {e}")
    if not todo:
        print("db.tune: nothing to change" + (
            " (the timescaledb role's file owns these settings)" if t.manages(changes) else ""))


@task(help={"dsn": "PostgreSQL DSN (default: $LIGHTHOUSE_DATABASE__DSN)",
            "top": "rows per section (default 10)"})
def diagnose(c, dsn=None, top=10):
    """One report: rollup lag, slow statements, seq scans, compression, disk, connections, WAL."""
    import psycopg

    from lighthouse_ops.dbops.diagnose import diagnose as run_diagnose

    try:
        report = run_diagnose(resolve_dsn(dsn), top=int(top))
    except psycopg.Error as e:
        sys.exit(f"db.diagnose: cannot connect: {e}")
    print(report.render())


# ---- architecture C: the Patroni cluster (lighthouse_ops.ha.patroni, docs/ha.md) ----------

HA_HELP = {"inventory": "inventory whose db group is the cluster (default: $LIGHTHOUSE_INVENTORY "
                        "or the local sandbox's)"}


def _cluster(inventory):
    from lighthouse_ops.backup.runbook import RunbookError, inventory_path
    from lighthouse_ops.ha.patroni import Cluster

    try:
        return Cluster.from_inventory(inventory_path(inventory))
    except (RunbookError, OSError) as exc:
        sys.exit(f"db: {exc}")


def _run_ha(name, make_plan, dry_run, yes):
    from lighthouse_ops.aws.runbook import (
        RunbookAborted,
        RunbookFailed,
        RunbookRefused,
        TerminalConsole,
        execute,
    )
    from lighthouse_ops.backup.remote import RemoteError
    from lighthouse_ops.ha.patroni import HaError

    _logging()
    try:
        execute(make_plan(), TerminalConsole(), dry_run=dry_run, yes=yes)
    except RunbookRefused as exc:
        sys.exit(f"{name}: refused, nothing changed: {exc}")
    except (RunbookAborted, RunbookFailed, HaError, RemoteError) as exc:
        sys.exit(f"{name}: {exc}")


@task(help=HA_HELP)
def cluster(c, inventory=None):
    """Show the Patroni cluster's members: leader, replicas, state, timeline, lag."""
    from lighthouse_ops.backup.remote import RemoteError
    from lighthouse_ops.ha.patroni import HaError

    try:
        for m in _cluster(inventory).members():
            print(m.line())
    except (HaError, RemoteError) as exc:
        sys.exit(f"db.cluster: {exc}")


@task(help={**HA_HELP, "to": "member to hand the leader role to (default: the streaming "
                               "replica with least lag)",
            "max_lag_mb": "refuse a candidate further behind than this (default 1)",
            "dry_run": "show the members and the plan, change nothing",
            "yes": "switch over without asking"})
def switchover(c, inventory=None, to=None, max_lag_mb=1, dry_run=False, yes=False):
    """Planned leader change: writes pause for a few seconds, no data is lost."""
    from lighthouse_ops.ha.patroni import plan_switchover

    cl = _cluster(inventory)
    _run_ha("db.switchover", lambda: plan_switchover(cl, to, max_lag_mb=int(max_lag_mb)),
            dry_run, yes)


@task(help={**HA_HELP, "kill": "node (Patroni and PostgreSQL together, as a crash) or postgres "
                                 "(the postmaster only); default node",
            "no_rejoin": "leave the killed member down afterwards (default: start it again "
                         "and wait until it streams)",
            "dry_run": "show the members and the plan, change nothing",
            "yes": "kill without asking"})
def failover_drill(c, inventory=None, kill="node", no_rejoin=False, dry_run=False, yes=False):
    """Kill the leader and time the way back: new writable leader, old one rejoining."""
    from lighthouse_ops.ha.patroni import plan_failover_drill

    cl = _cluster(inventory)
    _run_ha("db.failover-drill",
            lambda: plan_failover_drill(cl, kill, rejoin=not no_rejoin)[0], dry_run, yes)


# ---- moving the database to another server (lighthouse_ops.dbops.move) -------------------

@task(help={"source": "DSN of the database now in use (its owner or a superuser)",
            "target": "DSN of the new database (superuser or rds_superuser; empty, or an "
                      "earlier run's copy with --resume)",
            "inventory": "inventory of the probers to switch (default: $LIGHTHOUSE_INVENTORY or "
                         "the local sandbox's)",
            "target_host": "address the probers reach the target at (default: the target "
                           "DSN's host)",
            "target_ca_file": "PEM the probers verify the target with (e.g. the RDS CA "
                              "bundle; default: keep theirs)",
            "resume": "the target holds an earlier run's copy: correct it instead of refusing",
            "dry_run": "show the plan, change nothing",
            "yes": "move without asking"})
def migrate_to(c, source=None, target=None, inventory=None, target_host=None,
               target_ca_file=None, resume=False, dry_run=False, yes=False):
    """Move the live database to another server (RDS, a vanilla PostgreSQL): bulk copy, a
    short read-only cutover while the probers spool, verify, switch the probers via Ansible."""
    from pathlib import Path

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from lighthouse_ops.aws.runbook import (
        RunbookAborted,
        RunbookFailed,
        RunbookRefused,
        TerminalConsole,
        execute,
    )
    from lighthouse_ops.backup.runbook import RunbookError, inventory_path
    from lighthouse_ops.dbops.move import MoveError, Mover, plan_move
    from lighthouse_ops.deploy.ansible_run import run_playbook

    if not source or not target:
        sys.exit("db.migrate-to: pass --source DSN and --target DSN")
    try:
        inv = inventory_path(inventory)
        params = conninfo_to_dict(target)
    except (RunbookError, psycopg.ProgrammingError) as exc:  # a DSN libpq cannot parse
        sys.exit(f"db.migrate-to: {exc}")
    host = target_host or params.get("host")
    if not host or str(host).startswith("/"):
        sys.exit("db.migrate-to: pass --target-host: the target DSN names no TCP host the "
                 "probers could reach")
    extra = {"prober_db_host": host, "prober_db_hosts": [host],
             "prober_db_port": int(params.get("port") or 5432),
             "prober_run_migrations": False}  # the move applied them already
    if target_ca_file:
        try:
            extra["prober_db_ca_cert"] = Path(target_ca_file).read_text()
        except OSError as exc:
            sys.exit(f"db.migrate-to: --target-ca-file: {exc}")

    if not dry_run:  # the probers' release (its wheel digest names the venv they run now)
        from lighthouse_ops.deploy import build_release

        extra.update(build_release().ansible_vars())

    def switch() -> None:
        result = run_playbook("prober.yml", inv, extra, echo=False)
        if not result.ok:
            raise MoveError("the probers' converge failed:\n" + result.output[-2000:])

    _logging()
    mover = Mover(source, target, resume=resume)
    try:
        execute(plan_move(mover, switch, f"point the probers at {host} (prober.yml on {inv})"),
                TerminalConsole(), dry_run=dry_run, yes=yes)
    except RunbookRefused as exc:
        sys.exit(f"db.migrate-to: refused, nothing changed: {exc}")
    except (RunbookAborted, RunbookFailed, MoveError) as exc:
        sys.exit(f"db.migrate-to: {exc}")


@task(help={**HA_HELP, "dry_run": "show the members, their package versions and the plan",
            "yes": "upgrade without asking"})
def rolling_upgrade(c, inventory=None, dry_run=False, yes=False):
    """Minor upgrades of PostgreSQL + TimescaleDB on the cluster: replicas first, a switchover,
    then the old leader; the probers see only the switchover's pause (their spool)."""
    from lighthouse_ops.ha.patroni import plan_rolling_upgrade

    cl = _cluster(inventory)
    _run_ha("db.rolling-upgrade", lambda: plan_rolling_upgrade(cl), dry_run, yes)
