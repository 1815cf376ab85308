"""Error codes a check can end with, and the exception that carries one inside a check.

The code lands in check_history.error_code (varchar(50)); the status says whose fault it is:
FAILURE when the target answered but not as expected, ERROR when we could not talk to it,
TIMEOUT when the deadline passed.
"""

from __future__ import annotations

import enum

from lighthouse.models import Status


class ErrorCode(enum.StrEnum):
    CONFIG = "config"  # the monitor's target_config is unusable
    DNS = "dns"  # name did not resolve
    SSRF = "ssrf"  # target resolves to a refused address range
    REFUSED = "refused"  # TCP connection refused
    UNREACHABLE = "unreachable"  # no route / network unreachable / other connect error
    TLS = "tls"  # handshake or certificate verification failed
    CERT_EXPIRED = "cert_expired"
    CERT_EXPIRING = "cert_expiring"  # valid, but fewer days left than warn_days
    PROTOCOL = "protocol"  # garbage or truncated HTTP
    RESET = "reset"  # connection reset / closed while reading
    TIMEOUT = "timeout"
    STATUS = "status"  # unexpected HTTP status code
    ASSERTION = "assertion"  # keyword / JSON-path assertion failed
    LATENCY = "latency"  # answered correctly but slower than max_latency_ms
    REDIRECTS = "too_many_redirects"  # redirect loop or chain longer than max_redirects
    BODY_TOO_LARGE = "body_too_large"  # an assertion needed more than the read cap
    LOW_BALANCE = "low_balance"  # balance check: the endpoint works, the balance is too low
    NO_PUSH = "no_push"  # push check: nothing pushed within interval + grace
    PUSHED_DOWN = "pushed_down"  # push check: the last push reported status=down
    STEP = "step"  # canary: a step could not run (its URL came out invalid after extraction)
    DATABASE = "database"  # push check: the prober could not read its database
    INTERNAL = "internal"  # a bug in the prober; logged with a traceback


_FAILURES = {
    ErrorCode.STATUS,
    ErrorCode.ASSERTION,
    ErrorCode.LATENCY,
    ErrorCode.REDIRECTS,
    ErrorCode.BODY_TOO_LARGE,
    ErrorCode.CERT_EXPIRED,
    ErrorCode.CERT_EXPIRING,
    ErrorCode.LOW_BALANCE,
    ErrorCode.NO_PUSH,
    ErrorCode.PUSHED_DOWN,
}


def status_for(code: ErrorCode) -> Status:
    if code is ErrorCode.TIMEOUT:
        return Status.TIMEOUT
    return Status.FAILURE if code in _FAILURES else Status.ERROR


class CheckError(Exception):
    """Ends a check with a specific code; raised inside checks, caught by run_check."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
