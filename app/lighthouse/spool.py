"""Bounded on-disk spool for check results the database could not take.

Layout: `<spool_dir>/seg-<NNNNNNNNNNNN>.jsonl`, one JSON object (a check_history row) per line,
append-only. The newest segment is the one being written; it is rotated at `segment_bytes`.
Replay reads whole segments oldest first and deletes each one only after its rows are committed
(rows carry their (subscription_id, time) key and are inserted ON CONFLICT DO NOTHING, so a
segment replayed twice after a crash does not duplicate anything).

fsync policy: with `fsync=True` ("batch", the default) every appended batch is written and
fsync'ed before `append` returns, and a new segment's directory entry is fsync'ed too, so a
result counted as spooled survives a power loss. With `fsync=False` ("off") the OS decides when
to write (survives a process crash, not a power loss).

Bound: the sum of segment sizes never exceeds `max_bytes`, and a write never takes the
filesystem below `min_free_bytes` (the spool gives up before the disk is full, so PostgreSQL
or the journal on the same disk keep working). Rows that do not fit, or that the disk refuses
(ENOSPC, EIO: the file is cut back to its last whole line), are dropped, counted in `lost`
and logged in one line; `append` never raises for them. A torn last line (crash mid-write) is
skipped on replay and counted in `corrupt`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lighthouse.logs import event

log = logging.getLogger("lighthouse.spool")
_SEGMENT = re.compile(r"^seg-(\d{12})\.jsonl$")


class _PartialWrite(OSError):
    """A disk error after `written` lines had reached the spool."""

    def __init__(self, cause: OSError, written: int) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.written = written


@dataclass
class Spool:
    directory: Path
    max_bytes: int
    segment_bytes: int = 8 * 1024 * 1024
    fsync: bool = True
    min_free_bytes: int = 0  # keep at least this much free on the spool's filesystem
    lost: int = 0  # rows dropped because the spool was full (since start)
    corrupt: int = 0  # unreadable lines skipped on replay
    _sizes: dict[Path, int] = field(default_factory=dict)  # segment -> bytes
    _rows: dict[Path, int] = field(default_factory=dict)  # segment -> rows
    _active: Path | None = None
    _seq: int = 0

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.iterdir()):
            m = _SEGMENT.match(path.name)
            if not m:
                continue
            self._seq = max(self._seq, int(m.group(1)))
            self._sizes[path] = path.stat().st_size
            with path.open("rb") as f:
                self._rows[path] = sum(1 for _ in f)
        # Never append to a segment left by an earlier process: it may end in a torn line.
        self._active = None

    # -- state --------------------------------------------------------------------------
    @property
    def size_bytes(self) -> int:
        return sum(list(self._sizes.values()))  # list(): atomic copy, read from other threads

    @property
    def rows(self) -> int:
        return sum(list(self._rows.values()))

    def __bool__(self) -> bool:  # "is there anything to replay"
        return bool(self._sizes)

    # -- writing ------------------------------------------------------------------------
    def _new_segment(self) -> Path:
        self._seq += 1
        path = self.directory / f"seg-{self._seq:012d}.jsonl"
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        if self.fsync:
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        self._sizes[path] = 0
        self._rows[path] = 0
        self._active = path
        return path

    def _disk_room(self) -> int:
        """Bytes we may still write before the filesystem is down to min_free_bytes."""
        try:
            st = os.statvfs(self.directory)
        except OSError:
            return 0
        return st.f_bavail * st.f_frsize - self.min_free_bytes

    def _drop(self, count: int, reason: str, **kv: Any) -> None:
        self.lost += count
        event(log, "spool cannot take results: dropped", logging.ERROR, reason=reason,
              dropped=count, lost_total=self.lost, spool_bytes=self.size_bytes, **kv)

    def append(self, rows: list[dict[str, Any]]) -> int:
        """Appends rows; returns how many were kept. Rows that do not fit (max_bytes, the free
        space reserve, a disk error) are dropped and counted; this never raises for them."""
        lines: list[bytes] = []
        spool_room = self.max_bytes - self.size_bytes
        disk_room = self._disk_room()
        budget = min(spool_room, disk_room)
        for row in rows:
            line = (json.dumps(row, separators=(",", ":")) + "\n").encode()
            if len(line) > budget:
                break
            budget -= len(line)
            lines.append(line)
        if len(lines) < len(rows):
            full = "spool full" if spool_room <= disk_room else "disk nearly full"
            self._drop(len(rows) - len(lines), full, max_bytes=self.max_bytes,
                       min_free_bytes=self.min_free_bytes)
        try:
            return self._write_lines(lines)
        except _PartialWrite as exc:  # ENOSPC, EIO...: what did not reach the disk is lost, once
            self._drop(len(lines) - exc.written, "write failed", error=exc.strerror or str(exc))
            return exc.written

    def _write_lines(self, lines: list[bytes]) -> int:
        """Writes lines into segments; any OSError comes out as _PartialWrite."""
        i = 0
        while i < len(lines):
            done = i
            path = self._active
            try:
                if path is None or self._sizes[path] >= self.segment_bytes:
                    path = self._new_segment()
                room = self.segment_bytes - self._sizes[path]
                chunk = [lines[i]]  # at least one line per segment, even if it is oversized
                used = len(lines[i])
                i += 1
                while i < len(lines) and used + len(lines[i]) <= room:
                    used += len(lines[i])
                    chunk.append(lines[i])
                    i += 1
                with path.open("ab") as f:
                    f.write(b"".join(chunk))
                    if self.fsync:
                        f.flush()
                        os.fsync(f.fileno())
            except OSError as exc:
                if path is not None:  # cut back to the last whole line: no torn row
                    with contextlib.suppress(OSError):
                        os.truncate(path, self._sizes[path])
                raise _PartialWrite(exc, done) from exc
            self._sizes[path] += used
            self._rows[path] += len(chunk)
        return len(lines)

    # -- replay -------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        """Segments oldest first; the active one is sealed so it can be replayed too."""
        self._active = None
        return sorted(self._sizes)

    def read(self, path: Path) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        with path.open("rb") as f:
            for n, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError("not an object")
                    rows.append(row)
                except ValueError:
                    self.corrupt += 1
                    event(log, "spool: unreadable line skipped", logging.WARNING,
                          segment=path.name, line=n)
        return rows

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._sizes.pop(path, None)
        self._rows.pop(path, None)
        if self._active == path:
            self._active = None
