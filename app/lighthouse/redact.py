"""What may be shown of a target: credentials written in URLs never leave the check.

A monitor URL like `https://user:secret@host/` is used for Basic auth by the transport, then
this module strips the userinfo from every string that is stored (check_history,
alert_history), shown (status page), logged or sent (alert channels).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

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
    if c.get("url"):
        return redact(str(c["url"]))
    port = c.get("port", 443 if monitor.type == "tls" else "?")
    return f"{c.get('host', '?')}:{port}"
