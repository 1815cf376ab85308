"""CheckContext: what every check shares (TLS context, SSRF policy, limits, connections).

Build one per prober process and pass it to every run_check call. Building an SSL context loads
the CA bundle, which costs milliseconds; doing that per check made probing ~25x slower here
(docs/benchmarks.md), so it is built once.
"""

from __future__ import annotations

import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lighthouse.checks.ssrf import SsrfPolicy

USER_AGENT = "lighthouse-prober/0.1 (+https://github.com/lighthouse)"
MAX_TIMEOUT_S = 60.0  # no check may take longer; config validation reads it from here
MIN_TIMEOUT_S = 0.05


def make_ssl_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system CA store, or cafile instead when given."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@dataclass(slots=True)
class CheckContext:
    """Shared state and limits for checks. Cheap to pass around; build once per process."""

    ssl_context: ssl.SSLContext = field(default_factory=make_ssl_context)
    ssrf: SsrfPolicy = field(default_factory=SsrfPolicy)
    max_body_bytes: int = 1024 * 1024  # read cap per response; reading stops there
    snippet_bytes: int = 1024  # response_snippet size (check_history allows 1024 chars)
    default_timeout_s: float = 10.0  # whole-check deadline when the monitor sets none
    max_timeout_s: float = MAX_TIMEOUT_S  # upper bound on any monitor's timeout_s
    default_max_redirects: int = 5
    max_header_bytes: int = 64 * 1024  # status line + headers; garbage past this is refused
    user_agent: str = USER_AGENT
    prefer_ipv6: bool = False  # connect to an IPv6 answer first when a name has both
    dns_threads: int = 32  # getaddrinfo threads (a dead name server holds one for seconds)
    snippet_on_success: bool = False  # snippets cost 1 KiB a row; keep them for failures
    push_store: Any = None  # lighthouse.push.PushStore: where push checks read the last push
    # Lazily built helpers (the keep-alive connection pool, the DNS threads); closed by aclose().
    _state: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def create(
        cls,
        *,
        allow_cidrs: tuple[str, ...] | list[str] = (),
        cafile: str | None = None,
        ssrf_enabled: bool = True,
        **limits: Any,
    ) -> CheckContext:
        return cls(
            ssl_context=make_ssl_context(cafile),
            ssrf=SsrfPolicy.from_cidrs(allow_cidrs, enabled=ssrf_enabled),
            **limits,
        )

    def dns_executor(self) -> ThreadPoolExecutor:
        executor = self._state.get("dns")
        if executor is None:
            executor = self._state["dns"] = ThreadPoolExecutor(
                self.dns_threads, thread_name_prefix="lighthouse-dns"
            )
        return executor

    async def aclose(self) -> None:
        """Close kept-alive connections (call on shutdown)."""
        state, self._state = self._state, {}
        for value in state.values():
            if isinstance(value, ThreadPoolExecutor):
                value.shutdown(wait=False, cancel_futures=True)
            else:
                await value.aclose()
