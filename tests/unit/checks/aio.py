"""Run a coroutine on a private event loop.

asyncio.run() ends with set_event_loop(None), after which asyncio.get_event_loop() raises in
the main thread; tests elsewhere in the same pytest process (Pulumi mocks) rely on it creating
a loop. A private loop leaves that global state as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
