"""graphql, balance and canary checks against a real local API server."""

from __future__ import annotations

import json

import pytest
from lighthouse.models import Status

from tests.integration.checks.conftest import probe
from tests.support.apiserver import TOKEN_NO_CONTRACT, ApiServer

WALLET = "0x" + "ab" * 20
USDC = "0x" + "a0" * 20


@pytest.fixture(scope="module")
def api():
    server = ApiServer().start()
    yield server
    server.stop()


# -- graphql ------------------------------------------------------------------------------
def test_graphql_up_with_data_assertion_and_variables(api):
    r = probe(
        "graphql",
        {
            "url": api.url("/graphql"),
            "query": "query Q($n: Int) { status }",
            "variables": {"n": 2},
            "operation_name": "Q",
            "json_path": "$.status",
            "json_expected": "ok",
        },
    )
    assert r.status is Status.SUCCESS, r.error_message
    sent = json.loads(api.requests[-1][3])
    assert sent == {
        "query": "query Q($n: Int) { status }",
        "variables": {"n": 2},
        "operationName": "Q",
    }
    assert api.requests[-1][2]["Content-Type"] == "application/json"
    assert {"dns", "connect", "ttfb", "total"} <= set(r.timings)


def test_graphql_errors_array_is_down_even_with_http_200(api):
    r = probe("graphql", {"url": api.url("/graphql"), "query": "{ broken }"})
    assert (r.status, r.error_code, r.http_status) == (Status.FAILURE, "assertion", 200)
    assert "resolver broken failed" in r.error_message
    partial = probe("graphql", {"url": api.url("/graphql"), "query": "{ partial }"})
    assert partial.error_code == "assertion" and "field x failed" in partial.error_message


def test_graphql_data_mismatch_non_2xx_and_not_json(api):
    r = probe(
        "graphql",
        {
            "url": api.url("/graphql"),
            "query": "{ status }",
            "json_path": "$.version",
            "json_expected": 4,
        },
    )
    assert r.error_code == "assertion" and "expected 4" in r.error_message
    assert (
        probe("graphql", {"url": api.url("/graphql-500"), "query": "{ x }"}).error_code == "status"
    )
    assert probe("graphql", {"url": api.url("/nope"), "query": "{ x }"}).error_code == "status"


# -- balance ------------------------------------------------------------------------------
def test_native_balance_above_and_below_threshold(api):
    api.native[WALLET] = 3 * 10**18 // 2  # 1.5 ETH
    cfg = {"url": api.url("/rpc"), "address": WALLET, "min_balance": 1}
    r = probe("balance", cfg)
    assert r.status is Status.SUCCESS, r.error_message
    assert r.timings["balance"] == 1.5
    low = probe("balance", {**cfg, "min_balance": "2.5"})
    assert (low.status, low.error_code) == (Status.FAILURE, "low_balance")
    assert low.error_message == "balance 1.5 is below min_balance 2.5"
    assert low.timings["balance"] == 1.5
    sent = json.loads(api.requests[-1][3])
    assert sent["method"] == "eth_getBalance" and sent["params"] == [WALLET, "latest"]


def test_erc20_balance_uses_balance_of_and_decimals(api):
    api.tokens[USDC] = {WALLET: 1_234_567}  # 1.234567 USDC (6 decimals)
    r = probe(
        "balance",
        {"url": api.url("/rpc"), "address": WALLET, "token": USDC, "decimals": 6, "min_balance": 1},
    )
    assert r.status is Status.SUCCESS, r.error_message
    assert r.timings["balance"] == pytest.approx(1.234567)
    call = json.loads(api.requests[-1][3])
    assert call["method"] == "eth_call"
    assert call["params"][0] == {"to": USDC, "data": "0x70a08231" + "0" * 24 + "ab" * 20}


def test_balance_rpc_errors_are_verdicts(api):
    base = {"url": api.url("/rpc"), "address": WALLET}
    reverted = probe("balance", {**base, "token": "0x" + "11" * 20})
    assert reverted.error_code == "assertion"
    assert reverted.error_message == "JSON-RPC error -32000: execution reverted"
    empty = probe("balance", {**base, "token": TOKEN_NO_CONTRACT})
    assert empty.error_code == "assertion" and "token contract" in empty.error_message
    garbage = probe("balance", {**base, "url": api.url("/rpc-garbage")})
    assert garbage.error_code == "assertion" and "hex quantity" in garbage.error_message
    assert probe("balance", {**base, "url": api.url("/nope")}).error_code == "status"


# -- canary -------------------------------------------------------------------------------
LOGIN = {
    "name": "login",
    "method": "POST",
    "url": None,
    "body": {"user": "u", "password": "p"},
    "json_path": "$.user.id",
    "extract": {
        "token": {"json_path": "$.token"},
        "session": {"header": "X-Session"},
        "uid": {"json_path": "$.user.id"},
    },
}


def flow(api, *later):
    return {"steps": [{**LOGIN, "url": api.url("/login")}, *later], "timeout_s": 5}


def test_canary_passes_values_from_step_to_step(api):
    r = probe(
        "canary",
        flow(
            api,
            {
                "name": "profile",
                "url": api.url("/me"),
                "headers": {"Authorization": "Bearer {{token}}"},
                "json_path": "$.name",
                "json_expected": "u",
            },
            {
                "name": "orders",
                "url": api.url("/orders/{{uid}}?session={{ session }}"),
                "json_path": "$.orders[1]",
                "json_expected": 2,
            },
        ),
    )
    assert r.status is Status.SUCCESS, r.error_message
    assert {"step1", "step2", "step3", "total"} <= set(r.timings)
    assert r.timings["total"] >= r.timings["step1"] + r.timings["step2"]
    assert api.requests[-1][1] == "/orders/7?session=s-9"


def test_canary_names_the_failing_step(api):
    r = probe(
        "canary", flow(api, {"name": "broken", "url": api.url("/broken")}, {"url": api.url("/me")})
    )
    assert (r.status, r.error_code, r.http_status) == (Status.FAILURE, "status", 500)
    assert r.error_message.startswith("step 2 (broken): HTTP 500")
    assert "step1" in r.timings and "step2" not in r.timings
    bad_login = {**LOGIN, "url": api.url("/login"), "body": {"user": "u", "password": "x"}}
    r = probe("canary", {"steps": [bad_login]})
    assert r.error_message.startswith("step 1 (login): HTTP 401")


def test_canary_missing_extraction_fails_the_step(api):
    step = {**LOGIN, "url": api.url("/login"), "extract": {"t": {"header": "X-Nope"}}}
    r = probe("canary", {"steps": [step]})
    assert r.error_code == "assertion"
    assert r.error_message == "step 1 (login): extract t: no 'X-Nope' header"

