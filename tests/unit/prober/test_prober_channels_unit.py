"""Channel helpers that need no server: signatures, payloads, severity filter, targets."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import pytest
from lighthouse.alerting.channels import DeliveryError, _path_of, payload, sign
from lighthouse.alerting.dispatch import Channel, wants
from lighthouse.alerting.state import Alert
from lighthouse.cli import CliError, target_config


def alert(kind: str = "downtime", severity: str = "critical") -> Alert:
    return Alert(uuid.uuid4(), "api", kind, severity, "api is DOWN", "msg",
                 datetime.now(UTC), "https://x")


def test_hmac_signature_matches_an_independent_computation():
    body = b'{"a":1}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"


def test_payload_fields():
    a = alert()
    p = payload(a)
    assert p["alert_type"] == "downtime" and p["monitor"]["id"] == str(a.subscription_id)
    assert p["check_time"].endswith("+00:00")


def test_only_the_path_of_a_stored_webhook_url_is_used():
    assert _path_of({"webhook_url": "https://evil.example/services/T/B/X?q=1"},
                    "slack") == "/services/T/B/X?q=1"
    with pytest.raises(DeliveryError) as err:
        _path_of({}, "slack")
    assert not err.value.retryable


def test_severity_filter_and_recovery_follows_downtime():
    ch = Channel(None, "webhook", {}, min_severity="warning")
    assert wants(ch, alert("downtime", "critical"))
    assert wants(ch, alert("recovery", "info"))  # whoever got "down" gets "up"
    assert not wants(Channel(None, "webhook", {}, "critical"), alert("high_latency", "warning"))


def test_cli_targets():
    assert target_config("https://e.com/x") == ("http", {"url": "https://e.com/x"})
    assert target_config("tcp://db:5432") == ("tcp", {"host": "db", "port": 5432})
    assert target_config("tls://e.com") == ("tls", {"host": "e.com", "port": 443})
    for bad in ("ftp://e.com", "tcp://e.com", "http://", "tcp://e.com:99999"):
        with pytest.raises(CliError):
            target_config(bad)


def test_the_prober_runs_without_the_aws_sdk():
    """botocore is in the `backup` extra, not the prober's own dependencies: the service must
    import without it (the sms channel imports it when it sends)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['botocore'] = None; sys.modules['boto3'] = None; "
            "import lighthouse.service, lighthouse.cli")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
