"""HTTP exchange through httpx, connecting to the vetted IP with the original Host and SNI.

Clients are shared (one SSL context, built once): one with no keep-alive (a new connection per
check, so connect and TLS time are measured every time) and, for keepalive monitors, one pool
per host name, since httpcore pools by (scheme, ip, port) and a TLS connection verified for
one name must not be reused for another name on the same IP.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import httpx

from lighthouse.checks.context import CheckContext
from lighthouse.checks.fetch import Fetched, Hop, classify
from lighthouse.checks.progress import Progress, cert_days_left

_KEEPALIVE_HOSTS = 256  # pools kept for keep-alive monitors; least recently used closed first


class _KeepalivePools:
    def __init__(self, ctx: CheckContext) -> None:
        self._ctx = ctx
        self._clients: OrderedDict[tuple[str, str, int], httpx.AsyncClient] = OrderedDict()

    async def get(self, key: tuple[str, str, int]) -> httpx.AsyncClient:
        client = self._clients.pop(key, None)
        if client is None:
            client = _new_client(self._ctx, keepalive=True)
        self._clients[key] = client
        while len(self._clients) > _KEEPALIVE_HOSTS:
            _, old = self._clients.popitem(last=False)
            await old.aclose()
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()


def _new_client(ctx: CheckContext, keepalive: bool) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=None,
        max_keepalive_connections=8 if keepalive else 0,
        keepalive_expiry=30.0,
    )
    # trust_env=False: an HTTP(S)_PROXY from the environment would bypass the SSRF vetting.
    return httpx.AsyncClient(
        verify=ctx.ssl_context,
        trust_env=False,
        limits=limits,
        follow_redirects=False,
        timeout=httpx.Timeout(ctx.max_timeout_s),
    )


async def _client_for(ctx: CheckContext, hop: Hop, keepalive: bool) -> httpx.AsyncClient:
    if keepalive:
        pools = ctx._state.get("httpx_keepalive")
        if pools is None:
            pools = ctx._state["httpx_keepalive"] = _KeepalivePools(ctx)
        return await pools.get((hop.url.scheme, hop.url.host, hop.url.port or 0))
    client = ctx._state.get("httpx")
    if client is None:
        client = ctx._state["httpx"] = _new_client(ctx, keepalive=False)
    return client


async def fetch_httpx(
    ctx: CheckContext, hop: Hop, progress: Progress, keepalive: bool, keep_body: int | None = None
) -> Fetched:
    client = await _client_for(ctx, hop, keepalive)
    marks: dict[str, float] = {}

    async def trace(event: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if event == "connection.connect_tcp.started":
            progress.phase, marks["connect"] = "connect", now
        elif event == "connection.connect_tcp.complete":
            progress.add("connect", (now - marks["connect"]) * 1000)
        elif event == "connection.start_tls.started":
            progress.phase, marks["tls"] = "tls", now
        elif event == "connection.start_tls.complete":
            progress.add("tls", (now - marks["tls"]) * 1000)
        elif event == "http11.send_request_headers.started":
            progress.phase, marks["request"] = "request", now
        elif event == "http11.receive_response_headers.started":
            progress.phase = "response"
        elif event == "http11.receive_response_headers.complete":
            progress.add("ttfb", (now - marks.get("request", now)) * 1000)

    url = hop.url.copy_with(host=str(hop.ip))
    extensions: dict[str, Any] = {"trace": trace}
    if hop.url.scheme == "https":
        extensions["sni_hostname"] = hop.url.host
    request = client.build_request(
        hop.method, url, headers=hop.headers, content=hop.body, extensions=extensions
    )
    try:
        response = await client.send(request, stream=True)
        try:
            progress.phase = "body"
            keep = ctx.max_body_bytes if keep_body is None else min(keep_body, ctx.max_body_bytes)
            chunks: list[bytes] = []
            size, kept, truncated = 0, 0, False
            async for chunk in response.aiter_raw():
                if kept < keep:
                    chunks.append(chunk[: keep - kept])
                    kept += len(chunks[-1])
                size += len(chunk)
                if size > ctx.max_body_bytes:
                    truncated = True
                    break
            body = b"".join(chunks)
            stream = response.extensions.get("network_stream")
            ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
            return Fetched(
                status=response.status_code,
                headers=response.headers,
                body=body,
                truncated=truncated,
                cert_days_left=cert_days_left(ssl_object),
            )
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        raise TimeoutError(progress.phase) from None
    except Exception as exc:
        raise classify(exc, progress.phase) from exc
