"""A real WebSocket server (the `websockets` library) on 127.0.0.1, plain and TLS, in its own
thread and event loop. Paths: /echo echoes, /hello sends a JSON greeting on connect, /close
closes at once with 1011, /silent never speaks, /moved answers 301, /forbidden 403; requests'
headers are recorded."""

from __future__ import annotations

import asyncio
import http
import json
import ssl
import threading
from typing import Any

import trustme
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response


class WsServer:
    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.headers: list[dict[str, str]] = []
        self.ready = threading.Event()
        self.port = self.tls_port = 0

    def url(self, path: str, tls: bool = False) -> str:
        if tls:
            return f"wss://localhost:{self.tls_port}{path}"
        return f"ws://127.0.0.1:{self.port}{path}"

    async def _handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else "/"
        if path == "/echo":
            async for message in ws:
                await ws.send(message)
        elif path == "/hello":
            await ws.send(json.dumps({"type": "hello", "status": "ok", "n": 1}))
            await ws.wait_closed()
        elif path == "/close":
            await ws.close(1011, "overloaded")
        elif path == "/silent":
            await ws.wait_closed()

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        self.headers.append(dict(request.headers.raw_items()))
        if request.path == "/moved":
            return Response(301, "Moved", Headers([("Location", "ws://169.254.169.254/")]), b"")
        if request.path == "/forbidden":
            return ws.respond(http.HTTPStatus.FORBIDDEN, "no entry\n")
        return None

    def start(self) -> WsServer:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("localhost", "127.0.0.1").configure_cert(tls)

        async def main() -> None:
            kw: dict[str, Any] = {"process_request": self._process_request, "compression": None}
            async with serve(self._handler, "127.0.0.1", 0, **kw) as plain, \
                    serve(self._handler, "127.0.0.1", 0, ssl=tls, **kw) as secure:
                self.port = plain.sockets[0].getsockname()[1]
                self.tls_port = secure.sockets[0].getsockname()[1]
                self._stop = asyncio.get_running_loop().create_future()
                self.ready.set()
                await self._stop

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),),
                                       daemon=True)
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set_result, None)
        self.thread.join(10)
