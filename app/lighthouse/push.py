"""Push (heartbeat) monitors: tokens, recording a push, reading the last one.

A token is 32 random bytes (url-safe base64, 43 chars); only its SHA-256 is stored
(target_config.token_sha256). /push/<token> hashes what it is given and finds the monitor by
that hash: the lookup's timing depends on the hash, never on how many leading characters of a
guess are right, and the stored hash is then compared with hmac.compare_digest.
The token is never logged; web logs show /push/… instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg_pool import AsyncConnectionPool

TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 128
MAX_MESSAGE = 500
PREFIX = "/push/"


def new_token() -> tuple[str, str]:
    """(token to hand to the job once, its sha256 hex to store)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_sha256(token)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


RECORD_SQL = """
INSERT INTO push_heartbeats AS h (subscription_id, last_push_at, last_status, last_message,
                                  pushes)
SELECT s.id, now(), %(status)s, %(message)s, 1
  FROM subscriptions s
 WHERE s.target_config ->> 'token_sha256' = %(sha)s
   AND s.target_type::text = 'push' AND s.status = 'active'
ON CONFLICT (subscription_id) DO UPDATE
   SET last_push_at = excluded.last_push_at, last_status = excluded.last_status,
       last_message = excluded.last_message, pushes = h.pushes + 1
RETURNING subscription_id,
          (SELECT target_config ->> 'token_sha256' FROM subscriptions WHERE id = subscription_id)
"""


def record_push(conn: psycopg.Connection, token: str, status: str,
                message: str | None) -> uuid.UUID | None:
    """Store one push; the monitor's id, or None when no active push monitor has this token."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    sha = token_sha256(token)
    row = conn.execute(RECORD_SQL, {"sha": sha, "status": status,
                                    "message": message[:MAX_MESSAGE] if message else None}
                       ).fetchone()
    if row is None or not hmac.compare_digest(str(row[1]), sha):
        return None
    return row[0]


@dataclass(frozen=True, slots=True)
class PushState:
    interval_s: int
    silent_s: float  # since the last push (or since the monitor was armed, if none came)
    last_push_at: datetime | None
    last_status: str | None
    last_message: str | None


# Arms the monitor on its first check (the row's armed_at), then reads the last push: one trip.
STATE_SQL = """
WITH s AS (
  SELECT id, check_interval_seconds FROM subscriptions
   WHERE target_config ->> 'token_sha256' = %(sha)s AND target_type::text = 'push'
), armed AS (
  INSERT INTO push_heartbeats (subscription_id) SELECT id FROM s
  ON CONFLICT (subscription_id) DO NOTHING
  RETURNING subscription_id, armed_at
)
SELECT s.check_interval_seconds,
       extract(epoch FROM now() - coalesce(h.last_push_at, h.armed_at, a.armed_at, now())),
       h.last_push_at, h.last_status, h.last_message
  FROM s LEFT JOIN push_heartbeats h ON h.subscription_id = s.id
         LEFT JOIN armed a ON a.subscription_id = s.id
"""


class PushStore:
    """What push checks read: the database, shared by every prober."""

    def __init__(self, pool: AsyncConnectionPool, timeout_s: float = 5.0) -> None:
        self.pool = pool
        self.timeout_s = timeout_s

    async def state(self, sha: str) -> PushState | None:
        async with self.pool.connection(timeout=self.timeout_s) as conn:
            cur = await conn.execute(STATE_SQL, {"sha": sha})
            row = await cur.fetchone()
        if row is None:
            return None
        return PushState(int(row[0]), float(row[1]), row[2], row[3], row[4])
