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

Bound: the sum of segment sizes never exceeds `max_bytes`; rows that do not fit are dropped,
counted in `lost` and logged. A torn last line (crash mid-write) is skipped on replay and
counted in `corrupt`.
"""

from __future__ import annotations

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


@dataclass
class Spool:
    directory: Path
    max_bytes: int
    segment_bytes: int = 8 * 1024 * 1024
    fsync: bool = True
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

    def append(self, rows: list[dict[str, Any]]) -> int:
        """Appends rows; returns how many were kept. Rows past max_bytes are dropped+counted."""
        lines: list[bytes] = []
        budget = self.max_bytes - self.size_bytes
        for row in rows:
            line = (json.dumps(row, separators=(",", ":")) + "\n").encode()
            if len(line) > budget:
                break
            budget -= len(line)
            lines.append(line)
        dropped = len(rows) - len(lines)
        if dropped:
            self.lost += dropped
            event(log, "spool full: results dropped", logging.ERROR, dropped=dropped,
                  lost_total=self.lost, spool_bytes=self.size_bytes, max_bytes=self.max_bytes)
        i = 0
        while i < len(lines):
            path = self._active
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
