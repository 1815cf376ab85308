"""The last known monitor set on local disk, so a prober that starts while the database is
down still checks what it checked before (results go to the spool and are replayed later).

One JSON file (`storage.monitor_cache`; by default `monitors.json` beside the spool
directory, /var/lib/lighthouse/monitors.json on hosts), replaced atomically (write a temporary
file, fsync, rename, fsync the directory) whenever the set changed, at most every few seconds.
Mode 0600: monitor configs can hold credentials (URL userinfo, header tokens).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from lighthouse.logs import event
from lighthouse.models import Monitor

log = logging.getLogger("lighthouse.monitor_cache")
FILENAME = "monitors.json"
VERSION = 1


class MonitorCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def save(self, monitors: list[Monitor]) -> None:
        doc: dict[str, Any] = {"version": VERSION, "monitors": [
            {"id": str(m.id), "name": m.name, "type": m.type, "config": m.config,
             "interval_s": m.interval_s, "locations": m.locations, "quorum": m.quorum}
            for m in monitors]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(doc, separators=(",", ":"), default=str).encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def load(self) -> list[Monitor]:
        """The cached set; empty (with a warning) if there is none or it cannot be read."""
        try:
            doc = json.loads(self.path.read_bytes())
            if doc.get("version") != VERSION:
                raise ValueError(f"version {doc.get('version')!r}, expected {VERSION}")
            return [Monitor(uuid.UUID(m["id"]), str(m["name"]), str(m["type"]),
                            dict(m["config"]), int(m["interval_s"]),
                            tuple(m["locations"]) if m.get("locations") else None,
                            m.get("quorum")) for m in doc["monitors"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            event(log, "monitor cache unreadable; starting with no monitors", logging.WARNING,
                  path=self.path, error=f"{type(exc).__name__}: {exc}"[:200])
            return []
