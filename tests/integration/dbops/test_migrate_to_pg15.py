"""`db.migrate-to` on PostgreSQL 15: a live move while a real `lighthouse run` writes to the
source; the cutover makes the source read-only (the prober spools), copies what changed,
verifies every table and switches the prober's DSN (here: its config rewritten and the process
restarted, as the prober role's handler does); the spool replays into the target."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest
from lighthouse.db.migrate import migrate
from lighthouse_ops.dbops.move import MoveError, Mover, tables
from psycopg.types.json import Jsonb

from tests.integration.prober.conftest import add_channel, add_monitor, scalar
from tests.integration.prober.test_prober_service_run import get, target  # noqa: F401
from tests.support.pgserver import free_port, wait_for

INTERVAL_S = 1


def seed_history(dsn: str, monitor: uuid.UUID, channel: uuid.UUID) -> None:
    """Three old days of checks (two locations), alerts, rollups, a packed day, an incident and
    a maintenance window: every kind of table the move copies holds rows."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for day in (3, 2, 1):
            for i in range(48):
                t = now - timedelta(days=day, minutes=30 * i)
                for loc in ("", "loc-b"):
                    conn.execute(
                        "INSERT INTO check_history (time, subscription_id, status, latency_ms,"
                        " http_status, timings, location) VALUES (%s, %s, %s, %s, 200, %s, %s)",
                        (t, monitor, "success" if i % 7 else "failure", 10 + i,
                         Jsonb({"total": 10.5 + i, "dns": 0.25}), loc))
            conn.execute(
                "INSERT INTO alert_history (time, subscription_id, alert_channel_id, "
                "channel_type, alert_type, severity, title, message, delivery_status) "
                "VALUES (%s, %s, %s, 'webhook', 'downtime', 'critical', 'down', 'it is down',"
                " 'sent')", (now - timedelta(days=day), monitor, channel))
        conn.execute("SELECT lh_rollup_hours(%s, %s)", (now - timedelta(days=4), now))
        three = (now - timedelta(days=3)).replace(hour=0)
        conn.execute("SELECT lh_pack_range(%s, %s)", (three, three + timedelta(days=1)))
        conn.execute("INSERT INTO incidents (subscription_id, started_at, ended_at, "
                     "first_error) VALUES (%s, %s, %s, 'seeded')",
                     (monitor, now - timedelta(days=2), now - timedelta(days=2, minutes=-5)))
        conn.execute("INSERT INTO maintenance_windows (subscription_id, starts_at, ends_at, "
                     "note) VALUES (%s, %s, %s, 'seeded')",
                     (monitor, now + timedelta(days=1), now + timedelta(days=1, hours=1)))


def write_config(path: Path, dsn: str, spool: Path, port: int) -> None:
    path.write_text(f"""
database:
  dsn: {dsn}
  maintenance_interval_s: 0
checks:
  ssrf_allow: [127.0.0.1/32]
storage:
  spool_dir: {spool}
  flush_interval_s: 0.2
  retry_interval_s: 0.5
http:
  port: {port}
""")


class Prober:
    """`lighthouse run` as a process; restart() is what the DSN switch does to it."""

    def __init__(self, tmp_path: Path, dsn: str) -> None:
        self.conf, self.spool, self.port = tmp_path / "prober.yaml", tmp_path / "spool", \
            free_port()
        self.log_path = tmp_path / "prober.log"
        write_config(self.conf, dsn, self.spool, self.port)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "lighthouse.cli", "-c",
                                      str(self.conf), "run"], stdout=log,
                                     stderr=subprocess.STDOUT)
        assert wait_for(lambda: get(f"http://127.0.0.1:{self.port}/health")[0] in (200, 503),
                        30), self.log()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def switch(self, dsn: str) -> None:
        self.stop()
        write_config(self.conf, dsn, self.spool, self.port)
        self.start()

    def spooled_rows(self) -> int:
        return sum(1 for p in self.spool.glob("*") if p.is_file() for _ in p.open("rb"))

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]


