"""A small engine for destructive runbooks: show the plan, confirm, run steps, summarise.

Every step says what state things are in if it fails and how to continue from there, so a
failure message is specific ("instance stopped with type t4g.micro; run ...") rather than a
traceback. Planning is read-only: refusals (shrinking a volume, an unknown instance type)
happen before anything changes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TextIO

log = logging.getLogger(__name__)

Text = str | Callable[[], str]


def _text(value: Text) -> str:
    return value() if callable(value) else value


class RunbookRefused(Exception):
    """Planning found a reason not to act; nothing was changed."""


class RunbookAborted(Exception):
    """The operator declined the plan; nothing was changed."""


class RunbookFailed(Exception):
    """A step failed; the message says what state was left and how to continue."""

    def __init__(self, runbook: str, step_no: int, step: str, error: BaseException,
                 state: str, resume: str, done: list[tuple[str, str]]):
        self.runbook, self.step_no, self.step, self.error = runbook, step_no, step, error
        self.state, self.resume, self.done = state, resume, done
        lines = [f"{runbook}: step {step_no} failed: {step}", f"  error: {error}"]
        if done:
            lines.append("  completed before the failure:")
            lines += [f"    - {title}: {result}" for title, result in done]
        lines += [f"  state left: {state}", f"  to continue: {resume}"]
        super().__init__("\n".join(lines))


class Console(Protocol):
    def info(self, message: str) -> None: ...
    def progress(self, message: str) -> None: ...
    def confirm(self, question: str) -> bool: ...


class TerminalConsole:
    """Plain stdout console; refuses to confirm without a terminal (use --yes there)."""

    def __init__(self, out: TextIO | None = None, stdin: TextIO | None = None):
        self.out = out or sys.stdout
        self.stdin = stdin or sys.stdin

    def info(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def progress(self, message: str) -> None:
        print(f"  ... {message}", file=self.out, flush=True)

    def confirm(self, question: str) -> bool:
        if not self.stdin.isatty():
            self.info(f"{question} [no terminal to ask on: pass --yes to proceed]")
            return False
        print(f"{question} [y/N] ", end="", file=self.out, flush=True)
        return self.stdin.readline().strip().lower() in ("y", "yes")


@dataclass
class Step:
    title: str
    run: Callable[[], str | None]
    state_if_fails: Text
    resume: Text


@dataclass
class Plan:
    runbook: str
    facts: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"Plan for {self.runbook}:"]
        lines += [f"  {fact}" for fact in self.facts]
        lines += [f"  {n}. {s.title}" for n, s in enumerate(self.steps, 1)]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class Outcome:
    runbook: str
    dry_run: bool
    results: list[tuple[str, str]] = field(default_factory=list)
    elapsed_s: float = 0.0
    summary: list[str] = field(default_factory=list)

    def render(self) -> str:
        if self.dry_run:
            return f"{self.runbook}: dry run, nothing changed."
        lines = [f"{self.runbook}: done in {self.elapsed_s:.1f}s"]
        lines += [f"  - {title}: {result}" for title, result in self.results]
        lines += [f"  {line}" for line in self.summary]
        return "\n".join(lines)


def execute(plan: Plan, console: Console, *, dry_run: bool, yes: bool,
            summary: Callable[[], list[str]] | None = None,
            now: Callable[[], float] = time.monotonic) -> Outcome:
    """Show the plan; unless dry-run, confirm (or --yes) and run the steps in order."""
    console.info(plan.render())
    if dry_run:
        outcome = Outcome(plan.runbook, dry_run=True)
        console.info(outcome.render())
        return outcome
    if not plan.steps:
        console.info(f"{plan.runbook}: nothing to do.")
        return Outcome(plan.runbook, dry_run=False)
    if not yes and not console.confirm(f"Run these {len(plan.steps)} steps?"):
        raise RunbookAborted(f"{plan.runbook}: not confirmed; nothing changed.")
    started = now()
    done: list[tuple[str, str]] = []
    for number, step in enumerate(plan.steps, 1):
        console.info(f"[{number}/{len(plan.steps)}] {step.title}")
        log.info("runbook=%s step=%d title=%r", plan.runbook, number, step.title)
        try:
            result = step.run() or "ok"
        except Exception as exc:  # every failure is reported with state and how to continue
            log.warning("runbook=%s step=%d failed error=%r", plan.runbook, number, str(exc))
            raise RunbookFailed(plan.runbook, number, step.title, exc,
                                _text(step.state_if_fails), _text(step.resume), done) from exc
        done.append((step.title, result))
    outcome = Outcome(plan.runbook, dry_run=False, results=done, elapsed_s=now() - started,
                      summary=summary() if summary else [])
    console.info(outcome.render())
    return outcome
