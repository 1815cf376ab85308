"""A real authoritative-style DNS server on 127.0.0.1 (UDP and TCP), answering from a dict.

Built with dnspython's message codec (no hand-written wire format). Names listed in `silent`
get no answer (a dead server), in `servfail` a SERVFAIL; unknown names NXDOMAIN; a known name
without the asked type an empty NOERROR. A TXT answer over `truncate_over` bytes is sent with
TC set over UDP, so the client must retry over TCP.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rrset


class DnsServer:
    def __init__(self, zone: dict[tuple[str, str], list[str]]) -> None:
        self.zone = {(n.rstrip(".").lower() + ".", t.upper()): v for (n, t), v in zone.items()}
        self.silent: set[str] = set()
        self.servfail: set[str] = set()
        self.truncate_over = 512
        self.queries: list[tuple[str, str, str]] = []  # (proto, name, type)

    def answer(self, wire: bytes, proto: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name, rtype = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
        self.queries.append((proto, name, rtype))
        if name.rstrip(".") in self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name.rstrip(".") in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if not any(n == name for n, _t in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        cname = self.zone.get((name, "CNAME"))
        if cname and rtype != "CNAME":  # follow one level, as a server with both zones would
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "CNAME", *cname))
            name = cname[0].rstrip(".").lower() + "."
        values = self.zone.get((name, rtype))
        if values:
            response.answer.append(dns.rrset.from_text(name, 60, "IN", rtype, *values))
        out = response.to_wire()
        if proto == "udp" and len(out) > self.truncate_over:
            response.answer = []
            response.flags |= dns.flags.TC
            out = response.to_wire()
        return out

    def start(self) -> DnsServer:
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                out = server.answer(data, "udp")
                if out is not None:
                    sock.sendto(out, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = self.request.recv(2)
                if len(head) < 2:
                    return
                (size,) = struct.unpack("!H", head)
                data = b""
                while len(data) < size:
                    chunk = self.request.recv(size - len(data))
                    if not chunk:
                        return
                    data += chunk
                out = server.answer(data, "tcp")
                if out is not None:
                    self.request.sendall(struct.pack("!H", len(out)) + out)

        for _attempt in range(50):  # the UDP port's TCP twin may be taken: pick another
            self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
            self.port = self.udp.server_address[1]
            try:
                self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)
                break
            except OSError:
                self.udp.server_close()
        else:
            raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")
        for srv in (self.udp, self.tcp):
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for srv in (self.udp, self.tcp):
            srv.shutdown()
            srv.server_close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
