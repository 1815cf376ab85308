"""SMS alerts through AWS SNS (Publish to a phone number), on the prober's pinned transport.

botocore does everything AWS-specific: it finds the credentials (environment, profile, the
EC2 instance role), serialises the Publish call, signs it (SigV4) and parses the answer. Only
the HTTP exchange is ours, so the SNS endpoint goes through the SSRF guard like every other
delivery (botocore's own HTTP client would resolve the name again, unvetted).

channel_config: {"phone": "+15551234567"} (E.164). alerting.sns_region (else the AWS region of
the environment or profile) and alerting.sns_endpoint_url (a VPC endpoint; tests: moto).
SMS are sent Transactional (delivered even to numbers that opted out of promotions), text cut
to 300 characters: title, message, status page link.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any
from urllib.parse import urlencode

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from lighthouse.alerting.state import Alert

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
MAX_CHARS = 300  # two SMS segments of GSM-7 text
# Throttling and AWS-side faults pass; anything else (bad number, no permission) will not.
_RETRYABLE = frozenset({"Throttling", "ThrottledException", "InternalError", "InternalFailure",
                        "ServiceUnavailable", "KMSThrottling"})

_lock = threading.Lock()
_session: Any = None


def _botocore() -> Any:
    global _session
    with _lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session


def sms_text(alert: Alert, status_page_url: str) -> str:
    text = f"{alert.title}: {alert.message}"
    link = f" {status_page_url}" if status_page_url else ""
    if len(text) + len(link) > MAX_CHARS:
        text = text[: MAX_CHARS - len(link) - 1] + "…"
    return text + link


def signed_publish(phone: str, text: str, region: str, endpoint: str,
                   credentials: Any) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of a SigV4-signed SNS Publish to phone."""
    session = _botocore()
    operation = session.get_service_model("sns").operation_model("Publish")
    request = create_serializer("query").serialize_to_request(
        {"PhoneNumber": phone, "Message": text, "MessageAttributes": {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}},
        operation)
    url = endpoint.rstrip("/") + request["url_path"]
    body = urlencode(request["body"]).encode()
    aws = AWSRequest(method="POST", url=url, data=body, headers=request["headers"])
    SigV4Auth(credentials, "sns", region).add_auth(aws)
    headers = {k: v for k, v in aws.headers.items() if k.lower() != "host"}
    return url, headers, body


def parse_answer(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    operation = _botocore().get_service_model("sns").operation_model("Publish")
    return create_parser("query").parse(
        {"status_code": status, "headers": headers, "body": body}, operation.output_shape)


def region_and_endpoint(region: str, endpoint: str) -> tuple[str, str]:
    region = region or _botocore().get_config_variable("region") or ""
    if not region:
        raise ValueError("alerting.sns_region is not set (nor AWS_REGION / a profile region)")
    return region, endpoint or f"https://sns.{region}.amazonaws.com"


def frozen_credentials() -> Any:
    """Blocking (the instance role is fetched from IMDS): call in a thread."""
    try:
        creds = _botocore().get_credentials()
    except BotoCoreError as exc:
        raise LookupError(f"AWS credentials: {exc}") from None
    if creds is None:
        raise LookupError("no AWS credentials (environment, profile or instance role)")
    return creds.get_frozen_credentials()


async def credentials() -> Any:
    return await asyncio.to_thread(frozen_credentials)


def retryable(code: str) -> bool:
    return code in _RETRYABLE
