"""run_check: one monitor, one CheckResult, never an exception, always within the deadline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from lighthouse.checks.balance import check_balance, parse_balance_config
from lighthouse.checks.canary import check_canary, parse_canary_config
from lighthouse.checks.context import CheckContext
from lighthouse.checks.dns import check_dns, parse_dns_config
from lighthouse.checks.errors import CheckError, ErrorCode, status_for
from lighthouse.checks.graphql import check_graphql, parse_graphql_config
from lighthouse.checks.http import check_http, parse_http_config
from lighthouse.checks.progress import Progress
from lighthouse.checks.push import check_push, parse_push_config
from lighthouse.checks.tcp import check_tcp, parse_tcp_config
from lighthouse.checks.tls import check_tls, parse_tls_config
from lighthouse.checks.websocket import check_websocket, parse_websocket_config
from lighthouse.models import CheckResult, Monitor, Status
from lighthouse.redact import redact

log = logging.getLogger("lighthouse.checks")

_KINDS: dict[str, tuple[Callable[..., Any], Callable[..., Awaitable[None]]]] = {
    "http": (parse_http_config, check_http),
    "tcp": (parse_tcp_config, check_tcp),
    "tls": (parse_tls_config, check_tls),
    "graphql": (parse_graphql_config, check_graphql),
    "balance": (parse_balance_config, check_balance),
    "canary": (parse_canary_config, check_canary),
    "dns": (parse_dns_config, check_dns),
    "push": (parse_push_config, check_push),
    "websocket": (parse_websocket_config, check_websocket),
}
SUPPORTED_TYPES = tuple(_KINDS)
_MAX_MESSAGE = 500


def _clean(text: str | None, limit: int) -> str | None:
    # PostgreSQL text cannot hold NUL; keep rows insertable whatever the target sent.
    if text is None:
        return None
    return text.replace("\x00", "\ufffd")[:limit]


def _message(text: str | None) -> str | None:
    """An error message as stored: no credentials from URLs, no NUL, bounded."""
    return _clean(redact(text), _MAX_MESSAGE) if text is not None else None


def parse_config(kind: str, config: dict[str, Any], ctx: CheckContext) -> Any:
    """The monitor type's parsed config; CheckError(CONFIG) naming the bad key or the type."""
    entry = _KINDS.get(kind)
    if entry is None:
        raise CheckError(ErrorCode.CONFIG, f"type {kind!r} is not probed here {SUPPORTED_TYPES}")
    return entry[0](config, ctx)


async def run_check(monitor: Monitor, ctx: CheckContext) -> CheckResult:
    """Probe monitor once. Never raises (except cancellation of the caller's task)."""
    progress = Progress()
    started_at = datetime.now(UTC)
    code: ErrorCode | None = None
    message: str | None = None
    timeout_s = ctx.default_timeout_s
    try:
        cached = monitor.parsed
        if cached is not None and cached[0] is ctx:
            cfg = cached[1]
        else:
            config = monitor.config if isinstance(monitor.config, dict) else {}
            cfg = parse_config(monitor.type, config, ctx)
            monitor.parsed = (ctx, cfg)
        check = _KINDS[monitor.type][1]
        timeout_s = cfg.timeout_s
        coro = check(cfg, ctx, progress)
        try:
            async with asyncio.timeout(timeout_s):
                await coro
        except TimeoutError:
            code = ErrorCode.TIMEOUT
            message = f"no answer within {timeout_s:g} s (during {progress.where()})"
    except CheckError as exc:
        code, message = exc.code, exc.message
    except Exception as exc:  # a prober bug must not kill the scheduler
        log.exception("check_crashed monitor=%s type=%s", monitor.id, monitor.type)
        code, message = ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"
    total = progress.ms_since(progress.started)
    progress.timings["total"] = total
    status = Status.SUCCESS if code is None else status_for(code)
    snippet = None
    if progress.snippet is not None and (status is not Status.SUCCESS or ctx.snippet_on_success):
        snippet = _clean(progress.snippet.decode("utf-8", errors="replace"), ctx.snippet_bytes)
    return CheckResult(
        subscription_id=monitor.id,
        time=started_at,
        status=status,
        latency_ms=round(total),
        http_status=progress.http_status,
        error_code=code.value if code is not None else None,
        error_message=_message(message),
        timings=progress.timings,
        response_snippet=snippet,
        cert_days_left=progress.cert_days_left,
        cert_expires_at=progress.cert_expires_at,
    )
