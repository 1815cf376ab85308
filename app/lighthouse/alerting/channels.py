"""Alert channels: one `send` per channel type. Each raises DeliveryError on failure.

channel_config keys (alert_channels.channel_config):
- webhook:  {"url": "https://...", "secret": "..."} - JSON POST; with a secret, the header
            `<alerting.webhook_signature_header>: sha256=<hex HMAC-SHA256 of the raw body>`.
            The URL is user-supplied; `user:pass@` in it is sent as Basic auth.
- slack:    {"webhook_url": "https://hooks.slack.com/services/T/B/X"} (or "webhook_path")
- discord:  {"webhook_url": "https://discord.com/api/webhooks/ID/TOKEN"} (or "webhook_path")
            For Slack and Discord only the path of the stored URL is used; the host is
            alerting.slack_base_url / discord_base_url, so a stored URL cannot send the prober
            to an arbitrary host (and tests point the base URLs at local servers).
- telegram: {"chat_id": "123"}; the bot token is alerting.telegram_bot_token (a secret).
- email:    {"email": "ops@example.com"} or {"to": ["a@x", "b@y"]}; SMTP from alerting.smtp_*.
- sms:      {"phone": "+15551234567"}; AWS SNS Publish (alerting/sms.py), region and endpoint
            from alerting.sns_region / sns_endpoint_url, credentials as botocore finds them.

Every HTTP delivery goes through the checks' transport (checks/transport.py): the host is
resolved once, vetted by the SSRF policy, and the connection made to that vetted address, so a
name that answers differently the second time (DNS rebinding) cannot redirect an alert. That
holds for the operator's base URLs too: point them at a private relay only by allow-listing it
(checks.ssrf_allow). Redirects are not followed (a 3xx is a failed delivery).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from lighthouse.alerting.state import Alert
from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.fetch import Hop
from lighthouse.checks.http import basic_auth, decode_text, parse_url, vetted_address
from lighthouse.checks.progress import Progress
from lighthouse.checks.transport import fetch
from lighthouse.config import AlertingConfig

CHANNEL_TYPES = ("webhook", "slack", "discord", "telegram", "email", "sms")
_COLORS = {"critical": 0xD93025, "warning": 0xF29900, "info": 0x188038}


class DeliveryError(Exception):
    """A failed attempt. `retryable` False means trying again cannot help (bad config, 4xx)."""

    def __init__(self, reason: str, retryable: bool = True,
                 retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s


_REPLY_BYTES = 4096  # of a channel's answer kept (error text, Telegram's "ok")


@dataclass
class ChannelContext:
    cfg: AlertingConfig
    transport: CheckContext  # TLS context, SSRF policy, DNS threads, keep-alive connections


@dataclass(slots=True)
class Reply:
    status: int
    text: str


def payload(alert: Alert) -> dict[str, Any]:
    return {
        "alert_type": alert.alert_type,
        "severity": alert.severity,
        "title": alert.title,
        "message": alert.message,
        "monitor": {"id": str(alert.subscription_id), "name": alert.monitor_name,
                    "target": alert.target},
        "check_time": alert.check_time.isoformat(),
        "sent_at": datetime.now(UTC).isoformat(),
    }


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _path_of(config: dict[str, Any], kind: str) -> str:
    if isinstance(config.get("webhook_path"), str):
        path = config["webhook_path"]
    elif isinstance(config.get("webhook_url"), str):
        parts = urlsplit(config["webhook_url"])
        path = parts.path + (f"?{parts.query}" if parts.query else "")
    else:
        raise DeliveryError(f"{kind} channel needs webhook_url or webhook_path", retryable=False)
    if not path.startswith("/"):
        raise DeliveryError(f"{kind} webhook path must start with '/'", retryable=False)
    return path


async def _post(ctx: ChannelContext, url: str, *, content: bytes,
                headers: dict[str, str], any_status: bool = False) -> Reply:
    """POST on the vetted address of url's host; DeliveryError unless the answer is 2xx
    (any_status: the caller reads errors from the answer itself)."""
    t = ctx.transport
    try:
        target = parse_url(url)
        async with asyncio.timeout(ctx.cfg.timeout_s):
            ip, _ = await vetted_address(t, target)
            sent = [("Host", target.netloc.decode("ascii")), *headers.items()]
            auth = basic_auth(target)
            if auth is not None:
                sent.append(("Authorization", auth))
            hop = Hop("POST", target, ip, sent, content)
            fetched = await fetch(t, hop, Progress(), keep_body=_REPLY_BYTES, keepalive=True)
    except TimeoutError:
        raise DeliveryError("timeout") from None
    except CheckError as exc:  # ssrf and config cannot get better by trying again
        raise DeliveryError(f"{exc.code}: {exc.message}"[:300],
                            retryable=exc.code not in (ErrorCode.SSRF, ErrorCode.CONFIG)) from None
    reply = Reply(fetched.status, decode_text(fetched.body,
                                              fetched.headers.get_list("content-type")))
    if any_status:
        return reply
    if reply.status == 429 or reply.status >= 500:
        retry_after = fetched.headers.get("retry-after")
        try:
            after = float(retry_after) if retry_after else None
        except ValueError:
            after = None
        raise DeliveryError(f"HTTP {reply.status}", retryable=True, retry_after_s=after)
    if reply.status >= 300:
        raise DeliveryError(f"HTTP {reply.status}: {reply.text[:200]}", retryable=False)
    return reply


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def send_webhook(ctx: ChannelContext, config: dict[str, Any], alert: Alert) -> None:
    url = config.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise DeliveryError("webhook channel needs an http(s) url", retryable=False)
    body = _json(payload(alert))
    headers = {"content-type": "application/json", "user-agent": "lighthouse-alerts/0.1"}
    secret = config.get("secret")
    if isinstance(secret, str) and secret:
        headers[ctx.cfg.webhook_signature_header] = sign(secret, body)
    await _post(ctx, url, content=body, headers=headers)


async def send_slack(ctx: ChannelContext, config: dict[str, Any], alert: Alert) -> None:
    url = ctx.cfg.slack_base_url.rstrip("/") + _path_of(config, "slack")
    text = f"*{alert.title}*\n{alert.message}"
    if ctx.cfg.status_page_url:
        text += f"\n<{ctx.cfg.status_page_url}|Status page>"
    await _post(ctx, url, content=_json({"text": text}),
                headers={"content-type": "application/json"})


async def send_discord(ctx: ChannelContext, config: dict[str, Any], alert: Alert) -> None:
    url = ctx.cfg.discord_base_url.rstrip("/") + _path_of(config, "discord")
    body = {"content": alert.title, "embeds": [{
        "title": alert.title, "description": alert.message[:4000],
        "color": _COLORS.get(alert.severity, 0x888888),
        "timestamp": alert.check_time.isoformat(),
        **({"url": ctx.cfg.status_page_url} if ctx.cfg.status_page_url else {}),
    }], "allowed_mentions": {"parse": []}}
    await _post(ctx, url, content=_json(body), headers={"content-type": "application/json"})


async def send_telegram(ctx: ChannelContext, config: dict[str, Any], alert: Alert) -> None:
    chat_id = config.get("chat_id")
    if chat_id in (None, ""):
        raise DeliveryError("telegram channel needs chat_id", retryable=False)
    if not ctx.cfg.telegram_bot_token:
        raise DeliveryError("alerting.telegram_bot_token is not set", retryable=False)
    url = f"{ctx.cfg.telegram_base_url.rstrip('/')}/bot{ctx.cfg.telegram_bot_token}/sendMessage"
    body = {"chat_id": chat_id, "text": f"{alert.title}\n\n{alert.message}",
            "disable_web_page_preview": True}
    try:
        response = await _post(ctx, url, content=_json(body),
                               headers={"content-type": "application/json"})
    except DeliveryError as exc:  # never leak the bot token (it is in the URL)
        raise DeliveryError(exc.reason.replace(ctx.cfg.telegram_bot_token, "***"),
                            exc.retryable, exc.retry_after_s) from None
    try:
        answer = json.loads(response.text)
        ok = isinstance(answer, dict) and answer.get("ok") is True
    except (ValueError, RecursionError):
        ok = False
    if not ok:
        raise DeliveryError(f"telegram answered ok=false: {response.text[:200]}",
                            retryable=False)


def _smtp_send(cfg: AlertingConfig, message: EmailMessage) -> None:
    if cfg.smtp_security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.smtp_host, cfg.smtp_port,
                                                timeout=cfg.timeout_s,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_s)
    with client:
        if cfg.smtp_security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if cfg.smtp_username:
            client.login(cfg.smtp_username, cfg.smtp_password)
        client.send_message(message)


async def send_email(ctx: ChannelContext, config: dict[str, Any], alert: Alert) -> None:
    to = config.get("to") or config.get("email")
    recipients = [to] if isinstance(to, str) else to
    if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise DeliveryError("email channel needs email or to (addresses)", retryable=False)
    msg = EmailMessage()
    msg["From"] = ctx.cfg.smtp_from
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = f"[{alert.severity.upper()}] {alert.title}"
    msg["X-Lighthouse-Alert-Type"] = alert.alert_type
    msg["X-Lighthouse-Monitor"] = str(alert.subscription_id)
    body = alert.message
    if ctx.cfg.status_page_url:
        body += f"\n\nStatus page: {ctx.cfg.status_page_url}"
    msg.set_content(body)
    try:  # smtplib blocks; a thread keeps the event loop (and the checks) running
        await asyncio.to_thread(_smtp_send, ctx.cfg, msg)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:300],
                            retryable=exc.smtp_code >= 400 and exc.smtp_code < 500) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None


async def send_sms(ctx: ChannelContext, config: dict[str, Any], alert: Alert) -> None:
    try:  # botocore comes with the wheel's `backup` extra (the AWS inventory installs it)
        from lighthouse.alerting import sms
    except ImportError:
        raise DeliveryError("sms channel needs botocore: install lighthouse[backup] "
                            "(Ansible: prober_install_extras: backup)", retryable=False) from None
    phone = config.get("phone")
    if not isinstance(phone, str) or not sms.E164.fullmatch(phone):
        raise DeliveryError("sms channel needs phone in E.164 form (+15551234567)",
                            retryable=False)
    try:
        region, endpoint = sms.region_and_endpoint(ctx.cfg.sns_region, ctx.cfg.sns_endpoint_url)
        creds = await sms.credentials()
    except (ValueError, LookupError) as exc:
        raise DeliveryError(str(exc), retryable=isinstance(exc, LookupError)) from None
    url, headers, body = sms.signed_publish(
        phone, sms.sms_text(alert, ctx.cfg.status_page_url), region, endpoint, creds)
    reply = await _post(ctx, url, content=body, headers=headers, any_status=True)
    answer = sms.parse_answer(reply.status, {}, reply.text.encode())
    error = answer.get("Error") or {}
    if reply.status >= 300 or error:
        code = str(error.get("Code") or f"HTTP {reply.status}")
        raise DeliveryError(f"SNS {code}: {str(error.get('Message', ''))[:200]}",
                            retryable=reply.status >= 500 or sms.retryable(code))
    if not answer.get("MessageId"):
        raise DeliveryError(f"SNS answered without a MessageId: {reply.text[:200]}")


SENDERS = {
    "webhook": send_webhook,
    "slack": send_slack,
    "discord": send_discord,
    "telegram": send_telegram,
    "email": send_email,
    "sms": send_sms,
}
