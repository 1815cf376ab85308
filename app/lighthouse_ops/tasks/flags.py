"""One meaning per flag in every runbook, and `--help` that never runs one.

invoke's default gives each option the first free letter of its name, so `-y` meant `--yes`
in some tasks and `--dry-run` in others. Every task here is made with `runbook` instead of
`@task`: no automatic short flags; `-n` is always `--dry-run` and `-y` always `--yes` (the
only short flags there are); no positional arguments, so `invoke TASK --help` prints help
instead of taking "--help" as an argument's value and running the task.
"""

from __future__ import annotations

import inspect
from typing import Any

from invoke import Exit, Task, task

SHORT_FLAGS = {"dry_run": "n", "yes": "y"}  # the contract, defined here only


class RunbookTask(Task):
    """A task whose options follow the contract; options without a default are required."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        params = list(inspect.signature(self.body).parameters.values())[1:]  # after the context
        missing = [p.name for p in params
                   if p.default is inspect.Parameter.empty and kwargs.get(p.name) is None]
        if missing and not args[1:]:
            flags = ", ".join("--" + m.replace("_", "-") for m in missing)
            raise Exit(f"missing required option {flags} (see --help)", code=2)
        return super().__call__(*args, **kwargs)

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Any]:
        # invoke pops each option's help out of self.help while building arguments, so a
        # second parse in one process (tests, an embedding Program) would show no help.
        saved = dict(self.help)
        try:
            return super().get_arguments(ignore_unknown_help)
        finally:
            self.help = saved

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(name)
        if short is not None:
            opts["names"] = [*opts["names"], short]
        return opts


def runbook(*args: Any, **kwargs: Any) -> Any:
    """invoke's @task with the flag contract above."""
    if kwargs.get("positional"):
        raise ValueError("runbooks take options only (--help must never be an argument)")
    kwargs.update(klass=RunbookTask, auto_shortflags=False, positional=[])
    return task(*args, **kwargs)
