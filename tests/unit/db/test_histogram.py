"""Histogram percentiles stay within one bucket width of the exact nearest-rank value."""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from lighthouse.db import histogram as h
from lighthouse.db.migrations import sql_dir


def exact(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def width_at(value: int, max_ms: int) -> float:
    lower, upper = h.bucket_range(h.bucket_index(value), max_ms)
    return upper - lower


latencies = st.lists(st.integers(min_value=0, max_value=90_000), min_size=1, max_size=400)
quantiles = st.floats(min_value=0.001, max_value=1.0)


@settings(max_examples=300, deadline=None)
@given(latencies, quantiles)
def test_percentile_within_one_bucket(values: list[int], q: float) -> None:
    est = h.percentile(h.histogram(values), q, min(values), max(values))
    want = exact(values, q)
    assert abs(est - want) <= width_at(want, max(values))


@settings(max_examples=100, deadline=None)
@given(st.lists(latencies, min_size=1, max_size=6), quantiles)
def test_merged_histograms_equal_histogram_of_union(parts: list[list[int]], q: float) -> None:
    merged = h.merge(*(h.histogram(p) for p in parts))
    union = [v for p in parts for v in p]
    assert merged == h.histogram(union)
    est = h.percentile(merged, q, min(union), max(union))
    assert abs(est - exact(union, q)) <= width_at(exact(union, q), max(union))


def test_layout() -> None:
    assert h.BOUNDS[0] == 0 and list(h.BOUNDS) == sorted(set(h.BOUNDS))
    assert h.BOUNDS[-1] <= h.MAX_BOUND_MS < h.BOUNDS[-1] * h.RATIO + 1
    assert all(b / a <= h.RATIO + 0.15 for a, b in zip(h.BOUNDS[8:], h.BOUNDS[9:], strict=False))
    assert h.bucket_index(-5) == 0 and h.bucket_index(0) == 0 and h.bucket_index(1) == 1
    assert h.bucket_index(10**9) == h.SIZE - 1
    assert h.percentile([0] * h.SIZE, 0.5) is None


def test_sql_bounds_match_python() -> None:
    text = (sql_dir() / "003_rollups.sql").read_text()
    literal = re.search(r"SELECT '(\{[0-9,]+\})'::int\[\]", text).group(1)
    assert literal == h.sql_array_literal()
