"""Per-check progress: which phase a check is in, and the timings gathered so far.

Kept outside the check's coroutine so the runner can still report timings and the phase
when the whole-check deadline cancels it.
"""

from __future__ import annotations

import functools
import ssl
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Progress:
    started: float = field(default_factory=time.perf_counter)
    phase: str = "start"  # dns, connect, tls, request, response, body
    step: str | None = None  # canary: the step running ("step 2 (login)")
    timings: dict[str, float] = field(default_factory=dict)
    http_status: int | None = None
    cert_days_left: int | None = None
    cert_expires_at: float | None = None  # the peer certificate's notAfter, epoch seconds
    snippet: bytes | None = None  # start of the (decoded) response body

    def ms_since(self, mark: float) -> float:
        return round((time.perf_counter() - mark) * 1000, 3)

    def where(self) -> str:
        return f"{self.step}, {self.phase}" if self.step else self.phase

    def add(self, name: str, ms: float) -> None:
        """Accumulate a phase (a check with redirects connects more than once)."""
        self.timings[name] = round(self.timings.get(name, 0.0) + ms, 3)


def cert_expiry(peercert: dict[str, Any] | None) -> tuple[int, float] | tuple[None, None]:
    """(whole days left, notAfter as epoch seconds) of a decoded peer certificate."""
    if not peercert or "notAfter" not in peercert:
        return None, None
    not_after = _not_after(str(peercert["notAfter"]))
    return int((not_after - time.time()) // 86400), not_after


@functools.lru_cache(maxsize=4096)
def _not_after(text: str) -> float:
    # strptime is slow (~0.2 ms); a prober sees the same few thousand certificates all day.
    return ssl.cert_time_to_seconds(text)
