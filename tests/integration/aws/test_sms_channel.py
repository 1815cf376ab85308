"""The sms alert channel against moto's SNS: botocore signs, our pinned transport delivers."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from lighthouse.alerting import sms
from lighthouse.alerting.channels import ChannelContext, DeliveryError, send_sms
from lighthouse.alerting.state import Alert
from lighthouse.checks import CheckContext
from lighthouse.config import AlertingConfig

from tests.integration.aws.builders import REGION

ALERT = Alert(uuid.uuid4(), "shop", "downtime", "critical", "shop is DOWN",
              "shop (https://shop.example/) failed 3 checks in a row: failure HTTP 503 " * 8,
              datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "https://shop.example/")


@pytest.fixture
def aws_env(monkeypatch, moto_url):
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(sms, "_session", None)  # a session that reads this environment
    return moto_url


def send(cfg: AlertingConfig, config: dict, allow: tuple[str, ...] = ("127.0.0.1/32",)):
    async def go():
        transport = CheckContext.create(allow_cidrs=allow)
        try:
            await send_sms(ChannelContext(cfg, transport), config, ALERT)
        finally:
            await transport.aclose()

    asyncio.run(go())


def sent_sms(moto_url: str) -> list[dict]:
    return httpx.get(f"{moto_url}/moto-api/data.json", timeout=10).json()["sns"]["SMS"]


def test_sms_is_published_through_sns(aws_env):
    cfg = AlertingConfig(sns_region=REGION, sns_endpoint_url=aws_env,
                         status_page_url="https://status.example/")
    send(cfg, {"phone": "+15555550123"})
    (message,) = sent_sms(aws_env)
    assert message["phone_number"] == "+15555550123"
    text = message["message"]
    assert text.startswith("shop is DOWN: shop (https://shop.example/) failed 3 checks")
    assert len(text) <= sms.MAX_CHARS and text.endswith("… https://status.example/")


def test_sns_endpoint_goes_through_the_ssrf_guard(aws_env):
    cfg = AlertingConfig(sns_region=REGION, sns_endpoint_url=aws_env)
    with pytest.raises(DeliveryError) as err:
        send(cfg, {"phone": "+15555550123"}, allow=())
    assert err.value.reason.startswith("ssrf") and not err.value.retryable
    assert sent_sms(aws_env) == []


@pytest.mark.parametrize("phone", [None, "5555550123", "+0123456789", "+1 555 555 0123"])
def test_bad_phone_is_a_permanent_failure(aws_env, phone):
    cfg = AlertingConfig(sns_region=REGION, sns_endpoint_url=aws_env)
    with pytest.raises(DeliveryError) as err:
        send(cfg, {"phone": phone} if phone else {})
    assert "E.164" in err.value.reason and not err.value.retryable


ERROR_XML = (b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error>'
             b"<Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
             b"<RequestId>r-1</RequestId></ErrorResponse>")


@pytest.fixture
def sns_refusing():
    """An SNS stand-in answering each Publish with the next (status, code) of `plan`."""
    plan: list[tuple[int, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            return

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            status, code = plan.pop(0)
            body = ERROR_XML % (code, b"Rate exceeded" if code == b"Throttling"
                                else b"No permission to publish SMS")
            self.send_response(status)
            self.send_header("content-type", "text/xml")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", plan
    server.shutdown()
    server.server_close()


def test_sns_errors_are_reported_with_their_code(aws_env, sns_refusing):
    url, plan = sns_refusing
    cfg = AlertingConfig(sns_region=REGION, sns_endpoint_url=url)
    plan[:] = [(400, b"Throttling"), (403, b"AuthorizationError")]
    with pytest.raises(DeliveryError) as err:
        send(cfg, {"phone": "+15555550123"})
    assert err.value.reason == "SNS Throttling: Rate exceeded" and err.value.retryable
    with pytest.raises(DeliveryError) as err:
        send(cfg, {"phone": "+15555550123"})
    assert err.value.reason.startswith("SNS AuthorizationError") and not err.value.retryable


def test_missing_region_and_credentials_are_clear(monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(sms, "_session", None)
    with pytest.raises(DeliveryError) as err:
        send(AlertingConfig(), {"phone": "+15555550123"})
    assert "sns_region is not set" in err.value.reason
    with pytest.raises(DeliveryError) as err:
        send(AlertingConfig(sns_region=REGION, sns_endpoint_url="http://127.0.0.1:9"),
             {"phone": "+15555550123"})
    assert "no AWS credentials" in err.value.reason
