"""Plans for destructive runbooks: shown first, confirmed unless --yes, skipped with --dry-run."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO


class Aborted(RuntimeError):
    """The operator declined, or no one could be asked (no TTY and no --yes)."""


@dataclass
class Plan:
    title: str
    steps: list[str] = field(default_factory=list)
    destructive: bool = True

    def add(self, step: str) -> None:
        self.steps.append(step)

    def render(self) -> str:
        lines = [f"Plan: {self.title}"]
        lines += [f"  {i}. {s}" for i, s in enumerate(self.steps, 1)]
        return "\n".join(lines)

    def approve(self, *, yes: bool, dry_run: bool, out: TextIO | None = None,
                ask: Callable[[str], str] | None = None, interactive: bool | None = None) -> bool:
        """Prints the plan; returns True to go ahead, False for a dry run; raises Aborted."""
        out = out or sys.stdout
        print(self.render(), file=out, flush=True)
        if dry_run:
            print("dry run: nothing was changed", file=out, flush=True)
            return False
        if yes or not self.destructive:
            return True
        if interactive is None:
            interactive = sys.stdin.isatty()
        if not interactive and ask is None:
            raise Aborted("refusing to run a destructive plan without a terminal; "
                          "re-run with --yes to confirm, or --dry-run to only show it")
        answer = (ask or input)("Proceed? Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            raise Aborted("not confirmed; nothing was changed")
        return True


@contextmanager
def step(name: str, /, out: TextIO | None = None, **fields: object) -> Iterator[dict[str, object]]:
    """Progress for a long step as key=value lines; the yielded dict adds fields to the end line."""
    out = out or sys.stderr
    extra: dict[str, object] = {}
    kv = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"step={name} status=start {kv}".rstrip(), file=out, flush=True)
    t0 = time.monotonic()
    try:
        yield extra
    except BaseException as exc:
        print(f"step={name} status=failed seconds={time.monotonic() - t0:.1f} "
              f"error={type(exc).__name__}", file=out, flush=True)
        raise
    done = " ".join(f"{k}={v}" for k, v in extra.items())
    print(f"step={name} status=done seconds={time.monotonic() - t0:.1f} {done}".rstrip(),
          file=out, flush=True)
