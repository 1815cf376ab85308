"""Checks: probe one monitor (HTTP(S), TCP, TLS expiry) safely and quickly.

    ctx = CheckContext.create(allow_cidrs=["10.0.0.0/8"])   # once per process
    result = await run_check(monitor, ctx)                  # never raises
    await ctx.aclose()                                      # on shutdown

See docs/checks.md for the target_config keys, error codes and the SSRF policy.
"""

from lighthouse.checks.context import CheckContext, make_ssl_context
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.runner import SUPPORTED_TYPES, run_check
from lighthouse.checks.ssrf import SsrfPolicy

__all__ = [
    "SUPPORTED_TYPES",
    "CheckContext",
    "CheckError",
    "ErrorCode",
    "SsrfPolicy",
    "make_ssl_context",
    "run_check",
]
