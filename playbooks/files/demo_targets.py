"""Demo targets for the sandbox's demo monitors, one per monitor type, all offline.

Runs on a prober host with the prober's own venv Python (it has websockets and dnspython):
  HTTP  :8082  POST /graphql (GraphQL), POST /rpc (EVM JSON-RPC: eth_getBalance, balanceOf),
               POST /login + GET /me (a two-step canary flow)
  WS    :8083  echo
  DNS   :5353  UDP, zone demo.lighthouse.test (A, TXT)
Usage: demo_targets.py BIND_ADDRESS A_RECORD
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

ZONE = "demo.lighthouse.test."
SESSION = "demo-session"  # noqa: S105 - the canary demo: login hands it out, /me wants it
WEI = 2_500_000_000_000_000_000  # 2.5 of the native coin
USDC = 1_234_560_000  # 1234.56 USDC (6 decimals)


class Api(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return

    def _send(self, status: int, doc: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        try:
            doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        except ValueError:
            return self._send(400, {"error": "not JSON"})
        if self.path == "/graphql":
            return self._send(200, {"data": {"status": "ok", "probers": 1}})
        if self.path == "/rpc":
            method = doc.get("method")
            value = WEI if method == "eth_getBalance" else USDC if method == "eth_call" else None
            if value is None:
                return self._send(200, {"jsonrpc": "2.0", "id": doc.get("id"),
                                        "error": {"code": -32601, "message": "no such method"}})
            return self._send(200, {"jsonrpc": "2.0", "id": doc.get("id"), "result": hex(value)})
        if self.path == "/login":
            if doc.get("user") != "demo":
                return self._send(401, {"error": "unknown user"})
            return self._send(200, {"token": SESSION}, {"X-Request-Id": "demo-1"})
        return self._send(404, {"error": "not found"})

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/me":
            if self.headers.get("Authorization") != f"Bearer {SESSION}":
                return self._send(401, {"error": "log in first"})
            return self._send(200, {"user": "demo"})
        return self._send(404, {"error": "not found"})


class Dns(asyncio.DatagramProtocol):
    def __init__(self, a_record: str) -> None:
        self.records = {("A", ZONE): [a_record], ("TXT", ZONE): ['"v=lighthouse-demo"']}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 - not DNS: drop it
            return
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().lower()
        rtype = dns.rdatatype.to_text(question.rdtype)
        if name != ZONE:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (rtype, name) in self.records:
            response.answer.append(dns.rrset.from_text(name, 60, "IN", rtype,
                                                       *self.records[(rtype, name)]))
        self.transport.sendto(response.to_wire(), addr)  # type: ignore[attr-defined]


async def echo(ws) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


async def main(bind: str, a_record: str) -> None:
    http = ThreadingHTTPServer((bind, 8082), Api)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: Dns(a_record), local_addr=(bind, 5353))
    async with serve(echo, bind, 8083, compression=None):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
