"""Tracking processes we started by PID, without trusting a PID that was since reused."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def _reap(pid: int) -> None:
    # If we are the parent (same Python process did `up` and `down`), collect the zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _read(pid: int) -> tuple[str, str, str] | None:
    """(cmdline, comm, state) of pid, or None if it is gone."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return cmdline, stat.split("(", 1)[1].rsplit(")", 1)[0], stat.rsplit(")", 1)[1].split()[0]


def alive(pid: int, marker: str) -> bool:
    """True if pid runs and its command line contains marker (guards against PID reuse)."""
    _reap(pid)
    for _ in range(40):
        info = _read(pid)
        if info is None:
            return False
        cmdline, comm, state = info
        if state == "Z":
            return False
        # cmdline reads empty for an instant while a process execs (seen right after Popen
        # returns): look again rather than call a live process dead.
        if cmdline or Path(marker).name[:15] == comm:
            return marker in cmdline or Path(marker).name[:15] == comm
        time.sleep(0.005)
    return False


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def terminate(pid: int, marker: str, grace: float = 10, sig: int = signal.SIGTERM) -> bool:
    """Send sig, wait up to grace seconds, then SIGKILL. True if it ended within grace."""
    if not alive(pid, marker):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not alive(pid, marker):
            break
        time.sleep(0.05)
    return False
