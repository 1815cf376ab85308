"""graphql, balance and canary configs: every mistake is a config error naming the key."""

from __future__ import annotations

import json

import pytest
from lighthouse.checks import CheckContext, CheckError, ErrorCode
from lighthouse.checks.balance import BALANCE_OF, parse_balance_config, thresholds
from lighthouse.checks.canary import parse_canary_config
from lighthouse.checks.graphql import parse_graphql_config

CTX = CheckContext()
ADDR = "0x" + "ab" * 20
URL = "http://127.0.0.1:9/rpc"


def _error(parse, cfg) -> str:
    with pytest.raises(CheckError) as err:
        parse(cfg, CTX)
    assert err.value.code is ErrorCode.CONFIG
    return err.value.message


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"url": URL}, "query"),
        ({"url": URL, "query": "{ a }", "variable": {}}, "variable"),
        ({"url": URL, "query": "{ a }", "variables": [1]}, "variables"),
        ({"url": URL, "query": "{ a }", "json_path": "$.a["}, "json_path"),
        ({"query": "{ a }"}, "url"),
    ],
)
def test_graphql_config_errors_name_the_key(cfg, key):
    assert key in _error(parse_graphql_config, cfg)


def test_graphql_posts_query_and_variables_as_json():
    cfg = parse_graphql_config(
        {"url": URL, "query": "query Q($id: ID!) { a(id: $id) }", "variables": {"id": "1"}}, CTX
    )
    assert cfg.http.method == "POST"
    assert json.loads(cfg.http.body)["variables"] == {"id": "1"}


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"url": URL}, "address"),
        ({"url": URL, "address": "0x1234"}, "address"),
        ({"url": URL, "address": ADDR, "token": "usdc"}, "token"),
        ({"url": URL, "address": ADDR, "decimals": 99}, "decimals"),
        ({"url": URL, "address": ADDR, "decimals": True}, "decimals"),
        ({"url": URL, "address": ADDR, "min_balance": "lots"}, "min_balance"),
        ({"url": URL, "address": ADDR, "min_balance": -1}, "min_balance"),
        ({"url": URL, "address": ADDR, "min_balance": 1, "hysteresis": "NaN"}, "hysteresis"),
        ({"url": URL, "address": ADDR, "block": "yesterday"}, "block"),
        ({"url": URL, "address": ADDR, "min_balnce": 1}, "min_balnce"),
    ],
)
def test_balance_config_errors_name_the_key(cfg, key):
    assert key in _error(parse_balance_config, cfg)


def test_balance_of_call_encodes_the_holder_address():
    token = "0x" + "cd" * 20
    cfg = parse_balance_config({"url": URL, "address": ADDR, "token": token, "decimals": 6}, CTX)
    body = cfg.http.body.decode()
    assert '"eth_call"' in body and token in body
    assert BALANCE_OF + "0" * 24 + "ab" * 20 in body
    assert cfg.decimals == 6


def test_thresholds_are_min_and_min_plus_hysteresis():
    assert thresholds({"min_balance": "0.5", "hysteresis": 0.25}) == (
        pytest.approx(0.5),
        pytest.approx(0.75),
    )
    assert thresholds({}) is None


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({}, "steps"),
        ({"steps": []}, "steps"),
        ({"steps": [{"url": URL, "extract": {"t": {"json_path": "$.t"}}}] * 21}, "steps"),
        ({"steps": [{"url": URL, "colour": "red"}]}, "colour"),
        ({"steps": [{"url": URL, "timeout_s": 3}]}, "timeout_s"),
        ({"steps": [{"url": URL, "extract": {"t": {"xpath": "//t"}}}]}, "extract"),
        ({"steps": [{"url": URL, "extract": {"t": {"json_path": "$.t["}}}]}, "json_path"),
        ({"steps": [{"url": URL + "?t={{token}}"}]}, "token"),
        ({"steps": [{"url": "ftp://127.0.0.1/"}]}, "url"),
    ],
)
def test_canary_config_errors_name_the_key(cfg, key):
    message = _error(parse_canary_config, cfg)
    assert key in message


def test_canary_error_names_the_step_key():
    message = _error(
        parse_canary_config,
        {"steps": [{"name": "login", "url": URL}, {"name": "use", "url": "nope"}]},
    )
    assert message.startswith("steps[1].url:")


def test_canary_variable_from_an_earlier_step_is_accepted():
    cfg = parse_canary_config(
        {
            "steps": [
                {"url": URL, "extract": {"token": {"json_path": "$.token"}}},
                {"url": URL, "headers": {"Authorization": "Bearer {{ token }}"}},
            ]
        },
        CTX,
    )
    assert cfg.steps[0].http is not None  # no templates: parsed once
    assert cfg.steps[1].http is None  # templated: parsed per run


def test_canary_messages_name_the_placeholder_not_the_extracted_value():
    from lighthouse.checks.canary import _scrub

    values = {"token": "tok-123456", "uid": "7"}
    text = "step 2 (use): HTTP 500 at /orders/7?t=tok-123456"
    assert _scrub(text, values) == "step 2 (use): HTTP 500 at /orders/7?t={{token}}"  # "7" kept
