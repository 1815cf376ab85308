"""The latency histogram layout shared by SQL rollups and Python percentiles.

Buckets have fixed, log-spaced integer lower bounds (ratio ~1.2, exact below 8 ms), so counts
from any rollup rows can be added element-wise and a percentile read back for any window,
on every capability level. Bucket i (0-based here, 1-based in SQL arrays) holds latencies in
[BOUNDS[i], BOUNDS[i+1]); the last bucket is open-ended. The same numbers are written into
sql/003_rollups.sql as lh_hist_bounds(); a unit test keeps them in step.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

RATIO = 1.2
MAX_BOUND_MS = 60_000


def _bounds() -> tuple[int, ...]:
    out, x = [0], 1.0
    while round(x) <= MAX_BOUND_MS:
        if round(x) > out[-1]:
            out.append(round(x))
        x *= RATIO
    return tuple(out)


BOUNDS: tuple[int, ...] = _bounds()
SIZE = len(BOUNDS)


def bucket_index(latency_ms: int) -> int:
    """0-based bucket of a latency (negative values count as 0 ms)."""
    return max(0, bisect.bisect_right(BOUNDS, latency_ms) - 1)


def bucket_range(index: int, max_ms: float | None = None) -> tuple[float, float]:
    """[lower, upper) of a bucket; the open last bucket ends just past `max_ms` if known."""
    lower = float(BOUNDS[index])
    if index + 1 < SIZE:
        return lower, float(BOUNDS[index + 1])
    return lower, max(lower + 1.0, (max_ms if max_ms is not None else lower) + 1.0)


def histogram(latencies: Iterable[int]) -> list[int]:
    counts = [0] * SIZE
    for v in latencies:
        counts[bucket_index(v)] += 1
    return counts


def merge(*hists: Sequence[int] | None) -> list[int]:
    out = [0] * SIZE
    for h in hists:
        if h:
            for i, n in enumerate(h):
                out[i] += n
    return out


def percentile(hist: Sequence[int] | None, q: float, min_ms: float | None = None,
               max_ms: float | None = None) -> float | None:
    """Nearest-rank percentile `q` (0 < q <= 1) estimated from bucket counts.

    Linear interpolation inside the bucket that holds the rank, clamped to the observed
    min/max: the estimate lies in the same bucket as the exact value, so it is within one
    bucket width of it. None for an empty histogram.
    """
    if not 0 < q <= 1:
        raise ValueError(f"percentile q must be in (0, 1], got {q}")
    total = sum(hist or ())
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for i, n in enumerate(hist or ()):
        if n and seen + n >= rank:
            lower, upper = bucket_range(i, max_ms)
            est = lower + (upper - lower) * (rank - seen - 0.5) / n
            if min_ms is not None:
                est = max(est, float(min_ms))
            if max_ms is not None:
                est = min(est, float(max_ms))
            return est
        seen += n
    raise AssertionError("unreachable: rank <= total")


def sql_array_literal() -> str:
    return "{" + ",".join(map(str, BOUNDS)) + "}"
