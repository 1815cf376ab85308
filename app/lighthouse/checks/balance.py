"""Balance check: an account's native or ERC-20 balance over EVM JSON-RPC, against a threshold.

Native coin: `eth_getBalance(address, block)`. ERC-20 (USDC, ...): `eth_call` of
`balanceOf(address)` on the token contract, scaled by the token's `decimals`. The check is up
when the endpoint answers with a balance; below `min_balance` it is a `low_balance` failure
that the alert policy turns into one low_balance alert (not downtime), re-armed once the
balance is back at `min_balance + hysteresis` (thresholds() below is what both read).
The balance is stored in the result's measurements as `balance` (whole token units).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from lighthouse.checks import assertions
from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.graphql import post_config
from lighthouse.checks.http import HttpConfig, check_latency, exchange, read_text
from lighthouse.checks.keys import reject_unknown, text
from lighthouse.checks.progress import Progress

KEYS = (
    "url",
    "address",
    "token",
    "decimals",
    "min_balance",
    "hysteresis",
    "block",
    "chain",
    "headers",
    "max_latency_ms",
    "follow_redirects",
    "max_redirects",
)
BALANCE_OF = "0x70a08231"  # keccak256("balanceOf(address)")[:4]
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BLOCK = re.compile(r"latest|safe|finalized|pending|earliest|0x[0-9a-fA-F]{1,16}")
_QUANTITY = re.compile(r"0x[0-9a-fA-F]{0,64}")


@dataclass(slots=True)
class BalanceConfig:
    http: HttpConfig
    token: str | None
    decimals: int
    min_balance: Decimal | None
    timeout_s: float


def _decimal(cfg: dict[str, Any], key: str) -> Decimal | None:
    value = cfg.get(key)
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        number = Decimal(str(value))
        if not number.is_finite() or number < 0:
            raise InvalidOperation
    except InvalidOperation:
        raise CheckError(
            ErrorCode.CONFIG, f'{key}: expected a number >= 0 (e.g. 25 or "0.5"), got {value!r}'
        ) from None
    return number


def thresholds(cfg: dict[str, Any]) -> tuple[Decimal, Decimal] | None:
    """(alert below, re-arm at or above) from a balance monitor's config; None: no threshold."""
    low = _decimal(cfg, "min_balance")
    if low is None:
        return None
    return low, low + (_decimal(cfg, "hysteresis") or Decimal(0))


def _address(cfg: dict[str, Any], key: str, required: bool) -> str | None:
    value = cfg.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise CheckError(
            ErrorCode.CONFIG, f"{key}: expected a 0x-prefixed 20-byte hex address, got {value!r}"
        )
    return value.lower()


def parse_balance_config(cfg: dict[str, Any], ctx: CheckContext) -> BalanceConfig:
    reject_unknown(cfg, KEYS, "balance")
    address = _address(cfg, "address", True)
    assert address is not None
    token = _address(cfg, "token", False)
    decimals = cfg.get("decimals", 18)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 36:
        raise CheckError(ErrorCode.CONFIG, f"decimals: expected 0-36, got {decimals!r}")
    block = text(cfg, "block", required=False, default="latest", limit=20)
    if not _BLOCK.fullmatch(str(block)):
        raise CheckError(
            ErrorCode.CONFIG,
            f"block: expected latest/safe/finalized/pending or a 0x number, got {block!r}",
        )
    text(cfg, "chain", required=False, limit=40)  # a label for people (e.g. "base")
    levels = thresholds(cfg)
    if token is None:
        call: dict[str, Any] = {"method": "eth_getBalance", "params": [address, block]}
    else:
        data = BALANCE_OF + address[2:].rjust(64, "0")
        call = {"method": "eth_call", "params": [{"to": token, "data": data}, block]}
    http = post_config(cfg, ctx, {"jsonrpc": "2.0", "id": 1, **call})
    return BalanceConfig(http, token, decimals, levels[0] if levels else None, http.timeout_s)


def _result(doc: Any) -> str:
    if not isinstance(doc, dict):
        raise CheckError(ErrorCode.ASSERTION, "answer is not a JSON-RPC response object")
    error = doc.get("error")
    if error is not None:
        if isinstance(error, dict):
            detail = f"{error.get('code')}: {str(error.get('message'))[:300]}"
        else:
            detail = str(error)[:300]
        raise CheckError(ErrorCode.ASSERTION, f"JSON-RPC error {detail}")
    result = doc.get("result")
    if not isinstance(result, str) or not _QUANTITY.fullmatch(result):
        raise CheckError(
            ErrorCode.ASSERTION, f"JSON-RPC result is not a hex quantity: {str(result)[:80]!r}"
        )
    return result


async def check_balance(cfg: BalanceConfig, ctx: CheckContext, progress: Progress) -> None:
    fetched = await exchange(cfg.http, ctx, progress, None)
    progress.phase = "assert"
    body, truncated = read_text(fetched, ctx, progress)
    if not 200 <= fetched.status < 300:
        raise CheckError(ErrorCode.STATUS, f"HTTP {fetched.status} from the JSON-RPC endpoint")
    if truncated:
        raise CheckError(
            ErrorCode.BODY_TOO_LARGE, f"answer larger than the {ctx.max_body_bytes}-byte read cap"
        )
    result = _result(assertions.load_json(body))
    if cfg.token is not None and len(result) <= 2:
        raise CheckError(
            ErrorCode.ASSERTION,
            f"balanceOf returned nothing: is {cfg.token} a token contract on this chain?",
        )
    balance = Decimal(int(result, 16) if len(result) > 2 else 0).scaleb(-cfg.decimals)
    progress.timings["balance"] = float(balance)
    check_latency(cfg.http.max_latency_ms, progress)
    if cfg.min_balance is not None and balance < cfg.min_balance:
        raise CheckError(
            ErrorCode.LOW_BALANCE,
            f"balance {balance.normalize():f} is below min_balance {cfg.min_balance.normalize():f}",
        )
