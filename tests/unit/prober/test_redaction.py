"""Credentials written in URLs are stripped from every string we store, show, log or send."""

from __future__ import annotations

import logging
import uuid

import pytest
from lighthouse.checks.runner import _message
from lighthouse.logs import KeyValueFormatter
from lighthouse.models import Monitor
from lighthouse.redact import redact, target_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "want"), [
    ("https://u:p@h/x", "https://***@h/x"),
    ("HTTP://user@h", "HTTP://***@h"),
    ("to http://a%40b:c%3Ad@h:81/p and https://x:y@[::1]/", "to http://***@h:81/p and "
     "https://***@[::1]/"),
    ("no url here, mail me@example.com", "no url here, mail me@example.com"),
    ("https://h/path@not-userinfo", "https://h/path@not-userinfo"),
    ("ws://k:v@h", "ws://***@h"),
])
def test_redact(text, want):
    assert redact(text) == want


def test_target_and_stored_message_and_log_line_carry_no_credentials():
    m = Monitor(uuid.uuid4(), "m", "http", {"url": "https://ops:hunter2@h.example/"}, 60)
    assert target_of(m) == "https://***@h.example/"
    assert "hunter2" not in _message("redirect to https://ops:hunter2@h.example/x")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "check %s", ("https://a:b@h/",),
                               None)
    record.kv = {"url": "https://ops:hunter2@h.example/"}
    for as_json in (False, True):
        line = KeyValueFormatter(as_json=as_json).format(record)
        assert "hunter2" not in line and "a:b@" not in line and "***@h" in line
