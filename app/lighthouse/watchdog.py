"""Watchdog: a stalled event loop or scheduler ends the process, for systemd to restart it.

No check may hold the event loop. If something does anyway (a parser bug, a blocking call in
a C extension), no asyncio timeout can fire, /health cannot answer and SIGTERM is not handled:
the prober silently stops checking. A thread outside the loop watches the loop's heartbeat and
the scheduler's dispatcher tick; when either is older than `stall_s`, it writes one log line,
dumps every thread's stack (faulthandler: the culprit's frame is in it) and exits with
EXIT_STALLED. systemd (Restart=on-failure) starts a fresh prober; results already taken are in
the spool or the database, and slots are stable across restarts.

Under systemd with WatchdogSec= the heartbeat also sends WATCHDOG=1 to $NOTIFY_SOCKET, which
covers a process too wedged for even this thread to run (the GIL held by C code).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable

EXIT_STALLED = 70  # EX_SOFTWARE: systemd's Restart=on-failure restarts on it
BEAT_S = 1.0


def _notify_address() -> str | None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not os.environ.get("WATCHDOG_USEC"):
        return None
    return "\0" + address[1:] if address.startswith("@") else address


class Watchdog:
    def __init__(self, stall_s: float, scheduler_tick: Callable[[], float | None] = lambda: None,
                 exit_fn: Callable[[int], None] = os._exit, beat_s: float = BEAT_S) -> None:
        self.stall_s = stall_s
        self.scheduler_tick = scheduler_tick  # monotonic time of the dispatcher's last loop
        self.beat_s = beat_s
        self.beat = time.monotonic()
        self.fired: str | None = None
        self._exit = exit_fn
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._notify = _notify_address()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Call from inside the running loop."""
        self.beat = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._heartbeat(), name="lh-beat")
        self._thread = threading.Thread(target=self._watch, name="lighthouse-watchdog",
                                        daemon=True)
        self._thread.start()

    async def _heartbeat(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if self._notify else None
        if sock is not None:
            sock.setblocking(False)  # a full receiver queue must not block the loop we guard
        try:
            while True:
                self.beat = time.monotonic()
                if sock is not None:
                    # queue full or systemd gone: the next beat tries again
                    with contextlib.suppress(OSError):
                        sock.sendto(b"WATCHDOG=1", self._notify)  # type: ignore[arg-type]
                await asyncio.sleep(self.beat_s)
        finally:
            if sock is not None:
                sock.close()

    def stalled(self, now: float | None = None) -> str | None:
        """What has stalled ("event loop" / "scheduler") and for how long, or None."""
        now = time.monotonic() if now is None else now
        if now - self.beat > self.stall_s:
            return f"event loop stalled for {now - self.beat:.1f} s"
        tick = self.scheduler_tick()
        if tick is not None and now - tick > self.stall_s:
            return f"scheduler stalled for {now - tick:.1f} s"
        return None

    def _watch(self) -> None:
        while not self._stop.wait(min(self.beat_s, self.stall_s / 4)):
            loop = self._loop
            if loop is None or loop.is_closed() or not loop.is_running():
                return  # the loop ended without stop(): nothing left to guard (a blocked loop
                #         is still running, inside one callback)
            what = self.stalled()
            if what is None:
                continue
            self.fired = what
            # Written straight to fd 2: the stuck thread may hold the logging lock.
            line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "level": "critical", "logger": "lighthouse.watchdog", "msg": what,
                    "action": f"exit {EXIT_STALLED} for systemd to restart"}
            os.write(2, (" ".join(f"{k}={json.dumps(v)}" for k, v in line.items()) + "\n").encode())
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            self._exit(EXIT_STALLED)
            return

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread is not None:
            self._thread.join(timeout=2)
