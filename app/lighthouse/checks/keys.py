"""Config keys shared by every monitor type, and the unknown-key check the newer types use.

A misspelt key (`expect_status`, `timeout`) silently ignored is a monitor that checks less than
its operator thinks; the websocket, graphql, balance, canary, push and dns types refuse them,
naming the key. (http/tcp/tls keep accepting extra keys: existing rows carry some.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lighthouse.checks.errors import CheckError, ErrorCode

# Read outside the check itself: the alert policy (alert_latency_ms) and the scheduler's hard
# deadline (timeout_s).
COMMON = frozenset({"timeout_s", "alert_latency_ms"})


def reject_unknown(cfg: dict[str, Any], allowed: Iterable[str], kind: str) -> None:
    known = COMMON | frozenset(allowed)
    unknown = sorted(k for k in cfg if k not in known)
    if unknown:
        raise CheckError(
            ErrorCode.CONFIG,
            f"{unknown[0]}: not a {kind} key (known: {', '.join(sorted(known))})",
        )


def text(
    cfg: dict[str, Any],
    key: str,
    *,
    required: bool = True,
    default: str | None = None,
    limit: int = 10_000,
) -> str | None:
    """A non-empty string value, or default when absent and not required."""
    value = cfg.get(key, default)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise CheckError(
            ErrorCode.CONFIG,
            f"{key}: expected a non-empty string (at most {limit} chars), got {str(value)[:60]!r}",
        )
    return value
