"""The whole service in-process with an injected check function: alert path end to end, and
/health + /metrics while the database is down (its own PostgreSQL, stopped mid-run)."""

from __future__ import annotations

import asyncio
import io
import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from lighthouse.config import load
from lighthouse.db.migrate import migrate
from lighthouse.models import CheckResult, Monitor, Status
from lighthouse.service import Prober

from tests.integration.prober.conftest import add_channel, add_monitor, scalar
from tests.integration.prober.test_prober_alert_channels import Recorder
from tests.support.pgserver import PgServer


def config(dsn: str, tmp_path, **extra: str):
    env = {"LIGHTHOUSE_DATABASE__DSN": dsn, "LIGHTHOUSE_DATABASE__MAINTENANCE_INTERVAL_S": "0",
           "LIGHTHOUSE_STORAGE__SPOOL_DIR": str(tmp_path / "spool"),
           "LIGHTHOUSE_STORAGE__FLUSH_INTERVAL_S": "0.1",
           "LIGHTHOUSE_STORAGE__RETRY_INTERVAL_S": "0.3",
           "LIGHTHOUSE_DATABASE__CONNECT_TIMEOUT_S": "1",
           "LIGHTHOUSE_CHECKS__SSRF_ALLOW": "[127.0.0.1/32]", "LIGHTHOUSE_HTTP__PORT": "0",
           "LIGHTHOUSE_ALERTING__BACKOFF_S": "0.05", **extra}
    return load(None, env=env)


async def wait_until(pred, timeout: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await asyncio.to_thread(pred):
            return True
        await asyncio.sleep(0.05)
    return await asyncio.to_thread(pred)


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",  # noqa: S310
                                    timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_failures_raise_one_downtime_alert_then_recovery(lh_dsn, tmp_path):
    rec = Recorder()
    sid = add_monitor(lh_dsn, "checkout", {"url": "https://checkout.example/"})
    add_channel(lh_dsn, sid, "webhook", {"url": f"{rec.url}/hook"})
    outcomes = ["success"] * 2 + ["failure"] * 4 + ["success"] * 3
    seen: list[str] = []

    async def check(m: Monitor) -> CheckResult:
        st = outcomes[len(seen)] if len(seen) < len(outcomes) else "success"
        seen.append(st)
        return CheckResult(m.id, datetime.now(UTC), Status(st), latency_ms=5,
                           error_code=None if st == "success" else "status")

    async def main():
        prober = Prober(config(lh_dsn, tmp_path), check=check)
        await prober.start()
        # The real subscription row, run every second (intervals < 60 s exist only in tests).
        prober.scheduler.upsert(Monitor(sid, "checkout", "http",
                                        {"url": "https://checkout.example/"}, 1), run_now=True)
        assert await wait_until(lambda: len(seen) >= len(outcomes) and prober.dispatcher.sent
                                == 2 and not prober.dispatcher.pending)
        return await prober.stop()

    try:
        asyncio.run(main())
    finally:
        rec.close()
    kinds = rec.alert_types()
    assert kinds == ["downtime", "recovery"]  # one blip pages nobody; no repeats while down
    rows = scalar(lh_dsn, "SELECT array_agg(alert_type::text || ':' || delivery_status "
                          "ORDER BY time) FROM alert_history WHERE subscription_id = %s", (sid,))
    assert rows == ["downtime:sent", "recovery:sent"]
    flagged = scalar(lh_dsn, "SELECT count(*) FROM check_history WHERE subscription_id = %s "
                             "AND alert_triggered", (sid,))
    assert flagged == 2  # the 3rd failure and the 2nd success carried the alerts
    assert scalar(lh_dsn, "SELECT count(*) FROM check_history WHERE subscription_id = %s",
                  (sid,)) == len(seen)
    # one incident: from the first failing check to the check that completed the recovery
    with psycopg.connect(lh_dsn) as conn:
        incidents = conn.execute("SELECT started_at, ended_at, first_error_code FROM incidents "
                                 "WHERE subscription_id = %s", (sid,)).fetchall()
        times = [r[0] for r in conn.execute(
            "SELECT time FROM check_history WHERE subscription_id = %s ORDER BY time",
            (sid,)).fetchall()]
    assert incidents == [(times[2], times[7], "status")]


@pytest.fixture(scope="module")
def own_pg():
    server = PgServer.create()
    yield server
    server.destroy()


def test_health_and_metrics_while_the_database_is_down(own_pg, tmp_path):
    dsn = own_pg.create_database("svc_outage")
    migrate(dsn, out=io.StringIO())

    async def check(m: Monitor) -> CheckResult:
        return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS, latency_ms=1)

    async def main():
        prober = Prober(config(dsn, tmp_path), check=check)
        await prober.start()
        port = prober.http_port
        for i in range(20):
            prober.scheduler.upsert(Monitor(uuid.uuid4(), f"m{i}", "tcp", {}, 1))
        assert await wait_until(lambda: prober.writer.stats.inserted >= 40)
        code, body = await asyncio.to_thread(http_get, port, "/health")
        assert code == 200 and json.loads(body)["status"] == "ok"

        await asyncio.to_thread(own_pg.stop)
        assert await wait_until(lambda: prober.writer.spool.rows >= 40)
        code, body = await asyncio.to_thread(http_get, port, "/health")
        health = json.loads(body)
        assert code == 200 and health["status"] == "degraded"  # still probing, spooling
        assert health["database"]["reachable"] is False
        assert health["storage"]["spool_rows"] > 0 and health["storage"]["spool_lost"] == 0
        _, metrics = await asyncio.to_thread(http_get, port, "/metrics")
        assert "lighthouse_database_up 0.0" in metrics
        assert "lighthouse_spool_rows" in metrics
        code, _ = await asyncio.to_thread(http_get, port, "/")
        assert code == 503  # status page needs the database; says so instead of hanging

        await asyncio.to_thread(own_pg.start)
        assert await wait_until(lambda: prober.writer.db_ok and not prober.writer.spool)
        summary = await prober.stop()
        return prober.scheduler.completed, summary

    completed, summary = asyncio.run(main())
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM check_history").fetchone()[0]
    assert stored == completed and summary["spool_lost"] == 0 and summary["spool_rows"] == 0


