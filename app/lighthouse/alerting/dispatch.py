"""Delivers alerts to a monitor's enabled channels with retries; records every attempt.

Each alert is sent to every enabled alert_channels row of its subscription whose min_severity
it meets (a recovery is filtered like the downtime it ends, so whoever got "down" gets "up").
Per channel: up to `max_attempts` attempts, waiting backoff_s * 2^(n-1) (capped at
backoff_max_s, or the server's Retry-After) between them; a non-retryable failure (bad config,
HTTP 4xx) stops at once. Every attempt is one alert_history row with delivery_status 'sent' or
'failed' (and failed_reason). Deliveries run as background tasks, so a slow channel never delays
checks; on shutdown they get a grace period, then are cancelled and recorded as failed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from lighthouse.alerting.channels import SENDERS, ChannelContext, DeliveryError
from lighthouse.alerting.state import Alert
from lighthouse.checks.context import CheckContext
from lighthouse.checks.ssrf import SsrfPolicy
from lighthouse.config import AlertingConfig
from lighthouse.logs import event
from lighthouse.metrics import Metrics

log = logging.getLogger("lighthouse.alerting")

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
CHANNELS_SQL = """
SELECT id, channel_type::text, channel_config, min_severity::text
  FROM alert_channels WHERE subscription_id = %s AND enabled
"""
RECORD_SQL = """
INSERT INTO alert_history (time, subscription_id, alert_channel_id, channel_type, alert_type,
                           severity, title, message, attempt, delivery_status, sent_at,
                           failed_reason, related_check_time)
VALUES (%s, %s, %s, %s::alert_channel_type, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


@dataclass(slots=True)
class Channel:
    id: uuid.UUID | None
    type: str
    config: dict[str, Any]
    min_severity: str = "warning"


def wants(channel: Channel, alert: Alert) -> bool:
    severity = "critical" if alert.alert_type == "recovery" else alert.severity
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK.get(channel.min_severity, 1)


class AlertDispatcher:
    def __init__(self, cfg: AlertingConfig, pool: AsyncConnectionPool,
                 transport: CheckContext | SsrfPolicy, metrics: Metrics | None = None) -> None:
        """transport: the prober's CheckContext (shared TLS context, SSRF policy, connections),
        or just a policy, for which the dispatcher builds (and closes) a context of its own."""
        self.cfg = cfg
        self.pool = pool
        self.metrics = metrics or Metrics()
        self._owns_transport = isinstance(transport, SsrfPolicy)
        if isinstance(transport, SsrfPolicy):
            transport = CheckContext(ssrf=transport)
        self.ctx = ChannelContext(cfg, transport)
        self._tasks: set[asyncio.Task[None]] = set()
        self._channel_cache: dict[uuid.UUID, list[Channel]] = {}
        self.sent = 0
        self.failed = 0

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def submit(self, alert: Alert) -> None:
        task = asyncio.create_task(self.deliver(alert), name=f"alert-{alert.alert_type}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def channels_for(self, subscription_id: uuid.UUID) -> list[Channel]:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(CHANNELS_SQL, (subscription_id,))
                rows = await cur.fetchall()
            channels = [Channel(r[0], r[1], dict(r[2] or {}), r[3]) for r in rows]
            self._channel_cache[subscription_id] = channels
            return channels
        except Exception as exc:  # database down: the last known channels still get the alert
            event(log, "alert channels not loaded; using cached", logging.WARNING,
                  subscription_id=subscription_id, error=type(exc).__name__)
            return self._channel_cache.get(subscription_id, [])

    async def deliver(self, alert: Alert) -> None:
        channels = [c for c in await self.channels_for(alert.subscription_id) if wants(c, alert)]
        event(log, "alert", alert_type=alert.alert_type, severity=alert.severity,
              monitor=alert.subscription_id, title=alert.title, channels=len(channels))
        if not channels:
            return
        await asyncio.gather(*(self.deliver_to(c, alert) for c in channels))

    async def deliver_to(self, channel: Channel, alert: Alert) -> bool:
        """All attempts for one channel; True once one succeeded."""
        sender = SENDERS.get(channel.type)
        attempt = 0
        while True:
            attempt += 1
            reason: str | None = None
            retryable = False
            retry_after: float | None = None
            try:
                if sender is None:
                    raise DeliveryError(f"channel type {channel.type!r} is not supported",
                                        retryable=False)
                await sender(self.ctx, channel.config, alert)
            except DeliveryError as exc:
                reason, retryable, retry_after = exc.reason, exc.retryable, exc.retry_after_s
            except asyncio.CancelledError:
                await self.record(channel, alert, attempt, "prober shut down during delivery")
                raise
            except Exception as exc:  # a bug in a sender must not lose the record
                log.exception("alert sender crashed")
                reason = f"internal: {type(exc).__name__}"
            await self.record(channel, alert, attempt, reason)
            outcome = "sent" if reason is None else "failed"
            self.metrics.alerts.labels(alert.alert_type, channel.type, outcome).inc()
            if reason is None:
                self.sent += 1
                return True
            event(log, "alert delivery failed", logging.WARNING, channel=channel.type,
                  channel_id=channel.id, attempt=attempt, reason=reason, retryable=retryable)
            if not retryable or attempt >= self.cfg.max_attempts:
                self.failed += 1
                return False
            delay = min(self.cfg.backoff_s * 2 ** (attempt - 1), self.cfg.backoff_max_s)
            if retry_after is not None:
                delay = min(max(delay, retry_after), self.cfg.backoff_max_s)
            await asyncio.sleep(delay)

    async def record(self, channel: Channel, alert: Alert, attempt: int,
                     reason: str | None) -> None:
        now = datetime.now(UTC)
        params = (now, alert.subscription_id, channel.id, channel.type
                  if channel.type in SENDERS or channel.type == "sms" else None,
                  alert.alert_type, alert.severity, alert.title, alert.message, attempt,
                  "sent" if reason is None else "failed", now if reason is None else None,
                  reason, alert.check_time)
        try:
            async with self.pool.connection() as conn:
                await conn.execute(RECORD_SQL, params)
                if reason is None and channel.id is not None:
                    await conn.execute("UPDATE alert_channels SET last_used_at = %s "
                                       "WHERE id = %s", (now, channel.id))
        except Exception as exc:
            event(log, "alert_history row not recorded", logging.ERROR,
                  subscription_id=alert.subscription_id, attempt=attempt,
                  delivery_status="sent" if reason is None else "failed",
                  error=type(exc).__name__)

    async def close(self, grace_s: float = 10.0) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._owns_transport:
            await self.ctx.transport.aclose()
