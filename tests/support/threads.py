"""Running one callable from several threads at once, for the race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_at_once(fn: Callable[[], Any], n: int, timeout: float = 60
                ) -> tuple[list[Any], list[BaseException]]:
    """Starts `n` threads running `fn`, waits up to `timeout` for each; returns what they
    returned and what they raised (each thread adds to one of the two)."""
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's asserts
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results, errors