def test_a_prober_started_while_the_database_is_down_checks_the_cached_monitors(own_pg,
                                                                                tmp_path):
    """Reboot of the prober host during a database outage: it must keep checking (from the
    monitor cache the last run wrote), spool, and hand everything over once the database is
    back — nothing lost."""
    from tests.integration.prober.conftest import add_monitor as add

    dsn = own_pg.create_database("svc_cache")
    migrate(dsn, out=io.StringIO())
    ids = {add(dsn, f"m{i}", {"host": "127.0.0.1", "port": 1}, type_="tcp") for i in range(60)}
    checked: list[uuid.UUID] = []

    async def check(m: Monitor) -> CheckResult:
        checked.append(m.id)
        return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS, latency_ms=1)

    cfg = config(dsn, tmp_path, LIGHTHOUSE_DATABASE__SCHEMA_WAIT_S="60")

    async def first_run():  # writes the cache from the database's set
        prober = Prober(cfg, check=check)
        await prober.start()
        assert prober.scheduler.monitor_count == 60
        await prober.stop()

    asyncio.run(first_run())
    cache = json.loads((tmp_path / "monitors.json").read_text())
    assert {uuid.UUID(m["id"]) for m in cache["monitors"]} == ids
    assert (tmp_path / "monitors.json").stat().st_mode & 0o777 == 0o600

    with psycopg.connect(dsn) as conn:
        before = conn.execute("SELECT count(*) FROM check_history").fetchone()[0]
    own_pg.stop()
    checked.clear()

    async def second_run():
        prober = Prober(cfg, check=check)
        started = asyncio.get_running_loop().time()
        await prober.start()  # must not wait schema_wait_s (60 s) for the database
        assert asyncio.get_running_loop().time() - started < 10
        assert prober.monitors_from == "cache" and prober.scheduler.monitor_count == 60
        # 60 monitors spread over 60 s: a few are due every second.
        assert await wait_until(lambda: len(checked) >= 5 and prober.writer.spool.rows >= 5)
        code, body = await asyncio.to_thread(http_get, prober.http_port, "/health")
        health = json.loads(body)
        assert health["status"] == "degraded"
        assert health["database"] == {**health["database"], "reachable": False,
                                      "monitors_from": "cache"}
        await asyncio.to_thread(own_pg.start)
        assert await wait_until(lambda: prober.monitors_from == "database"
                                and prober.source.listening and not prober.writer.spool)
        summary = await prober.stop()
        return prober.scheduler.completed, summary

    completed, summary = asyncio.run(second_run())
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM check_history").fetchone()[0]
    assert completed >= 5 and stored - before == completed  # every check of the outage is stored
    assert summary["spool_lost"] == 0 and summary["spool_rows"] == 0