@pytest.fixture
def source_and_target(pg15, target):  # noqa: F811
    base, _ = target
    source = pg15.create_database(f"move_src_{uuid.uuid4().hex[:6]}")
    dest = pg15.create_database(f"move_dst_{uuid.uuid4().hex[:6]}")
    for db in (source, dest):  # 1 s monitors (the schema asks for 60 s): on both ends alike
        migrate(db, out=io.StringIO())
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("ALTER TABLE subscriptions DROP CONSTRAINT "
                         "subscriptions_check_interval_min")
    monitors = [add_monitor(source, f"m{i}", {"url": f"{base}/ok"}, interval=INTERVAL_S)
                for i in range(3)]
    channel = add_channel(source, monitors[0], "webhook", {"url": "https://example.invalid/x"})
    seed_history(source, monitors[0], channel)
    yield source, dest, monitors
    with psycopg.connect(pg15.dsn(), autocommit=True) as conn:
        for db in (source, dest):
            name = db.rsplit("/", 1)[1]
            conn.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


def _rows(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def test_a_live_move_loses_no_check_and_leaves_equal_copies(source_and_target, tmp_path):
    source, dest, monitors = source_and_target
    prober = Prober(tmp_path, source)
    prober.start()
    try:
        count = "SELECT count(*) FROM check_history WHERE time > now() - interval '1 hour'"
        assert wait_for(lambda: scalar(source, count) >= 6, 30), prober.log()
        lines: list[str] = []
        with psycopg.connect(source, autocommit=True) as conn:  # a table that is not ours
            conn.execute("CREATE TABLE someone_elses AS SELECT 1 AS x")
        mover = Mover(source, dest, say=lines.append)
        mover.prepare()
        assert "not copied (not part of the Lighthouse schema): someone_elses" in lines
        assert "someone_elses" not in mover._tables
        assert set(mover._tables) >= {"check_history", "check_history_packed", "incidents",
                                      "check_rollup_hourly", "alert_history", "subscriptions"}
        mover.bulk()
        # changes after the bulk copy: a late row in an old day, a renamed monitor
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("INSERT INTO check_history (time, subscription_id, status, location) "
                         "VALUES (now() - interval '2 days 3 minutes', %s, 'timeout', 'late')",
                         (monitors[1],))
            conn.execute("UPDATE subscriptions SET name = 'renamed' WHERE id = %s",
                         (monitors[2],))
        switched_at: list[float] = []

        def switch() -> None:
            # what Ansible's converge takes: long enough that results pile up in the spool
            assert wait_for(lambda: "spooling results" in prober.log(), 15), prober.log()
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), \
                    psycopg.connect(source) as conn:
                conn.execute("INSERT INTO users (display_name) VALUES ('nope')")
            prober.switch(dest)
            switched_at.append(time.time())

        report = mover.cutover(switch)
        assert report.read_only_s > 0 and report.days_copied >= 1
        # the cutover copied only what changed: today's rows, the late row's day, small tables
        assert report.bulk_rows > 300
        assert 0 < report.cutover_rows < report.bulk_rows / 2, report
        # the prober writes to the target now, its spool replayed there
        assert wait_for(lambda: prober.spooled_rows() == 0 and scalar(
            dest, "SELECT count(*) FROM check_history WHERE time > to_timestamp(%s)",
            (switched_at[0] + 2,)) >= 3, 30), prober.log()
        assert "spool segment replayed" in prober.log()
    finally:
        prober.stop()
    assert scalar(dest, "SELECT name FROM subscriptions WHERE id = %s", (monitors[2],)) == \
        "renamed"
    assert scalar(dest, "SELECT count(*) FROM check_history WHERE location = 'late'") == 1
    # everything the source holds is on the target, row for row
    theirs = _rows(source, "SELECT subscription_id, time, location FROM check_history")
    ours = set(_rows(dest, "SELECT subscription_id, time, location FROM check_history"))
    assert set(theirs) <= ours
    for table in ("check_history_packed", "check_rollup_hourly", "alert_history", "incidents",
                  "maintenance_windows", "alert_channels", "users"):
        q = f"SELECT * FROM {table} ORDER BY 1, 2"  # noqa: S608 - our own table names
        assert _rows(source, q) == _rows(dest, q), table
    assert scalar(dest, "SELECT count(*) FROM check_history_packed") > 0
    # no check lost: each live monitor has a result for (nearly) every second, the restart
    # of the prober the only gap (it checks nothing while it starts)
    for m in monitors:
        times = [r[0] for r in _rows(dest, f"SELECT time FROM check_history WHERE "  # noqa: S608
                                     f"subscription_id = '{m}' AND time > now() - "
                                     "interval '10 minutes' ORDER BY time")]
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        assert max(gaps) < 15, gaps
    # identity sequences continue past the copied rows
    with psycopg.connect(dest, autocommit=True) as conn:
        new_id = conn.execute("INSERT INTO incidents (subscription_id, started_at, ended_at) "
                              "VALUES (%s, now(), now()) RETURNING id",
                              (monitors[0],)).fetchone()[0]
    assert new_id > scalar(source, "SELECT max(id) FROM incidents")
    # the source stays read-only: nothing can write to the database that was left
    assert scalar(source, "SHOW default_transaction_read_only") == "on"
    print(f"\nmigrate-to: read-only {report.read_only_s:.1f}s (verify {report.verify_s:.2f}s, "
          f"switch {report.switch_s:.1f}s), {report.bulk_rows} rows copied live, "
          f"{report.cutover_rows} at cutover, "
          f"{report.days_copied} days, tables {json.dumps(report.tables)}")


