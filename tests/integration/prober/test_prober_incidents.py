"""Incidents in PostgreSQL 15: one open incident per monitor however many probers record the
same outage, a restart mid-outage converges, changes wait out a database outage, notes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from lighthouse import incidents
from lighthouse.alerting.state import Change, Health
from lighthouse.incidents import IncidentLog
from lighthouse.models import CheckResult, Status
from psycopg_pool import AsyncConnectionPool

from tests.integration.prober.conftest import add_monitor

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def down(sid: uuid.UUID, at: datetime, code: str = "refused") -> Change:
    bad = CheckResult(sid, at, Status.FAILURE, error_code=code, error_message=f"{code} at {at}")
    return Change(sid, Health.DOWN, at, bad)


def up(sid: uuid.UUID, at: datetime) -> Change:
    return Change(sid, Health.UP, at)


def rows(dsn: str, sid: uuid.UUID) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT started_at, ended_at, first_error_code FROM incidents "
                            "WHERE subscription_id = %s ORDER BY started_at", (sid,)).fetchall()


async def _pool(dsn: str, **kw) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(dsn, min_size=0, max_size=3, open=False, timeout=2, **kw)
    await pool.open(wait=False)
    return pool


def test_three_probers_recording_the_same_outage_make_one_incident(lh_dsn):
    sid = add_monitor(lh_dsn, "shared", {"url": "https://x.example/"})

    async def main():
        pools = [await _pool(lh_dsn) for _ in range(3)]
        logs = [IncidentLog(p) for p in pools]
        for i, log in enumerate(logs):  # each saw the outage start a little differently
            log.record(down(sid, T0 + timedelta(seconds=i)))
        assert all(await asyncio.gather(*(log.flush() for log in logs)))
        for log in logs:
            log.record(up(sid, T0 + timedelta(minutes=5)))
        assert all(await asyncio.gather(*(log.flush() for log in logs)))
        for p in pools:
            await p.close()

    asyncio.run(main())
    (incident,) = rows(lh_dsn, sid)
    assert incident[1] == T0 + timedelta(minutes=5) and incident[2] == "refused"


def test_a_restart_mid_outage_neither_duplicates_nor_leaves_it_open(lh_dsn):
    sid = add_monitor(lh_dsn, "restarted", {"url": "https://x.example/"})

    async def main():
        pool = await _pool(lh_dsn)
        before = IncidentLog(pool)
        before.record(down(sid, T0))
        assert await before.flush()
        after = IncidentLog(pool)  # new process: state unknown, sees it down again, then up
        after.record(down(sid, T0 + timedelta(minutes=3)))
        after.record(up(sid, T0 + timedelta(minutes=9)))
        assert await after.flush()
        after.record(down(sid, T0 + timedelta(hours=1), "timeout"))  # a new outage later
        assert await after.flush()
        await pool.close()

    asyncio.run(main())
    assert rows(lh_dsn, sid) == [(T0, T0 + timedelta(minutes=9), "refused"),
                                 (T0 + timedelta(hours=1), None, "timeout")]


def test_changes_wait_out_a_database_outage_in_order(lh_dsn):
    sid = add_monitor(lh_dsn, "patient", {"url": "https://x.example/"})
    gone = add_monitor(lh_dsn, "deleted meanwhile", {"url": "https://y.example/"})

    async def main():
        dead = await _pool(f"postgresql://lh@127.0.0.1:{free_port()}/none")
        log = IncidentLog(dead)
        log.record(down(sid, T0))
        log.record(up(sid, T0 + timedelta(minutes=2)))
        assert await log.flush() is False and log.pending == 2  # kept, in order
        await dead.close()
        with psycopg.connect(lh_dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM subscriptions WHERE id = %s", (gone,))
        log.record(down(gone, T0))  # its monitor no longer exists: dropped, not retried forever
        log.pool = await _pool(lh_dsn)  # the database is back
        assert await log.flush() and log.pending == 0 and log.written == 3
        await log.pool.close()

    asyncio.run(main())
    assert rows(lh_dsn, sid) == [(T0, T0 + timedelta(minutes=2), "refused")]


def test_bounded_while_the_database_is_gone(lh_dsn):
    sid = uuid.uuid4()

    async def main():
        pool = await _pool(f"postgresql://lh@127.0.0.1:{free_port()}/none")
        log = IncidentLog(pool, max_pending=3)
        for i in range(5):
            log.record(down(sid, T0 + timedelta(minutes=i)))
        await pool.close()
        return log

    log = asyncio.run(main())
    assert log.pending == 3 and log.dropped == 2


def test_operators_note_incidents_and_listing_puts_open_ones_first(lh_dsn):
    sid = add_monitor(lh_dsn, "noted", {"url": "https://x.example/"})
    other = add_monitor(lh_dsn, "other", {"url": "https://y.example/"})

    async def main():
        pool = await _pool(lh_dsn)
        log = IncidentLog(pool)
        log.record(down(sid, T0))
        log.record(up(sid, T0 + timedelta(minutes=30)))
        log.record(down(other, T0 + timedelta(minutes=1)))
        assert await log.flush()
        await pool.close()

    asyncio.run(main())
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        listed = incidents.recent(conn, since=T0 - timedelta(days=1))
        assert [(i.monitor, i.open) for i in listed] == [("other", True), ("noted", False)]
        assert listed[1].duration_s(datetime.now(UTC)) == 1800
        assert incidents.add_note(conn, listed[1].id, "upstream DNS provider outage")
        assert not incidents.add_note(conn, 10**9, "no such incident")
        (mine,) = incidents.recent(conn, since=T0 - timedelta(days=1), monitor_id=sid)
        assert mine.note == "upstream DNS provider outage"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_concurrent_flushes_apply_each_change_once_in_order(lh_dsn):
    """The background loop and the shutdown flush may overlap: neither skips a change."""
    sids = [add_monitor(lh_dsn, f"m{i}", {"url": "https://x.example/"}) for i in range(20)]

    async def main():
        pool = await _pool(lh_dsn)
        log = IncidentLog(pool)
        for sid in sids:
            log.record(down(sid, T0))
            log.record(up(sid, T0 + timedelta(minutes=1)))
        assert all(await asyncio.gather(log.flush(), log.flush(), log.flush()))
        await pool.close()
        return log

    log = asyncio.run(main())
    assert log.written == 40 and log.pending == 0
    for sid in sids:
        assert rows(lh_dsn, sid) == [(T0, T0 + timedelta(minutes=1), "refused")]
