"""The plan/confirm/execute engine: dry-run changes nothing, refusal to confirm changes
nothing, failures name the state left and how to continue."""

from __future__ import annotations

import io

import pytest
from lighthouse_ops.aws.runbook import (
    Plan,
    RunbookAborted,
    RunbookFailed,
    Step,
    TerminalConsole,
    execute,
)

from tests.integration.aws.fakes import RecordingConsole


def _plan(calls: list[str], fail_at: int | None = None) -> Plan:
    def action(n: int):
        def run() -> str:
            calls.append(f"step{n}")
            if n == fail_at:
                raise RuntimeError("boom")
            return f"did {n}"
        return run

    return Plan("demo", facts=["fact A"], steps=[
        Step(f"step {n}", action(n), state_if_fails=f"state after {n - 1}",
             resume=lambda n=n: f"resume {n}") for n in (1, 2, 3)])


def test_dry_run_shows_plan_and_runs_nothing():
    calls: list[str] = []
    console = RecordingConsole(answer=True)
    outcome = execute(_plan(calls), console, dry_run=True, yes=False)
    assert calls == [] and outcome.dry_run and console.asked == []
    assert "Plan for demo" in console.text and "1. step 1" in console.text
    assert "dry run, nothing changed" in console.text


def test_declined_confirmation_runs_nothing():
    calls: list[str] = []
    with pytest.raises(RunbookAborted):
        execute(_plan(calls), RecordingConsole(answer=False), dry_run=False, yes=False)
    assert calls == []


def test_yes_skips_the_question_and_summarises():
    calls: list[str] = []
    console = RecordingConsole(answer=False)
    outcome = execute(_plan(calls), console, dry_run=False, yes=True,
                      summary=lambda: ["all good"])
    assert calls == ["step1", "step2", "step3"] and console.asked == []
    assert [r for _t, r in outcome.results] == ["did 1", "did 2", "did 3"]
    assert "[2/3] step 2" in console.text and "all good" in console.text


def test_failure_names_step_state_and_how_to_continue():
    calls: list[str] = []
    with pytest.raises(RunbookFailed) as err:
        execute(_plan(calls, fail_at=2), RecordingConsole(), dry_run=False, yes=True)
    assert calls == ["step1", "step2"]
    msg = str(err.value)
    assert "step 2 failed: step 2" in msg and "boom" in msg
    assert "state left: state after 1" in msg and "to continue: resume 2" in msg
    assert "step 1: did 1" in msg


def test_terminal_console_without_tty_refuses_and_says_use_yes():
    out = io.StringIO()
    assert TerminalConsole(out=out, stdin=io.StringIO("y\n")).confirm("Go?") is False
    assert "--yes" in out.getvalue()
