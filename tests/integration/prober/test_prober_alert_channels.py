"""Every alert channel against a real local HTTP or SMTP server; every attempt in alert_history."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from aiosmtpd.controller import Controller
from lighthouse.alerting.dispatch import AlertDispatcher
from lighthouse.alerting.state import Alert
from lighthouse.checks.ssrf import SsrfPolicy
from lighthouse.config import AlertingConfig
from psycopg_pool import AsyncConnectionPool

from tests.integration.prober.conftest import add_channel, add_monitor
from tests.support.pgserver import free_port

TOKEN = "123456:TEST-token"  # noqa: S105 - fake bot token for a local server


class Recorder:
    """A local HTTP server that records requests; `plan[path]` lists status codes to answer.
    `host`: where it listens (sandbox tests bind every address, for the hosts' links)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[dict] = []
        self.plan: dict[str, list[int]] = {}
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                return

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                rec.requests.append({"path": self.path, "headers": dict(self.headers),
                                     "body": body})
                codes = rec.plan.get(self.path, [])
                code = codes.pop(0) if codes else 200
                reply = b'{"ok": true}' if "/bot" in self.path else b"ok"
                self.send_response(code)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alert_types(self) -> list[str]:
        """alert_type of each webhook delivery received, in order."""
        return [json.loads(r["body"])["alert_type"] for r in list(self.requests)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def http_recorder():
    rec = Recorder()
    yield rec
    rec.close()


@pytest.fixture
def smtp():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, box
    controller.stop()


def make_alert(sid: uuid.UUID) -> Alert:
    return Alert(sid, "shop", "downtime", "critical", "shop is DOWN",
                 "shop (https://shop.example/) failed 3 checks in a row: failure HTTP 503",
                 datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "https://shop.example/")


def attempts(dsn: str, sid: uuid.UUID) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT channel_type::text, attempt, delivery_status, failed_reason, alert_type::text, "
            "related_check_time, sent_at IS NOT NULL FROM alert_history "
            "WHERE subscription_id = %s ORDER BY channel_type, attempt", (sid,)).fetchall()


async def dispatch(dsn: str, cfg: AlertingConfig, alert: Alert) -> AlertDispatcher:
    pool = AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False,
                               kwargs={"autocommit": True})
    await pool.open()
    d = AlertDispatcher(cfg, pool, SsrfPolicy.from_cidrs(["127.0.0.1/32"]))
    try:
        d.submit(alert)
        await d.close(grace_s=30)
    finally:
        await pool.close()
    return d


def test_every_channel_delivers_and_is_recorded(lh_dsn, http_recorder, smtp):
    controller, box = smtp
    sid = add_monitor(lh_dsn, "shop", {"url": "https://shop.example/"})
    base = http_recorder.url
    add_channel(lh_dsn, sid, "webhook", {"url": f"{base}/hook", "secret": "s3cret"})
    add_channel(lh_dsn, sid, "slack", {"webhook_url": "https://hooks.slack.com/services/T1/B2/X3"})
    add_channel(lh_dsn, sid, "discord",
                {"webhook_url": "https://discord.com/api/webhooks/42/tok"})
    add_channel(lh_dsn, sid, "telegram", {"chat_id": "-1001"})
    add_channel(lh_dsn, sid, "email", {"email": "ops@example.test"})
    cfg = AlertingConfig(slack_base_url=base, discord_base_url=base, telegram_base_url=base,
                         telegram_bot_token=TOKEN, smtp_host="127.0.0.1",
                         smtp_port=controller.port, backoff_s=0.05)
    d = asyncio.run(dispatch(lh_dsn, cfg, make_alert(sid)))
    assert d.sent == 5 and d.failed == 0

    by_path = {r["path"]: r for r in http_recorder.requests}
    hook = by_path["/hook"]
    expected = hmac.new(b"s3cret", hook["body"], hashlib.sha256).hexdigest()
    assert hook["headers"]["X-Lighthouse-Signature"] == f"sha256={expected}"
    body = json.loads(hook["body"])
    assert body["alert_type"] == "downtime" and body["monitor"]["id"] == str(sid)
    assert "shop is DOWN" in json.loads(by_path["/services/T1/B2/X3"]["body"])["text"]
    discord = json.loads(by_path["/api/webhooks/42/tok"]["body"])
    assert discord["embeds"][0]["title"] == "shop is DOWN"
    tg = json.loads(by_path[f"/bot{TOKEN}/sendMessage"]["body"])
    assert tg["chat_id"] == "-1001" and tg["text"].startswith("shop is DOWN")
    (mail,) = box.messages
    assert mail.rcpt_tos == ["ops@example.test"]
    assert b"Subject: [CRITICAL] shop is DOWN" in mail.content

    rows = attempts(lh_dsn, sid)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (t, 1, "sent") for t in sorted(["webhook", "slack", "discord", "telegram", "email"])]
    assert all(r[4] == "downtime" and r[5] == make_alert(sid).check_time and r[6] for r in rows)


