"""GraphQL check: POST {query, variables}; up only on HTTP 2xx, no `errors`, and `data` as asked.

A GraphQL server answers 200 with an `errors` array when a resolver fails, so a plain HTTP
check would call a broken API healthy; this check reads the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lighthouse.checks import assertions
from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.http import (
    HttpConfig,
    check_latency,
    exchange,
    parse_http_config,
    read_text,
)
from lighthouse.checks.keys import reject_unknown, text
from lighthouse.checks.progress import Progress

KEYS = (
    "url",
    "query",
    "variables",
    "operation_name",
    "headers",
    "json_path",
    "json_expected",
    "max_latency_ms",
    "follow_redirects",
    "max_redirects",
)
_2XX = frozenset(range(200, 300))


@dataclass(slots=True)
class GraphqlConfig:
    http: HttpConfig
    json_path: str | None
    json_expected: Any
    timeout_s: float


def post_config(cfg: dict[str, Any], ctx: CheckContext, body: dict[str, Any]) -> HttpConfig:
    """The HttpConfig of a JSON POST to cfg's url (graphql, balance): the keys they share."""
    headers = cfg.get("headers") or {}
    if not isinstance(headers, dict):
        raise CheckError(ErrorCode.CONFIG, "headers: expected a mapping of name to string")
    if not any(k.lower() == "accept" for k in headers):
        headers = {**headers, "Accept": "application/json"}
    http: dict[str, Any] = {
        k: cfg[k]
        for k in ("url", "max_latency_ms", "follow_redirects", "max_redirects", "timeout_s")
        if k in cfg
    }
    return parse_http_config({**http, "method": "POST", "headers": headers, "body": body}, ctx)


def parse_graphql_config(cfg: dict[str, Any], ctx: CheckContext) -> GraphqlConfig:
    reject_unknown(cfg, KEYS, "graphql")
    body: dict[str, Any] = {"query": text(cfg, "query", limit=100_000)}
    variables = cfg.get("variables")
    if variables is not None:
        if not isinstance(variables, dict):
            raise CheckError(ErrorCode.CONFIG, "variables: expected a JSON object")
        body["variables"] = variables
    operation = text(cfg, "operation_name", required=False, limit=200)
    if operation is not None:
        body["operationName"] = operation
    json_path = text(cfg, "json_path", required=False, limit=500)
    if json_path is not None:
        assertions.parse_json_path(json_path)
    http = post_config(cfg, ctx, body)
    return GraphqlConfig(
        http, json_path, cfg.get("json_expected", assertions.MISSING), http.timeout_s
    )


async def check_graphql(cfg: GraphqlConfig, ctx: CheckContext, progress: Progress) -> None:
    fetched = await exchange(cfg.http, ctx, progress, None)
    progress.phase = "assert"
    body, truncated = read_text(fetched, ctx, progress)
    if fetched.status not in _2XX:
        raise CheckError(ErrorCode.STATUS, f"HTTP {fetched.status}: a GraphQL answer is 2xx")
    if truncated:
        raise CheckError(
            ErrorCode.BODY_TOO_LARGE, f"answer larger than the {ctx.max_body_bytes}-byte read cap"
        )
    doc = assertions.load_json(body)
    if not isinstance(doc, dict):
        raise CheckError(ErrorCode.ASSERTION, "answer is not a GraphQL response object")
    errors = doc.get("errors")
    if errors:
        first = errors[0] if isinstance(errors, list) else errors
        message = first.get("message") if isinstance(first, dict) else first
        count = len(errors) if isinstance(errors, list) else 1
        raise CheckError(ErrorCode.ASSERTION, f"GraphQL errors ({count}): {str(message)[:300]}")
    data = doc.get("data")
    if data is None:
        raise CheckError(ErrorCode.ASSERTION, "answer has no data")
    if cfg.json_path is not None:
        assertions.check_value(data, cfg.json_path, cfg.json_expected)
    check_latency(cfg.http.max_latency_ms, progress)
