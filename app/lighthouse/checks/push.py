"""Push check: down when the job that should call /push/<token> has not, within interval + grace.

Nothing is contacted: the check reads the last push from the database (PushStore, shared by
every prober), so it holds no SSRF risk and works whichever prober received the push.
A push with `status=down` is a failure carrying the job's message.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.keys import reject_unknown
from lighthouse.checks.progress import Progress
from lighthouse.checks.tcp import parse_timeout

KEYS = ("token_sha256", "grace_s")
_SHA = re.compile(r"[0-9a-f]{64}")
MAX_GRACE_S = 7 * 86400


@dataclass(slots=True)
class PushConfig:
    sha: str
    grace_s: float
    timeout_s: float


def parse_push_config(cfg: dict[str, Any], ctx: CheckContext) -> PushConfig:
    reject_unknown(cfg, KEYS, "push")
    sha = cfg.get("token_sha256")
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise CheckError(
            ErrorCode.CONFIG,
            "token_sha256: expected the token's SHA-256 as 64 lower-case hex digits "
            "(`lighthouse monitors add NAME push://` makes both)",
        )
    grace = cfg.get("grace_s", 60)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not (
        0 <= grace <= MAX_GRACE_S
    ):
        raise CheckError(ErrorCode.CONFIG, f"grace_s: expected 0-{MAX_GRACE_S}, got {grace!r}")
    return PushConfig(sha, float(grace), parse_timeout(cfg, ctx))


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


async def check_push(cfg: PushConfig, ctx: CheckContext, progress: Progress) -> None:
    store = ctx.push_store
    if store is None:
        raise CheckError(ErrorCode.CONFIG, "push monitors are checked by the prober service "
                                           "(they need its database)")
    progress.phase = "database"
    mark = time.perf_counter()
    try:
        state = await store.state(cfg.sha)
    except Exception as exc:  # pool timeout, connection lost: our side, not the job's
        raise CheckError(ErrorCode.DATABASE, f"cannot read pushes: {type(exc).__name__}") from None
    progress.add("database", progress.ms_since(mark))
    if state is None:
        raise CheckError(ErrorCode.CONFIG, "no push monitor has this token_sha256")
    progress.timings["since_push_s"] = round(state.silent_s, 3)
    allowed = state.interval_s + cfg.grace_s
    if state.silent_s > allowed:
        when = (f"last push {_ago(state.silent_s)} ago" if state.last_push_at
                else f"no push since the monitor was armed {_ago(state.silent_s)} ago")
        raise CheckError(
            ErrorCode.NO_PUSH, f"{when} (expected every {state.interval_s} s + {cfg.grace_s:g} s)"
        )
    if state.last_status == "down":
        detail = f": {state.last_message}" if state.last_message else ""
        raise CheckError(ErrorCode.PUSHED_DOWN, f"the last push reported down{detail}")
