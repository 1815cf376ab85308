"""A prober fleet on PostgreSQL 15: membership, one decision per verdict change however many
probers race, dead probers' views not counted, and four real probers (each its own pools,
writer thread and checks over HTTP to a local target) sharing monitors across three locations.

A location's "route" to the target is cut by the target itself: it answers 503 to the probers
whose User-Agent names a blocked location (checks.user_agent differs per prober). The sandbox
proof with network namespaces is tests/hosts' job; this one counts every row."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from lighthouse.alerting.state import Change, Health
from lighthouse.cli import main as cli_main
from lighthouse.db.migrate import migrate
from lighthouse.fleet.membership import Membership
from lighthouse.fleet.verdict import Verdicts, alert_for
from lighthouse.metrics import Metrics
from lighthouse.models import CheckResult, Monitor, Status
from lighthouse.service import Prober
from psycopg_pool import AsyncConnectionPool

from tests.integration.prober.conftest import add_channel, add_monitor, scalar, serve_web
from tests.integration.prober.test_prober_alert_channels import Recorder
from tests.integration.prober.test_prober_service_inprocess import config, wait_until
from tests.support.pgserver import PgServer

LEASE = 3.0


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - a loopback test server
        return r.read().decode()


def get_json(url: str) -> dict:
    return json.loads(get_text(url))


async def _member(dsn: str, name: str, location: str,
                  flap_max_transitions: int = 100) -> tuple[Membership, Verdicts]:
    """A member and its Verdicts (flap damping out of the way unless a test asks for it)."""
    pool = AsyncConnectionPool(dsn, min_size=0, max_size=2, open=False, timeout=2,
                               kwargs={"autocommit": True})
    await pool.open(wait=False)
    m = Membership(pool, name, location, LEASE, Metrics())
    v = Verdicts(pool, m, Metrics(), on_decision=lambda d: None, monitor=lambda _: None,
                 flap_window_s=600, flap_max_transitions=flap_max_transitions)
    return m, v


def _change(monitor: Monitor, health: Health) -> Change:
    now = datetime.now(UTC)
    bad = (CheckResult(monitor.id, now, Status.ERROR, error_code="refused",
                       error_message="connection refused") if health is Health.DOWN else None)
    return Change(monitor.id, health, now, bad, monitor)


def test_racing_probers_make_each_change_once_and_dead_views_do_not_vote(lh_dsn, monkeypatch,
                                                                        capsys):
    sid = add_monitor(lh_dsn, "raced", {"url": "https://x.example/"})
    monitor = Monitor(sid, "raced", "http", {"url": "https://x.example/"}, 60)

    async def main():
        fleet = [await _member(lh_dsn, f"p-{loc}", loc) for loc in ("a", "b", "c")]
        for m, _ in fleet:
            await m.beat()
        for m, _ in fleet:  # everyone sees everyone
            assert (await m.beat()).locations == ("a", "b", "c")
        notified = []
        for health in [Health.UP] + [Health.DOWN, Health.UP] * 7:
            decisions = await asyncio.gather(*(v.decide(monitor, _change(monitor, health))
                                               for _, v in fleet))
            notified.append(sum(d.notify for d in decisions))
            # the second report reaches the quorum; the third sees the verdict already made
            assert sorted(d.changed for d in decisions) == [False, False, True]
            assert scalar(lh_dsn, "SELECT health FROM monitor_verdicts") == str(health)
        # the first "up" from unknown is silent; after it, exactly one alert per change
        assert notified == [0] + [1] * 14
        # one location down: degraded, no alert, still up
        d = await fleet[2][1].decide(monitor, _change(monitor, Health.DOWN))
        assert (d.health, d.degraded, d.notify, d.down) == (Health.UP, True, False, ("c",))
        # c dies (heartbeat far older than its lease): its "down" is no vote any more
        with psycopg.connect(lh_dsn, autocommit=True) as conn:
            conn.execute("UPDATE probers SET heartbeat_at = now() - interval '1 hour' "
                         "WHERE name = 'p-c'")
        d = await fleet[1][1].decide(monitor, _change(monitor, Health.DOWN))
        assert (d.health, d.down, d.notify) == (Health.UP, ("b",), False)
        assert (await fleet[0][0].beat()).locations == ("a", "b")
        await fleet[1][0].leave()  # a clean stop removes the row at once
        assert (await fleet[0][0].beat()).locations == ("a",)
        for m, _ in fleet:
            await m.pool.close()

    asyncio.run(main())
    assert scalar(lh_dsn, "SELECT health || '/' || notified FROM monitor_verdicts "
                          "WHERE subscription_id = %s", (sid,)) == "up/up"
    # what an operator sees: who is live, who is dead, what the fleet sees failing
    monkeypatch.setenv("LIGHTHOUSE_DATABASE__DSN", lh_dsn)
    capsys.readouterr()
    assert cli_main(["fleet", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["location"], m["live"]) for m in doc["probers"]] == [
        ("p-a", "a", True), ("p-c", "c", False)]  # p-b stopped cleanly: gone
    assert [(t["name"], t["state"], t["locations_down"]) for t in doc["troubled"]] == [
        ("raced", "degraded", ["b"])]
    assert cli_main(["fleet"]) == 0
    text = capsys.readouterr().out
    assert "p-c" in text and "DEAD" in text and "DEGRADED raced: down from b; up from a" in text


def test_a_flapping_verdict_holds_its_alerts_until_it_calms_down(lh_dsn):
    """The combined verdict has the local state machine's flap damping: more changes than
    flap_max_transitions (2 here) within the window and no prober alerts; once the changes
    are older than the window, the next re-decision (the sweep's) sends the current state
    once, if it differs from the last one sent."""
    sid = add_monitor(lh_dsn, "flappy", {"url": "https://x.example/"})
    monitor = Monitor(sid, "flappy", "http", {"url": "https://x.example/"}, 60)

    async def main() -> tuple[list[tuple[str, bool, bool]], list[tuple[str, bool, bool]]]:
        fleet = [await _member(lh_dsn, f"f-{loc}", loc, flap_max_transitions=2)
                 for loc in ("a", "b", "c")]
        for _ in range(2):
            for m, _ in fleet:
                await m.beat()
        seen = []
        for health in [Health.UP] + [Health.DOWN, Health.UP] * 2 + [Health.DOWN]:
            decisions = await asyncio.gather(*(v.decide(monitor, _change(monitor, health))
                                               for _, v in fleet))
            changed = next(d for d in decisions if d.changed)
            seen.append((str(changed.health), any(d.notify for d in decisions),
                         changed.flapping))
        # calm: the changes fall out of the window; the sweep's re-decision (no report)
        with psycopg.connect(lh_dsn, autocommit=True) as conn:
            conn.execute("UPDATE monitor_verdicts SET transitions = (SELECT array_agg("
                         "t - interval '1 hour') FROM unnest(transitions) t) "
                         "WHERE subscription_id = %s", (sid,))
        after = []
        for _ in range(2):
            d = await fleet[0][1].decide(monitor, None)
            after.append((str(d.health), d.notify, d.flapping))
        for m, _ in fleet:
            await m.pool.close()
        return seen, after

    seen, after = asyncio.run(main())
    assert seen == [("up", False, False),  # unknown -> up: silent, not a change
                    ("down", True, False), ("up", True, False),  # changes 1 and 2: alerted
                    ("down", False, True), ("up", False, True),  # 3 and 4: flapping, held
                    ("down", False, True)]  # 5: still held (last alert sent: up)
    assert after == [("down", True, False),  # calm: the current state, once
                     ("down", False, False)]
    assert scalar(lh_dsn, "SELECT health || '/' || notified FROM monitor_verdicts "
                          "WHERE subscription_id = %s", (sid,)) == "down/down"


class Target:
    """200 to every prober except those whose User-Agent names a blocked location."""

    def __init__(self) -> None:
        self.blocked: set[str] = set()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                return

            def do_GET(self):  # noqa: N802
                loc = self.headers.get("user-agent", "").rpartition("/")[2]
                code = 503 if loc in target.blocked else 200
                self.send_response(code)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _prober(dsn, tmp_path, name: str, location: str) -> Prober:
    return Prober(config(
        dsn, tmp_path / name, LIGHTHOUSE_FLEET__ENABLED="true", LIGHTHOUSE_FLEET__NAME=name,
        LIGHTHOUSE_FLEET__LOCATION=location, LIGHTHOUSE_FLEET__LEASE_S=str(LEASE),
        LIGHTHOUSE_CHECKS__USER_AGENT=f"lighthouse-prober/{location}",
        LIGHTHOUSE_HTTP__ENABLED="false", LIGHTHOUSE_ALERTING__FAILURE_THRESHOLD="2",
        LIGHTHOUSE_ALERTING__SUCCESS_THRESHOLD="2"))


def _rows(dsn: str) -> list[tuple[uuid.UUID, str, float]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT subscription_id, location, extract(epoch FROM time)::float8"
                            " FROM check_history ORDER BY 1, 2, 3").fetchall()


def _gaps(rows, windows: list[tuple[float, float]], start: float, end: float):
    """Per (monitor, location): doubled checks (< 0.5 interval apart) and lost ones (a gap of
    more than 1.5 intervals), split into inside and outside the change windows."""
    series: dict[tuple, list[float]] = defaultdict(list)
    for sid, loc, t in rows:
        series[sid, loc].append(t)
    out = {"dup_in": 0, "dup_out": 0, "lost_in": 0, "lost_out": 0}
    for times in series.values():
        for t0, t1 in zip(times, times[1:], strict=False):
            if t1 < start or t0 > end:
                continue
            inside = any(lo <= t1 and t0 <= hi for lo, hi in windows)
            if t1 - t0 < 0.5:
                out["dup_in" if inside else "dup_out"] += 1
            elif t1 - t0 > 1.5:
                out["lost_in" if inside else "lost_out"] += int(round(t1 - t0)) - 1
    return out


def test_four_probers_three_locations_one_verdict_one_alert(lh_dsn, tmp_path):
    with psycopg.connect(lh_dsn, autocommit=True) as conn:  # 1 s checks exist only in tests
        conn.execute("ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_check_interval_min")
    target, rec = Target(), Recorder()
    ids = [add_monitor(lh_dsn, f"m{i}", {"url": target.url}, interval=1) for i in range(8)]
    for sid in ids:
        add_channel(lh_dsn, sid, "webhook", {"url": f"{rec.url}/hook"})

    def verdicts(sql: str) -> int:
        return scalar(lh_dsn, f"SELECT count(*) FROM monitor_verdicts WHERE {sql}")

    def alerts(kind: str) -> int:
        return rec.alert_types().count(kind)

    def visit(mid: uuid.UUID) -> tuple[dict, dict, str]:
        with serve_web(lh_dsn) as base:
            return (get_json(f"{base}/api/v1/status"), get_json(f"{base}/api/v1/monitors/{mid}"),
                    get_text(f"{base}/monitors/{mid}"))

    async def main():
        loop = asyncio.get_running_loop()
        probers = {n: _prober(lh_dsn, tmp_path, n, n[0]) for n in ("a1", "b1", "c1")}
        for p in probers.values():
            await p.start()
        start = loop.time()
        assert await wait_until(lambda: verdicts("health = 'up'") == 8, 20)
        assert all(p.scheduler.monitor_count == 8 for p in probers.values())

        target.blocked = {"c"}  # one location of three: degraded, nobody paged
        assert await wait_until(lambda: verdicts("locations_down = '{c}'") == 8, 15)
        await asyncio.sleep(1.5)
        assert verdicts("health = 'up'") == 8 and not rec.requests
        # what visitors see: degraded, per location (the web server off the probers' loop)
        status, one, page = await asyncio.to_thread(visit, ids[0])
        assert (status["overall"], status["degraded"], status["down"]) == ("degraded", 8, 0)
        assert {m["state"] for m in status["monitors"]} == {"degraded"}
        assert one["state"] == "degraded"
        assert {loc["location"]: loc["state"] for loc in one["locations"]} == {
            "a": "up", "b": "up", "c": "down"}
        assert all(loc["checks_24h"] > 0 and loc["latency_ms_24h"]["p95"] is not None
                   for loc in one["locations"])
        assert {c["location"] for c in one["recent_checks"]} == {"a", "b", "c"}
        assert 'id="locations"' in page and "degraded" in page

        target.blocked = {"b", "c"}  # two of three: exactly one alert per monitor
        assert await wait_until(lambda: alerts("downtime") >= 8, 15)
        await asyncio.sleep(2.5)
        assert alerts("downtime") == 8 and verdicts("health = 'down'") == 8

        target.blocked = set()
        assert await wait_until(lambda: alerts("recovery") >= 8, 15)
        await asyncio.sleep(2.5)
        assert alerts("recovery") == 8 and verdicts("locations_down = '{}'") == 8

        joined = loop.time()  # a second prober in location a: ownership splits
        probers["a2"] = _prober(lh_dsn, tmp_path, "a2", "a")
        await probers["a2"].start()
        a1, a2 = probers["a1"], probers["a2"]
        assert await wait_until(lambda: a1.scheduler.monitor_count + a2.scheduler.monitor_count
                                == 8 and a2.scheduler.monitor_count > 0, 10)
        join_s = loop.time() - joined
        await asyncio.sleep(3)

        async def crashed() -> None:  # no goodbye: the others wait out the lease
            return None

        a1.fleet.leave = crashed
        crash = loop.time()
        await a1.stop()
        assert await wait_until(lambda: a2.scheduler.monitor_count == 8, 3 * LEASE)
        takeover_s = loop.time() - crash
        await asyncio.sleep(3)
        end = loop.time()
        for name, p in probers.items():
            if name != "a1":
                await p.stop()
        return start, joined, join_s, crash, takeover_s, end

    try:
        start, joined, join_s, crash, takeover_s, end = asyncio.run(main())
    finally:
        target.close()
        rec.close()
    assert takeover_s <= LEASE + LEASE / 3 + 3.0  # the lease, one heartbeat, a reload, a stop
    # One alert per change in alert_history too, and one incident per monitor.
    assert scalar(lh_dsn, "SELECT count(*) FROM alert_history WHERE alert_type = 'downtime'") == 8
    assert scalar(lh_dsn, "SELECT count(*) FROM incidents WHERE ended_at IS NOT NULL") == 8
    # Every monitor checked once per slot per location, outside the two change windows.
    offset = _epoch_offset()
    windows = [(joined + offset - 1, joined + offset + join_s + 1.5),
               (crash + offset - 1, crash + offset + takeover_s + 1.5)]
    counts = _gaps(_rows(lh_dsn), windows, start + offset + 2, end + offset - 1)
    print(f"fleet: join moved ownership in {join_s:.2f} s, takeover after a crash "
          f"{takeover_s:.2f} s; {counts}")
    assert counts["dup_out"] == 0 and counts["lost_out"] == 0, counts
    assert counts["dup_in"] <= 8 * 3 and counts["lost_in"] <= 8 * (LEASE + 3)


def _epoch_offset() -> float:
    """loop.time() (monotonic) to epoch seconds."""
    return time.time() - time.monotonic()


@pytest.fixture(scope="module")
def own_pg():
    server = PgServer.create()
    yield server
    server.destroy()


def test_database_outage_alerts_from_this_location_then_the_fleet_corrects_it(own_pg):
    """Database away longer than the lease: a location's "down" is paged from its own view
    (rather than not at all); back, its view is reported, and since the fleet says up (the
    other location disagrees) one recovery follows. Nothing is sent twice."""
    dsn = own_pg.create_database("fleet_outage")
    migrate(dsn, out=io.StringIO())
    sid = add_monitor(dsn, "outage", {"url": "https://x.example/"})
    monitor = Monitor(sid, "outage", "http", {"url": "https://x.example/"}, 60)
    sent: list[tuple[str, str]] = []

    async def main():
        (ma, _), (mb, vb) = [await _member(dsn, f"p-{loc}", loc) for loc in ("a", "b")]
        va = Verdicts(ma.pool, ma, Metrics(), monitor=lambda _: None, retry_s=0.2,
                      on_decision=lambda d: d.notify and sent.append(
                          (str(d.health), alert_for(d).message)))
        for m in (ma, mb, ma):
            await m.beat()
        for v in (va, vb):
            await v.decide(monitor, _change(monitor, Health.UP))
        task = asyncio.create_task(va.run())
        try:
            await asyncio.to_thread(own_pg.stop)
            va.report(_change(monitor, Health.DOWN))
            await asyncio.sleep(LEASE + 2.5)  # the lease passes: paged from a's view alone
            assert [h for h, _ in sent] == ["down"] and va.pending == 1
            assert "from 1 of 1 locations (a; quorum 1)" in sent[0][1]
            await asyncio.to_thread(own_pg.start)
            for m in (mb, ma):  # both still live once the database is back
                for _ in range(3):  # the first use of a pooled connection may find it dead
                    with contextlib.suppress(psycopg.OperationalError):
                        await m.beat()
                        break
            for _ in range(100):
                if not va.pending:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
        finally:
            va.stop()
            await asyncio.wait_for(task, 10)
            for m in (ma, mb):
                await m.pool.close()

    asyncio.run(main())
    assert [h for h, _ in sent] == ["down", "up"]  # the fleet's word closes our page
    assert scalar(dsn, "SELECT health FROM monitor_verdicts") == "up"
    assert scalar(dsn, "SELECT health FROM location_verdicts WHERE location = 'a'") == "down"
