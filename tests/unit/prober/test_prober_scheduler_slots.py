"""Slot arithmetic: stable per-monitor offsets spread checks evenly over the interval."""

from __future__ import annotations

import uuid
from collections import Counter

from lighthouse.scheduler import LatenessWindow, next_slot, stable_offset


def test_offset_is_stable_and_inside_the_interval():
    mid = uuid.UUID("6f1c1a8e-4d0f-4c58-9a59-0c1f1d2e3b4a")
    assert stable_offset(mid, 60) == stable_offset(mid, 60)
    for _ in range(1000):
        off = stable_offset(uuid.uuid4(), 60)
        assert 0 <= off < 60


def test_offsets_spread_evenly_no_thundering_herd():
    per_second = Counter(int(stable_offset(uuid.uuid4(), 60)) for _ in range(60_000))
    assert len(per_second) == 60
    # ~1000 per second; a herd would put thousands in one second.
    assert max(per_second.values()) < 1200 and min(per_second.values()) > 800


def test_next_slot_is_after_and_on_the_monitor_grid():
    mid = uuid.uuid4()
    off = stable_offset(mid, 300)
    for after in (0.0, 1234.5, 1_700_000_000.25, off, off + 300):
        s = next_slot(mid, 300, after)
        assert after < s <= after + 300
        assert abs(((s - off) / 300) - round((s - off) / 300)) < 1e-6


def test_lateness_window_quantiles_and_bound():
    w = LatenessWindow(size=100)
    assert w.quantile(0.99) is None
    for i in range(1000):
        w.add(i / 1000)
    assert len(w.samples) == 100
    assert 0.98 <= w.quantile(0.99) <= 1.0
