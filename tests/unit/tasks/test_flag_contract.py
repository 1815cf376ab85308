"""Every runbook keeps the flag contract: -n is --dry-run, -y is --yes, no other short flag,
no positional argument, and `invoke TASK --help` prints help without running the task."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest
from invoke import Collection, Program
from lighthouse_ops.tasks.flags import SHORT_FLAGS

ROOT = Path(__file__).resolve().parents[3]


def _namespace() -> Collection:
    spec = importlib.util.spec_from_file_location("lighthouse_tasks", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ns


NS = _namespace()
TASKS = sorted(NS.task_names)


def test_every_task_is_listed():
    assert len(TASKS) >= 27  # a task that escaped the collection would escape this test


@pytest.mark.parametrize("name", TASKS)
def test_flags(name):
    task = NS[name]
    for arg in task.get_arguments():
        shorts = [n for n in arg.names if len(n) == 1]
        attr = arg.attr_name or arg.name
        want = [SHORT_FLAGS[attr]] if attr in SHORT_FLAGS else []
        assert shorts == want, f"{name} --{arg.name}: short flags {shorts}, want {want}"
        assert not arg.positional, f"{name}: {arg.name} is positional"
        assert arg.help, f"{name} --{arg.name} has no help text"


@pytest.mark.parametrize("name", TASKS)
def test_help_prints_help_and_runs_nothing(name, monkeypatch, capsys):
    ran = []
    body = NS[name].body
    spy = functools.wraps(body)(lambda *a, **k: ran.append(name))  # same signature, no work
    monkeypatch.setattr(NS[name], "body", spy)
    Program(namespace=NS, version="0").run(["invoke", name, "--help"], exit=False)
    out = capsys.readouterr().out
    assert ran == [] and f"Usage: invoke [--core-opts] {name}" in out


def test_a_missing_required_option_is_a_usage_error_not_a_none(capsys):
    from invoke import Exit

    with pytest.raises(Exit) as err:
        NS["aws.snapshot"](None)
    assert err.value.code == 2 and "--volume" in str(err.value.message)
