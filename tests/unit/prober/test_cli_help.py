"""The CLI explains itself: every option has help, exit codes are in --help, bad values are
one-line usage errors."""

from __future__ import annotations

import argparse

import pytest
from lighthouse import cli

pytestmark = pytest.mark.unit


def _parsers(parser: argparse.ArgumentParser, path: str = "lighthouse"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


@pytest.mark.parametrize(("path", "parser"), list(_parsers(cli.build_parser())))
def test_every_option_has_help(path, parser):
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        assert action.help, f"{path}: {'/'.join(action.option_strings) or action.dest} has no help"


def test_exit_codes_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "exit codes: 0 ok" in capsys.readouterr().out


@pytest.mark.parametrize("days", ["0", "-1", "x", "99999"])
def test_report_days_out_of_range_is_a_usage_error(days, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "--days", days])
    assert exit_.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
