"""What may be shown of a target: credentials written in URLs never leave the check.

A monitor URL like `https://user:secret@host/` is used for Basic auth by the transport, then
this module strips the userinfo from every string that is stored (check_history,
alert_history), shown (status page), logged or sent (alert channels).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from lighthouse.models import Monitor

# scheme://userinfo@ — userinfo cannot hold a raw '/', '?', '#' or '@' (RFC 3986).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#@\[\]]+@")
MASK = "***"


def redact(text: str) -> str:
    """text with the userinfo of every URL in it replaced by ***."""
    if "@" not in text:  # the common case, and cheap: most messages hold no URL at all
        return text
    return _USERINFO.sub(rf"\1{MASK}@", text)


def target_of(monitor: Monitor) -> str:
    """The monitor's target as people may see it (URL, or host:port), credentials removed."""
    c = monitor.config
    if monitor.type == "balance":  # RPC URLs carry API keys in their path: show the host only
        try:
            host = urlsplit(str(c.get("url", ""))).hostname or "?"
        except ValueError:
            host = "?"
        token = f" token {c['token']}" if c.get("token") else ""
        return f"{c.get('address', '?')}{token} via {host}"
    if monitor.type == "canary":
        raw = c.get("steps")
        steps: list[Any] = raw if isinstance(raw, list) else []
        first = steps[0] if steps and isinstance(steps[0], dict) else {}
        more = f" (+{len(steps) - 1} steps)" if len(steps) > 1 else ""
        return redact(str(first.get("url", "?"))) + more
    if monitor.type == "push":
        return "push heartbeat"
    if monitor.type == "dns":
        server = f" @{c['server']}" if c.get("server") else ""
        return f"{c.get('record', 'A')} {c.get('name', '?')}{server}"
    if c.get("url"):
        return redact(str(c["url"]))
    port = c.get("port", 443 if monitor.type == "tls" else "?")
    return f"{c.get('host', '?')}:{port}"
