"""Config that would break at run time is refused at load, naming the key; the CLI too."""

from __future__ import annotations

import socket

import pytest
from lighthouse import cli, config
from lighthouse.checks.context import MAX_TIMEOUT_S

pytestmark = pytest.mark.unit
DSN = {"LIGHTHOUSE_DATABASE__DSN": "postgresql:///x"}


@pytest.mark.parametrize(("var", "value", "key"), [
    ("CHECKS__DEFAULT_TIMEOUT_S", str(MAX_TIMEOUT_S + 1), "checks.default_timeout_s"),
    ("HTTP__PORT", "70000", "http.port"),
    ("HTTP__LISTEN", "not an address", "http.listen"),
    ("SCHEDULER__MAX_CONCURRENCY", "1000000", "scheduler.max_concurrency"),
    ("CHECKS__USER_AGENT", "a\r\nX-Injected: 1", "checks.user_agent"),
    ("CHECKS__MAX_BODY_BYTES", "10", "checks.max_body_bytes"),
])
def test_out_of_bounds_values_name_the_key(var, value, key):
    with pytest.raises(config.ConfigError) as err:
        config.load(None, env={**DSN, f"LIGHTHOUSE_{var}": value})
    assert key in str(err.value)


def test_the_defaults_are_within_the_bounds():
    config.load(None, env=DSN)


@pytest.mark.parametrize("argv", [
    ["check", "http://127.0.0.1/", "--timeout", "0"],
    ["check", "http://127.0.0.1/", "--timeout", "600"],
    ["check", "http://127.0.0.1/", "--allow", "notacidr"],
])
def test_cli_refuses_bad_values_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err) and err[-1].startswith("usage:") is False


def test_a_port_in_use_is_a_one_line_start_up_error(capsys, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("LIGHTHOUSE_DATABASE__DSN", "postgresql://127.0.0.1:1/none")
        monkeypatch.setenv("LIGHTHOUSE_HTTP__PORT", str(port))
        assert cli.main(["run"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"cannot start: http.listen/http.port: cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
