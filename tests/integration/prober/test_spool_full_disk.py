"""A full disk under the spool: results that cannot be kept are counted as lost, never a
traceback, never a torn row; the reserve makes the spool give up before the disk is full."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from lighthouse.config import StorageConfig
from lighthouse.metrics import Metrics
from lighthouse.models import CheckResult, Status
from lighthouse.spool import Spool
from lighthouse.storage import ResultWriter

from tests.support.pgserver import free_port

SIZE = 256 * 1024


@pytest.fixture
def tiny_fs(tmp_path):
    """A 256 KiB tmpfs: a real filesystem that really fills up."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mnt)],
                   check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"time": f"2026-01-01T00:00:00.{i:06d}+00:00", "subscription_id": str(uuid.uuid4()),
             "status": "error", "error_message": "x" * 200} for i in range(start, start + n)]


def test_enospc_drops_and_counts_without_a_torn_row(tiny_fs):
    spool = Spool(tiny_fs / "spool", max_bytes=10 * SIZE, segment_bytes=64 * 1024,
                  min_free_bytes=0)
    sent = kept = 0
    for batch in range(200):  # bounded: the disk is full long before
        got = spool.append(_rows(50, batch * 50))
        sent, kept = sent + 50, kept + got
        if got == 0:
            break
    assert got == 0, "the tmpfs never filled"
    assert kept + spool.lost == sent and spool.lost > 0
    back = sum(len(spool.read(p)) for p in spool.segments())
    assert back == kept == spool.rows and spool.corrupt == 0


def test_the_reserve_stops_the_spool_before_the_disk_is_full(tiny_fs):
    spool = Spool(tiny_fs / "spool", max_bytes=10 * SIZE, min_free_bytes=SIZE // 2)
    for batch in range(200):
        if spool.append(_rows(50, batch * 50)) == 0:
            break
    st = os.statvfs(tiny_fs)
    assert st.f_bavail * st.f_frsize >= SIZE // 2 - 64 * 1024  # one batch of slack at most
    assert spool.lost > 0


def test_writer_with_the_database_down_and_the_disk_full_counts_every_loss(tiny_fs, caplog):
    caplog.set_level(logging.INFO)
    metrics = Metrics()
    cfg = StorageConfig(spool_dir=str(tiny_fs / "spool"), spool_max_bytes=10 * SIZE,
                        spool_min_free_bytes=0, batch_size=100, retry_interval_s=60)
    writer = ResultWriter(f"postgresql://lh@127.0.0.1:{free_port()}/none", cfg, metrics,
                          connect_timeout_s=1)
    now = datetime.now(UTC)
    total = 2000
    for i in range(total):
        writer.submit(CheckResult(uuid.uuid4(), now + timedelta(microseconds=i), Status.ERROR,
                                  error_code="refused", error_message="y" * 300))

    asyncio.run(writer.flush())
    lost = writer.spool.lost
    assert lost > 0 and writer.stats.spooled + lost == total
    assert metrics.spool_lost._value.get() == lost
    assert writer.buffered == 0
    assert "writer round failed" not in caplog.text and "Traceback" not in caplog.text
    assert "spool cannot take results" in caplog.text
