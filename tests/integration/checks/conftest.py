from __future__ import annotations

import uuid

import pytest
from lighthouse.checks import CheckContext, run_check
from lighthouse.models import CheckResult, Monitor

from tests.integration.checks.hostile import HostileServer
from tests.unit.checks.aio import run_async

ALLOW = ["127.0.0.0/8", "::1/128"]


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    server = HostileServer().start()
    ca = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.write_text(server.ca_pem)
    server.ca_file = str(ca)
    yield server
    server.stop()


def probe(kind: str, config: dict, ctx_kwargs: dict | None = None) -> CheckResult:
    """Run one check in a fresh event loop with a fresh context (allow-listed for loopback)."""

    async def go() -> CheckResult:
        kwargs = {"allow_cidrs": ALLOW, **(ctx_kwargs or {})}
        ctx = CheckContext.create(**kwargs)
        try:
            return await run_check(Monitor(uuid.uuid4(), "t", kind, config, 60), ctx)
        finally:
            await ctx.aclose()

    return run_async(go())


@pytest.fixture(params=["one-shot", "keepalive"])
def transport(request) -> str:
    """One-shot and keep-alive connections must give the same verdicts."""
    return request.param


@pytest.fixture
def http(hostile, transport):
    def run(path_or_url: str, ctx_kwargs: dict | None = None, **config) -> CheckResult:
        url = path_or_url if "://" in path_or_url else hostile.url(path_or_url)
        kwargs = {"cafile": hostile.ca_file, **(ctx_kwargs or {})}
        config.setdefault("keepalive", transport == "keepalive")
        return probe("http", {"url": url, **config}, kwargs)

    return run
