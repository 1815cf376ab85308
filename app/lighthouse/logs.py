"""Structured logging: one line per event, `key=value` (default) or JSON.

Call sites pass fields through `extra={"kv": {...}}` or use `event(log, "name", k=v)`.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from typing import Any

from lighthouse.redact import redact


def _fmt_value(v: Any) -> str:
    s = str(v)
    if s == "" or any(c in s for c in ' "=\n\t'):
        return json.dumps(s)
    return s


class KeyValueFormatter(logging.Formatter):
    def __init__(self, as_json: bool = False) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update(getattr(record, "kv", {}) or {})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        # One choke point: no URL credentials in any log line, whoever logged it.
        if self.as_json:
            return redact(json.dumps(fields, default=str))
        return redact(" ".join(f"{k}={_fmt_value(v)}" for k, v in fields.items()))


class ShippedFileHandler(logging.handlers.WatchedFileHandler):
    """The same lines into a file a log shipper reads (the CloudWatch agent on AWS): reopened
    when logrotate moves it away, and group-readable (0640) although the service's umask is
    0077 - the shipper reads as a member of the service's group, never as its owner."""

    def _open(self):
        stream = super()._open()
        os.fchmod(stream.fileno(), 0o640)
        return stream


def setup(level: str = "INFO", fmt: str = "kv", file: str = "") -> None:
    """Log to stderr (the journal under systemd) and, with ``file``, to that file too.
    OSError when the file cannot be opened (the caller names the setting)."""
    formatter = KeyValueFormatter(as_json=fmt == "json")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file:
        handlers.append(ShippedFileHandler(file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "mail.log", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def event(log: logging.Logger, msg: str, level: int = logging.INFO, **kv: Any) -> None:
    """Logs `msg` with structured fields."""
    if log.isEnabledFor(level):
        log.log(level, msg, extra={"kv": kv})
