"""The result writer on its own thread: a busy check loop cannot starve it, and a database
slower than the checks spills the oldest rows to the spool instead of growing memory."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from lighthouse.config import StorageConfig
from lighthouse.models import CheckResult, Status
from lighthouse.storage import ResultWriter, WriterThread

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def results(n: int) -> list[CheckResult]:
    mid = uuid.uuid4()
    return [CheckResult(mid, BASE + timedelta(seconds=i), Status.SUCCESS, latency_ms=i % 50,
                        timings={"total": 1.0}) for i in range(n)]


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM check_history").fetchone()[0]


def test_full_buffer_spills_oldest_to_the_spool_then_everything_lands(lh_dsn, tmp_path):
    cfg = StorageConfig(spool_dir=str(tmp_path / "spool"), batch_size=50,
                        max_buffered_rows=100)

    async def main():
        writer = ResultWriter(lh_dsn, cfg, connect_timeout_s=2)
        for r in results(1000):  # the writer had no turn while 1000 results came in
            writer.submit(r)
        assert writer.buffered == 1000
        await writer.flush()
        await writer.close()
        return writer

    writer = asyncio.run(main())
    assert writer.stats.spilled == 900 and writer.stats.spooled == 900
    assert writer.stats.replayed == 900  # back from the spool once the writer caught up
    assert writer.stats.inserted == 1000 and not writer.spool
    assert count(lh_dsn) == 1000


def test_rows_reach_the_database_while_the_check_loop_never_yields(lh_dsn, tmp_path):
    cfg = StorageConfig(spool_dir=str(tmp_path / "spool"), batch_size=100,
                        flush_interval_s=0.1)

    async def main():
        writer = ResultWriter(lh_dsn, cfg, connect_timeout_s=2)
        thread = WriterThread(writer)
        thread.start()
        pending = results(2000)
        seen = 0
        deadline = time.monotonic() + 20
        # A check loop at its limit: submitting results and never awaiting anything.
        while time.monotonic() < deadline:
            for _ in range(100):
                if pending:
                    writer.submit(pending.pop())
            sum(i * i for i in range(20_000))  # CPU work holding the loop (and the GIL)
            if not pending:
                seen = count(lh_dsn)
                if seen == 2000:
                    break
        await thread.close()
        return seen, writer

    seen, writer = asyncio.run(main())
    assert seen == 2000  # all written before the loop ever yielded
    assert writer.stats.inserted == 2000 and writer.stats.spilled == 0
    assert not thread_alive(writer)


def thread_alive(writer: ResultWriter) -> bool:
    import threading

    return any(t.name == "lh-writer" and t.is_alive() for t in threading.enumerate())
