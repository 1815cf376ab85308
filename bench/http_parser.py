#!/usr/bin/env python3
"""Microseconds to parse one HTTP/1.1 response: our transport's parser (httptools / llhttp
behind checks/transport._Exchange, limits included) against h11 (httpx's parser), and with
--before CHECKOUT the hand-written parser an older checkout had (checks/lean_fetch.py).

    .venv/bin/python bench/http_parser.py [--before /path/to/old/checkout]

CPU-bound and single-threaded; best of 5 repeats of N parses per shape. Results:
docs/benchmarks.md ("HTTP response parser").
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import timeit
from pathlib import Path

import h11

SHAPES = {
    "small (nginx 200)": b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 "
    b"03:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n"
    b"\r\nok\n",
    "chunked 4 KiB": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: "
    b"chunked\r\n\r\n" + b"400\r\n" + b"x" * 1024 + b"\r\n" + b"400\r\n" + b"y" * 1024 + b"\r\n"
    + b"800\r\n" + b"z" * 2048 + b"\r\n0\r\n\r\n",
    "20 headers": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Header-%d: value-%d\r\n" % (i, i)
                                                   for i in range(20))
    + b"Content-Length: 2\r\n\r\nok",
}


from lighthouse.checks.progress import Progress  # noqa: E402  (bound before --before swaps)
from lighthouse.checks.transport import _Exchange  # noqa: E402


def ours(data: bytes) -> None:
    ex = _Exchange(False, 65536, 1 << 20, 1024, Progress())
    ex.feed(data)
    ex.end_of_stream()
    assert ex.status == 200 and ex.done.exception() is None


def with_h11(data: bytes) -> None:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.receive_data(data)
    conn.receive_data(b"")
    status = 0
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            status = event.status_code
        if event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.EndOfMessage):
            break
    assert status == 200


def before(module):
    class _T(asyncio.Transport):
        def abort(self) -> None:
            pass

    from lighthouse.checks.progress import Progress as OldProgress

    def parse(data: bytes) -> None:
        proto = module._ResponseProtocol(False, 65536, 1 << 20, OldProgress(), 1024)
        proto.connection_made(_T())
        proto.data_received(data)
        if not proto.done.done():
            proto.eof_received()
        assert proto.status == 200

    return parse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", metavar="CHECKOUT")
    ap.add_argument("-n", type=int, default=20000, help="parses per repeat (bounded)")
    args = ap.parse_args()
    n = max(100, min(args.n, 200_000))
    parsers = {"httptools (ours)": ours, f"h11 {h11.__version__}": with_h11}
    if args.before:
        sys.path.insert(0, str(Path(args.before).resolve() / "app"))
        for name in [m for m in sys.modules if m.startswith("lighthouse")]:
            del sys.modules[name]
        import lighthouse.checks.lean_fetch as old

        parsers["hand-written (before)"] = before(old)
    print(f"{'shape':<20}" + "".join(f"{name:>24}" for name in parsers) + "   (µs per response)")

    async def measure() -> None:  # the exchanges make futures: run inside a loop
        for shape, data in SHAPES.items():
            cells = []
            for fn in parsers.values():
                best = min(timeit.repeat(lambda fn=fn, data=data: fn(data), number=n, repeat=5))
                cells.append(f"{best / n * 1e6:>24.2f}")
            print(f"{shape:<20}" + "".join(cells))

    asyncio.run(measure())


if __name__ == "__main__":
    main()
