"""A real local HTTP server speaking the APIs our check types talk to: GraphQL, EVM JSON-RPC
(eth_getBalance, eth_call balanceOf) and a small login flow for canaries. Thread-per-request,
127.0.0.1 only; state (balances) is set by the tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BALANCE_OF = "0x70a08231"
TOKEN_NO_CONTRACT = "0x" + "de" * 20


class ApiServer:
    def __init__(self) -> None:
        self.native: dict[str, int] = {}  # address (lower) -> wei
        self.tokens: dict[str, dict[str, int]] = {}  # contract -> address -> smallest unit
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.rpc_calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, doc: Any, headers: dict[str, str] | None = None):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:
                body = self._body()
                server.requests.append(("POST", self.path, dict(self.headers), body))
                if self.path == "/graphql":
                    return self._send(200, server.graphql(json.loads(body)))
                if self.path == "/graphql-500":
                    return self._send(500, {"errors": [{"message": "boom"}]})
                if self.path == "/rpc":
                    server.rpc_calls += 1
                    return self._send(200, server.rpc(json.loads(body)))
                if self.path == "/rpc-garbage":
                    return self._send(200, {"jsonrpc": "2.0", "id": 1, "result": "lots"})
                if self.path == "/login":
                    doc = json.loads(body or b"{}")
                    if doc.get("user") == "u" and doc.get("password") == "p":
                        return self._send(
                            200, {"token": "tok-123", "user": {"id": 7}}, {"X-Session": "s-9"}
                        )
                    return self._send(401, {"error": "bad credentials"})
                return self._send(404, {"error": "no such path"})

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, dict(self.headers), b""))
                if self.path == "/me":
                    if self.headers.get("Authorization") == "Bearer tok-123":
                        return self._send(200, {"name": "u", "id": 7})
                    return self._send(401, {"error": "no token"})
                if self.path.startswith("/orders/7?session="):
                    if self.path.endswith("s-9"):
                        return self._send(200, {"orders": [1, 2]})
                    return self._send(403, {"error": "bad session"})
                if self.path == "/broken":
                    return self._send(500, {"error": "down"})
                return self._send(404, {"error": "no such path"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- GraphQL: a tiny schema answered by hand ------------------------------------------
    def graphql(self, doc: dict[str, Any]) -> dict[str, Any]:
        query = doc.get("query", "")
        if "broken" in query:
            return {"data": None, "errors": [{"message": "resolver broken failed"}]}
        if "partial" in query:
            return {"data": {"status": "ok"}, "errors": [{"message": "field x failed"}]}
        return {
            "data": {
                "status": "ok",
                "version": 3,
                "echo": doc.get("variables"),
                "operation": doc.get("operationName"),
            }
        }

    # -- EVM JSON-RPC -------------------------------------------------------------------------
    def rpc(self, doc: dict[str, Any]) -> dict[str, Any]:
        method, params, rid = doc.get("method"), doc.get("params") or [], doc.get("id")
        if method == "eth_getBalance":
            wei = self.native.get(str(params[0]).lower(), 0)
            return {"jsonrpc": "2.0", "id": rid, "result": hex(wei)}
        if method == "eth_call":
            call = params[0]
            contract = str(call.get("to")).lower()
            data = str(call.get("data"))
            if contract == TOKEN_NO_CONTRACT:
                return {"jsonrpc": "2.0", "id": rid, "result": "0x"}
            if not data.startswith(BALANCE_OF) or contract not in self.tokens:
                return {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "error": {"code": -32000, "message": "execution reverted"},
                }
            holder = "0x" + data[len(BALANCE_OF) :][-40:]
            amount = self.tokens[contract].get(holder, 0)
            return {"jsonrpc": "2.0", "id": rid, "result": "0x" + format(amount, "064x")}
        return {
            "jsonrpc": "2.0",
            "id": rid,
            "error": {"code": -32601, "message": f"method {method} not found"},
        }