def test_a_real_check_reaches_metrics_under_blackbox_names(lh_dsn, tmp_path):
    """Schema -> prober -> /metrics: a monitor in the database, checked for real against a local
    server, shows up as probe_* series a blackbox_exporter dashboard reads unchanged."""
    import http.server
    import threading

    from prometheus_client.parser import text_string_to_metric_families

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - stdlib naming
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            return

    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{target.server_address[1]}/"
    added = []

    async def main():
        prober = Prober(config(lh_dsn, tmp_path))
        await prober.start()
        try:
            assert await wait_until(lambda: prober.source.listening)
            # added at run time: checked at once (a monitor loaded at start waits for its slot)
            added.append(await asyncio.to_thread(add_monitor, lh_dsn, "local target",
                                                 {"url": url, "expected_status": [204]}))
            assert await wait_until(lambda: prober.scheduler.completed >= 1)
            _, text = await asyncio.to_thread(http_get, prober.http_port, "/metrics")
        finally:
            await prober.stop()
        return text

    try:
        text = asyncio.run(main())
    finally:
        target.shutdown()
    mid = added[0]
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("monitor_id") == str(mid):
                samples.setdefault(s.name, []).append(s)
    assert [s.value for s in samples["probe_success"]] == [1.0]
    assert samples["probe_success"][0].labels == {"monitor_id": str(mid),
                                                  "monitor": "local target", "type": "http"}
    assert [s.value for s in samples["probe_http_status_code"]] == [204.0]
    assert 0 < samples["probe_duration_seconds"][0].value < 5
    assert {s.labels["phase"] for s in samples["probe_http_duration_seconds"]} >= {"connect",
                                                                                   "ttfb"}
    assert "process_resident_memory_bytes" in text and "lighthouse_build_info{" in text


def test_a_maintenance_window_in_the_database_holds_the_alert_until_it_is_removed(lh_dsn,
                                                                                   tmp_path):
    """maintenance_windows row -> the prober's schedule -> the state machine: failures inside
    the window are checked and stored but page nobody; removing the window sends one alert."""
    from lighthouse import maintenance_windows as mw

    rec = Recorder()
    sid = add_monitor(lh_dsn, "db upgrade", {"url": "https://db.example/"})
    add_channel(lh_dsn, sid, "webhook", {"url": f"{rec.url}/hook"})
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        wid = mw.add(conn, sid, datetime.now(UTC) - timedelta(minutes=1),
                     datetime.now(UTC) + timedelta(hours=1), "PostgreSQL 17.7")
    seen: list[int] = []

    async def check(m: Monitor) -> CheckResult:
        seen.append(1)
        return CheckResult(m.id, datetime.now(UTC), Status.FAILURE, error_code="status")

    async def main():
        prober = Prober(config(lh_dsn, tmp_path), check=check)
        prober.maintenance.reload_s = 0.2
        await prober.start()
        assert await wait_until(lambda: prober.maintenance.windows)
        prober.scheduler.upsert(Monitor(sid, "db upgrade", "http", {"url": "https://db.example/"},
                                        1), run_now=True)
        assert await wait_until(lambda: len(seen) >= 5)
        held = (prober.dispatcher.sent, len(rec.requests), prober.live_states()[str(sid)])
        with psycopg.connect(lh_dsn, autocommit=True) as conn:
            mw.remove(conn, wid)
        assert await wait_until(lambda: prober.dispatcher.sent == 1 and not
                                prober.dispatcher.pending)
        await prober.stop()
        return held

    try:
        held = asyncio.run(main())
    finally:
        rec.close()
    assert held == (0, 0, "down")  # down, stored, and nobody paged during the window
    assert rec.alert_types() == ["downtime"]
    assert scalar(lh_dsn, "SELECT count(*) FROM check_history WHERE subscription_id = %s",
                  (sid,)) >= 5
    assert scalar(lh_dsn, "SELECT count(*) FROM incidents WHERE subscription_id = %s",
                  (sid,)) == 1  # the outage is a fact either way
