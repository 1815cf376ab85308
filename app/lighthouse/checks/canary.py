"""Canary check: a multi-step HTTP flow (log in, use the token, ...), one result per run.

Steps run in order; each is an http check's config (method, url, headers, body, assertions)
plus `extract`: values taken from its answer (a JSON path of the body or a response header)
and written into later steps as `{{name}}` in their url, header values or body strings.
The run stops at the first failing step, and the result names it ("step 2 (login): ...");
timings hold `step1`, `step2`, ... (ms) besides the phases summed over all steps.
A step without `{{...}}` is parsed once when the monitor is loaded; one with templates is
parsed per run, after substitution (and its hops vetted like any other).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from lighthouse.checks import assertions
from lighthouse.checks.context import CheckContext
from lighthouse.checks.errors import CheckError, ErrorCode
from lighthouse.checks.http import (
    HttpConfig,
    assess,
    check_latency,
    exchange,
    parse_http_config,
    parse_max_latency,
    read_text,
)
from lighthouse.checks.keys import reject_unknown, text
from lighthouse.checks.progress import Progress
from lighthouse.checks.tcp import parse_timeout

KEYS = ("steps", "max_latency_ms")
STEP_KEYS = (
    "name",
    "method",
    "url",
    "headers",
    "body",
    "expected_status",
    "keyword",
    "json_path",
    "json_expected",
    "follow_redirects",
    "max_redirects",
    "extract",
)
MAX_STEPS = 20
_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
_VALUE_LIMIT = 8192  # of one extracted value


@dataclass(slots=True)
class Step:
    name: str
    http: HttpConfig | None  # parsed once (no templates in it)
    template: dict[str, Any]  # the step's http config as written (parsed per run if http None)
    extract: dict[str, tuple[str, str]] = field(default_factory=dict)  # var -> (kind, what)


@dataclass(slots=True)
class CanaryConfig:
    steps: list[Step]
    max_latency_ms: float | None
    timeout_s: float


def _variables(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_VAR.findall(value))
    if isinstance(value, dict):
        return set().union(*(_variables(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_variables(v) for v in value)) if value else set()
    return set()


def _render(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: values[m[1]], value)
    if isinstance(value, dict):
        return {k: _render(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, values) for v in value]
    return value


def _extract(raw: Any, where: str) -> dict[str, tuple[str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CheckError(
            ErrorCode.CONFIG,
            f"{where}.extract: expected a mapping of name to {{json_path: ...}} or {{header: ...}}",
        )
    out = {}
    for var, spec in raw.items():
        if not isinstance(var, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", var):
            raise CheckError(ErrorCode.CONFIG, f"{where}.extract: {var!r} is not a variable name")
        if (
            not isinstance(spec, dict)
            or len(spec) != 1
            or not (set(spec) <= {"json_path", "header"})
            or not isinstance(next(iter(spec.values())), str)
        ):
            raise CheckError(
                ErrorCode.CONFIG,
                f"{where}.extract.{var}: expected {{json_path: '$.a.b'}} or {{header: 'Name'}}",
            )
        kind, what = next(iter(spec.items()))
        if kind == "json_path":
            assertions.parse_json_path(what)
        out[var] = (kind, what)
    return out


def parse_canary_config(cfg: dict[str, Any], ctx: CheckContext) -> CanaryConfig:
    reject_unknown(cfg, KEYS, "canary")
    raw_steps = cfg.get("steps")
    if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_STEPS:
        raise CheckError(ErrorCode.CONFIG, f"steps: expected a list of 1-{MAX_STEPS} steps")
    timeout = parse_timeout(cfg, ctx)
    known: set[str] = set()
    steps = []
    for i, raw in enumerate(raw_steps, 1):
        where = f"steps[{i - 1}]"
        if not isinstance(raw, dict):
            raise CheckError(ErrorCode.CONFIG, f"{where}: expected a mapping (method, url, ...)")
        try:
            reject_unknown(
                {k: v for k, v in raw.items() if k != "timeout_s"}, STEP_KEYS, "canary step"
            )
            if "timeout_s" in raw:
                raise CheckError(ErrorCode.CONFIG, "timeout_s: set it once, for the whole run")
            name = text(raw, "name", required=False, default=f"step {i}", limit=80)
        except CheckError as exc:
            raise CheckError(ErrorCode.CONFIG, f"{where}.{exc.message}") from None
        template = {k: v for k, v in raw.items() if k not in ("name", "extract")}
        template["timeout_s"] = timeout
        used = _variables(template)
        missing = sorted(used - known)
        if missing:
            raise CheckError(
                ErrorCode.CONFIG,
                f"{where}: {{{{{missing[0]}}}}} is not extracted by an earlier step",
            )
        try:
            # Parsed now even when templated (with placeholders): a bad key fails at load.
            parsed = parse_http_config(_render(template, dict.fromkeys(used, "x")), ctx)
        except CheckError as exc:
            raise CheckError(ErrorCode.CONFIG, f"{where}.{exc.message}") from None
        extract = _extract(raw.get("extract"), where)
        known |= set(extract)
        steps.append(Step(str(name), None if used else parsed, template, extract))
    return CanaryConfig(steps, parse_max_latency(cfg), timeout)


async def check_canary(cfg: CanaryConfig, ctx: CheckContext, progress: Progress) -> None:
    values: dict[str, str] = {}
    for i, step in enumerate(cfg.steps, 1):
        label = f"step {i}" + (f" ({step.name})" if step.name != f"step {i}" else "")
        progress.step = label
        mark = time.perf_counter()
        try:
            http = step.http
            if http is None:
                try:
                    http = parse_http_config(_render(step.template, values), ctx)
                except CheckError as exc:
                    raise CheckError(ErrorCode.STEP, f"after substitution: {exc.message}") from None
            needs_body = (
                bool(step.extract) or http.keyword is not None or http.json_path is not None
            )
            fetched = await exchange(http, ctx, progress, None if needs_body else ctx.snippet_bytes)
            progress.phase = "assert"
            assess(http, ctx, progress, fetched)
            if step.extract:
                _take(step, fetched, ctx, progress, values)
        except CheckError as exc:
            # Extracted values are often session tokens: never store one in a message or snippet.
            if progress.snippet is not None:
                progress.snippet = _scrub(progress.snippet.decode("utf-8", "replace"),
                                          values).encode()
            raise CheckError(exc.code, _scrub(f"{label}: {exc.message}", values)) from None
        progress.timings[f"step{i}"] = progress.ms_since(mark)
    progress.step = None
    check_latency(cfg.max_latency_ms, progress)


def _scrub(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        if len(value) >= 4:  # shorter ones ("ok", "1") are not secrets and would mangle text
            text = text.replace(value, f"{{{{{name}}}}}")
    return text


def _take(
    step: Step, fetched: Any, ctx: CheckContext, progress: Progress, values: dict[str, str]
) -> None:
    doc: Any = assertions.MISSING
    for var, (kind, what) in step.extract.items():
        if kind == "header":
            found = fetched.headers.get(what)
            if found is None:
                raise CheckError(ErrorCode.ASSERTION, f"extract {var}: no {what!r} header")
            value = found
        else:
            if doc is assertions.MISSING:
                body, truncated = read_text(fetched, ctx, progress)
                if truncated:
                    raise CheckError(
                        ErrorCode.BODY_TOO_LARGE, f"extract {var}: body larger than the read cap"
                    )
                doc = assertions.load_json(body)
            got = assertions.check_value(doc, what)
            value = got if isinstance(got, str) else json.dumps(got)
        if len(value) > _VALUE_LIMIT or any(c in value for c in "\r\n\x00"):
            raise CheckError(
                ErrorCode.ASSERTION,
                f"extract {var}: value is not one line of at most {_VALUE_LIMIT} characters",
            )
        values[var] = value
