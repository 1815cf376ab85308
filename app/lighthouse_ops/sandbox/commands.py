"""Running external commands with errors that say which command failed and what it printed."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from lighthouse_ops.sandbox.errors import SandboxError

log = logging.getLogger("lighthouse_ops.sandbox")


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_text: str | None = None,
    timeout: float | None = 600,
) -> subprocess.CompletedProcess[str]:
    """Run argv, capture its output; raise SandboxError with stderr when it fails and check."""
    log.debug("run cmd=%r", list(argv))
    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SandboxError(f"command not found: {argv[0]} (install it: scripts/bootstrap)") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"command timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise SandboxError(f"command failed (exit {proc.returncode}): {' '.join(argv)}\n{detail}")
    return proc
