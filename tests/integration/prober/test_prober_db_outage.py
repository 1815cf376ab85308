"""Stop and restart a real PostgreSQL under a running scheduler + writer: nothing is lost.

Uses its own PgServer (not the session one) so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from lighthouse.config import StorageConfig
from lighthouse.db.migrate import migrate
from lighthouse.models import CheckResult, Monitor, Status
from lighthouse.scheduler import Scheduler
from lighthouse.storage import ResultWriter

from tests.support.pgserver import PgServer


@pytest.fixture(scope="module")
def own_pg():
    server = PgServer.create()
    yield server
    server.destroy()


async def wait_until(pred, timeout: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM check_history").fetchone()[0]


def test_database_restart_mid_run_loses_nothing(own_pg, tmp_path):
    dsn = own_pg.create_database("outage")
    migrate(dsn, out=io.StringIO())
    cfg = StorageConfig(spool_dir=str(tmp_path / "spool"), batch_size=50, flush_interval_s=0.1,
                        retry_interval_s=0.3)

    async def main():
        writer = ResultWriter(dsn, cfg, connect_timeout_s=1)
        writer_task = asyncio.create_task(writer.run())

        async def check(m: Monitor) -> CheckResult:
            await asyncio.sleep(0.001)
            return CheckResult(m.id, datetime.now(UTC), Status.SUCCESS, latency_ms=1,
                               timings={"total": 1.0})

        sched = Scheduler(check, lambda m, r: writer.submit(r), max_concurrency=20)
        sched.replace_all([Monitor(uuid.uuid4(), f"m{i}", "tcp", {}, 1) for i in range(100)])
        sched.start()
        assert await wait_until(lambda: writer.stats.inserted >= 200)
        await asyncio.to_thread(own_pg.stop)  # the database goes away mid-run
        spooled_before = writer.stats.spooled
        assert await wait_until(lambda: writer.stats.spooled >= spooled_before + 300)
        assert writer.db_ok is False and writer.spool.rows > 0
        await asyncio.to_thread(own_pg.start)
        assert await wait_until(lambda: writer.db_ok and not writer.spool)
        await sched.stop(grace_s=5)
        await writer.close()
        writer_task.cancel()
        return sched.completed, writer

    completed, writer = asyncio.run(main())
    assert writer.stats.spooled >= 300 and writer.stats.replayed == writer.stats.spooled
    assert writer.spool.lost == 0 and writer.spool.rows == 0
    assert count(dsn) == completed == writer.stats.submitted  # nothing lost, nothing doubled
    assert list((tmp_path / "spool").iterdir()) == []


def test_spool_overflow_is_counted_and_the_rest_kept(own_pg, tmp_path):
    dsn = own_pg.create_database("overflow")
    migrate(dsn, out=io.StringIO())
    cfg = StorageConfig(spool_dir=str(tmp_path / "spool"), batch_size=100,
                        spool_max_bytes=40_000, retry_interval_s=0.2)
    sid = uuid.uuid4()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    async def main():
        writer = ResultWriter(dsn, cfg, connect_timeout_s=1)
        own_pg.stop()
        for i in range(1000):
            writer.submit(CheckResult(sid, t0 + timedelta(seconds=i), Status.FAILURE,
                                      error_code="status", error_message="x" * 20))
        await writer.flush()
        assert writer.db_ok is False
        kept, lost = writer.stats.spooled, writer.spool.lost
        assert lost > 0 and kept + lost == 1000
        assert writer.spool.size_bytes <= cfg.spool_max_bytes
        assert writer.metrics.spool_lost._value.get() == lost
        own_pg.start()
        await asyncio.sleep(cfg.retry_interval_s)
        await writer.close()
        return kept, lost

    kept, lost = asyncio.run(main())
    assert count(dsn) == kept  # everything up to the limit arrived
