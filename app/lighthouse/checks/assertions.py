"""Response assertions: expected status codes, body keyword, a small JSON-path subset."""

from __future__ import annotations

import json
import re
from typing import Any

from lighthouse.checks.errors import CheckError, ErrorCode

_MISSING = object()


def parse_expected_status(spec: Any, where: str = "expected_status") -> frozenset[int]:
    """[200, "2xx", "200-204"] -> the set of accepted codes."""
    items = spec if isinstance(spec, list | tuple) else [spec]
    codes: set[int] = set()
    for item in items:
        text = str(item).strip().lower()
        if re.fullmatch(r"[1-5]xx", text):
            base = int(text[0]) * 100
            codes.update(range(base, base + 100))
        elif m := re.fullmatch(r"(\d{3})\s*-\s*(\d{3})", text):
            lo, hi = int(m[1]), int(m[2])
            if lo > hi:
                raise CheckError(ErrorCode.CONFIG, f"{where}: empty range {text!r}")
            codes.update(range(lo, hi + 1))
        elif re.fullmatch(r"\d{3}", text):
            codes.add(int(text))
        else:
            raise CheckError(ErrorCode.CONFIG, f"{where}: {item!r} is not a code, 'Nxx' or 'A-B'")
    if not codes or not all(100 <= c <= 599 for c in codes):
        raise CheckError(ErrorCode.CONFIG, f"{where}: codes must be within 100-599")
    return frozenset(codes)


_TOKEN = re.compile(r"\.([A-Za-z_$][\w$-]*)|\[(-?\d+)\]|\[['\"]([^'\"]*)['\"]\]|\.(\d+)")


def parse_json_path(path: str) -> list[str | int]:
    """'$.a.b[0]', 'a.b.0' or "$['a b'][1]" -> ['a', 'b', 0]. Raises CheckError(CONFIG)."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    if text and not text.startswith((".", "[")):
        text = "." + text
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise CheckError(
                ErrorCode.CONFIG, f"json_path {path!r}: cannot parse at {text[pos:]!r}"
            )
        name, index, quoted, dotted_index = m.groups()
        if name is not None:
            steps.append(name)
        elif quoted is not None:
            steps.append(quoted)
        else:
            steps.append(int(index if index is not None else dotted_index))
        pos = m.end()
    return steps


def json_lookup(doc: Any, steps: list[str | int]) -> Any:
    """The value at steps, or _MISSING."""
    node = doc
    for step in steps:
        if isinstance(step, int) and isinstance(node, list):
            if not -len(node) <= step < len(node):
                return _MISSING
            node = node[step]
        elif isinstance(node, dict):
            key = str(step)
            if key not in node:
                return _MISSING
            node = node[key]
        else:
            return _MISSING
    return node


def _matches(value: Any, expected: Any) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool):
        if value is expected:  # JSON true is not 1
            return True
    elif value == expected:
        return True
    # Operators often write "true"/"42" for JSON true/42: compare JSON spellings.
    if isinstance(expected, str) and not isinstance(value, str):
        return json.dumps(value) == expected
    return False


def check_json(body: str, path: str, expected: Any = _MISSING) -> None:
    """Raise CheckError(ASSERTION) unless body is JSON with path present (and equal to expected)."""
    check_value(load_json(body), path, expected)


def load_json(body: str) -> Any:
    """The JSON document a target sent; CheckError(ASSERTION) when it is not one."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CheckError(ErrorCode.ASSERTION, f"body is not JSON: {exc}") from None
    except RecursionError:  # a target can nest [[[[... deeper than the parser's stack
        raise CheckError(ErrorCode.ASSERTION, "body is JSON nested too deeply to read") from None


def check_value(doc: Any, path: str, expected: Any = _MISSING) -> Any:
    """The value at path in doc (raise CheckError(ASSERTION) if absent or not expected)."""
    value = json_lookup(doc, parse_json_path(path))
    if value is _MISSING:
        raise CheckError(ErrorCode.ASSERTION, f"json_path {path!r} not found")
    if expected is not _MISSING and not _matches(value, expected):
        shown = json.dumps(value)[:200]
        raise CheckError(
            ErrorCode.ASSERTION, f"json_path {path!r} is {shown}, expected {json.dumps(expected)}"
        )
    return value


MISSING = _MISSING