def test_retries_with_backoff_record_each_attempt(lh_dsn, http_recorder):
    sid = add_monitor(lh_dsn, "shop", {"url": "https://shop.example/"})
    base = http_recorder.url
    add_channel(lh_dsn, sid, "slack", {"webhook_url": "https://hooks.slack.com/services/flaky"})
    add_channel(lh_dsn, sid, "discord", {"webhook_path": "/api/webhooks/gone"})
    add_channel(lh_dsn, sid, "webhook", {"url": f"{base}/down"})
    http_recorder.plan = {"/services/flaky": [500, 503], "/api/webhooks/gone": [404],
                          "/down": [500] * 10}
    cfg = AlertingConfig(slack_base_url=base, discord_base_url=base, max_attempts=3,
                         backoff_s=0.05)
    d = asyncio.run(dispatch(lh_dsn, cfg, make_alert(sid)))
    rows = [(r[0], r[1], r[2], r[3]) for r in attempts(lh_dsn, sid)]
    assert rows == [
        ("discord", 1, "failed", rows[0][3]),  # 404: not retried
        ("slack", 1, "failed", "HTTP 500"),
        ("slack", 2, "failed", "HTTP 503"),
        ("slack", 3, "sent", None),
        ("webhook", 1, "failed", "HTTP 500"),
        ("webhook", 2, "failed", "HTTP 500"),
        ("webhook", 3, "failed", "HTTP 500"),  # gave up after max_attempts
    ]
    assert rows[0][3].startswith("HTTP 404")
    assert d.sent == 1 and d.failed == 2


def test_unreachable_smtp_and_ssrf_refusal_are_recorded_failures(lh_dsn):
    sid = add_monitor(lh_dsn, "shop", {"url": "https://shop.example/"})
    add_channel(lh_dsn, sid, "email", {"email": "ops@example.test"})
    add_channel(lh_dsn, sid, "webhook", {"url": "http://169.254.169.254/latest/meta-data"})
    cfg = AlertingConfig(smtp_host="127.0.0.1", smtp_port=free_port(), max_attempts=2,
                         backoff_s=0.05, timeout_s=2)
    asyncio.run(dispatch(lh_dsn, cfg, make_alert(sid)))
    rows = [(r[0], r[1], r[2], r[3]) for r in attempts(lh_dsn, sid)]
    assert [r[:3] for r in rows] == [("email", 1, "failed"), ("email", 2, "failed"),
                                     ("webhook", 1, "failed")]
    assert "ConnectionRefused" in rows[0][3]
    assert rows[2][3].startswith("ssrf") and "link-local" in rows[2][3]


def test_webhook_is_delivered_to_the_vetted_address_not_a_rebound_one(lh_dsn, http_recorder,
                                                                      monkeypatch):
    """DNS rebinding: the name answers 127.0.0.1 (allowed) once, then the metadata address.
    The delivery must resolve once and connect to what it vetted."""
    import socket

    import lighthouse.checks.ssrf as ssrf

    real = socket.getaddrinfo
    asked: list[str] = []
    port = int(http_recorder.url.rsplit(":", 1)[1])

    def rebinding(host, *args, **kwargs):
        if host != "rebind.test":
            return real(host, *args, **kwargs)
        asked.append(host)
        ip = "127.0.0.1" if len(asked) == 1 else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", rebinding)
    sid = add_monitor(lh_dsn, "shop", {"url": "https://shop.example/"})
    add_channel(lh_dsn, sid, "webhook", {"url": f"http://rebind.test:{port}/hook"})
    d = asyncio.run(dispatch(lh_dsn, AlertingConfig(backoff_s=0.05), make_alert(sid)))
    assert d.sent == 1 and asked == ["rebind.test"]
    (req,) = http_recorder.requests
    assert req["path"] == "/hook" and req["headers"]["Host"] == f"rebind.test:{port}"


def test_channel_base_urls_go_through_the_ssrf_policy(lh_dsn):
    sid = add_monitor(lh_dsn, "shop", {"url": "https://shop.example/"})
    add_channel(lh_dsn, sid, "slack", {"webhook_url": "https://hooks.slack.com/services/T/B/X"})
    cfg = AlertingConfig(slack_base_url="http://169.254.169.254", backoff_s=0.05)
    d = asyncio.run(dispatch(lh_dsn, cfg, make_alert(sid)))
    (row,) = attempts(lh_dsn, sid)
    assert d.failed == 1 and row[2] == "failed" and row[3].startswith("ssrf"), row


def test_url_credentials_never_reach_a_channel_or_alert_history(lh_dsn, http_recorder):
    """A monitor whose URL carries credentials, through the alert state machine to a webhook."""
    from lighthouse.alerting.state import AlertPolicy
    from lighthouse.models import CheckResult, Monitor, Status

    url = "https://ops:hunter2@shop.example/health"
    sid = add_monitor(lh_dsn, "shop", {"url": url})
    add_channel(lh_dsn, sid, "webhook", {"url": f"{http_recorder.url}/hook"})
    policy = AlertPolicy(AlertingConfig(failure_threshold=1))
    monitor = Monitor(sid, "shop", "http", {"url": url}, 60)
    failed = CheckResult(sid, datetime.now(UTC), Status.ERROR, error_code="too_many_redirects",
                         error_message=f"more than 1 redirects (last to {url})")
    (alert,) = policy.observe(monitor, failed)
    asyncio.run(dispatch(lh_dsn, AlertingConfig(backoff_s=0.05), alert))
    (req,) = http_recorder.requests
    with psycopg.connect(lh_dsn) as conn:
        stored = conn.execute("SELECT title || message FROM alert_history "
                              "WHERE subscription_id = %s", (sid,)).fetchone()[0]
    for text in (req["body"].decode(), stored, alert.message, alert.target):
        assert "hunter2" not in text and "ops:" not in text, text
    assert json.loads(req["body"])["monitor"]["target"] == "https://***@shop.example/health"