def test_a_failed_switch_gives_the_source_back_writable(source_and_target):
    source, dest, _ = source_and_target
    mover = Mover(source, dest, say=lambda _: None)
    mover.prepare()
    mover.bulk()

    def switch() -> None:
        raise RuntimeError("ansible-playbook failed")

    with pytest.raises(RuntimeError, match="ansible-playbook failed"):
        mover.cutover(switch)
    assert scalar(source, "SHOW default_transaction_read_only") == "off"
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("INSERT INTO users (display_name) VALUES ('writable again')")


def test_a_target_with_data_of_its_own_is_refused(source_and_target):
    source, dest, _ = source_and_target
    with psycopg.connect(dest, autocommit=True) as conn:
        conn.execute("INSERT INTO users (display_name) VALUES ('someone else')")
    with pytest.raises(MoveError, match="the target already holds 1 rows"):
        Mover(source, dest, say=lambda _: None).prepare()
    assert scalar(dest, "SELECT count(*) FROM users") == 1  # untouched
    # a resumed move corrects the target instead
    mover = Mover(source, dest, say=lambda _: None, resume=True)
    mover.prepare()
    mover.bulk()
    mover.sync(["users"])
    assert mover.verify() == []


def test_unreachable_ends_and_a_newer_source_are_named(source_and_target):
    source, dest, _ = source_and_target
    with psycopg.connect(source, autocommit=True) as conn:  # a later release migrated it
        conn.execute("INSERT INTO schema_migrations (version, name, checksum, capability, "
                     "execution_ms) VALUES (999, 'future', 'x', 'vanilla', 0)")
    with pytest.raises(MoveError, match="source's schema is at version 999"):
        Mover(source, dest, say=lambda _: None).prepare()
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 999")
    with pytest.raises(MoveError, match="cannot connect"):
        Mover(source, "postgresql://x:y@127.0.0.1:1/none", say=lambda _: None).prepare()
    with psycopg.connect(source) as conn:
        assert "subscriptions" in tables(conn)


def test_the_task_shows_its_plan_and_asks_first(source_and_target, tmp_path):
    """Through invoke: -n shows the plan and changes nothing; without -y and a terminal it
    refuses before touching either end; a DSN without a TCP host needs --target-host."""
    import os

    source, dest, _ = source_and_target
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    prober:\n      hosts: {}\n")
    invoke = str(Path(sys.executable).with_name("invoke"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([invoke, "db.migrate-to", "--source", source, "--target", dest,
                               "--inventory", str(inventory), *args],
                              cwd=Path(__file__).resolve().parents[3], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=120,
                              env=dict(os.environ))

    shown = run("-n")
    assert shown.returncode == 0, shown.stderr
    for words in ("Plan for db.migrate-to", "bulk copy", "cutover: source read-only",
                  "point the probers at 127.0.0.1", "dry run"):
        assert words in shown.stdout, shown.stdout
    secret = psycopg.conninfo.conninfo_to_dict(source)["password"]
    assert secret not in shown.stdout + shown.stderr  # DSNs are shown without their password
    asked = run()
    assert asked.returncode != 0 and "--yes" in asked.stdout + asked.stderr
    assert scalar(dest, "SELECT count(*) FROM users") == 0
    assert scalar(source, "SHOW default_transaction_read_only") == "off"
    socket = subprocess.run([invoke, "db.migrate-to", "--source", source, "--target",
                             "host=/tmp dbname=x", "--inventory", str(inventory)],
                            cwd=Path(__file__).resolve().parents[3], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert socket.returncode != 0 and "--target-host" in socket.stderr
