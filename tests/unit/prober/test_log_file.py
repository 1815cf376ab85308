"""logging.file: `lighthouse run` writes its lines to a file a shipper reads, group-readable,
reopened after logrotate moves it; other commands and bad settings never touch it."""

from __future__ import annotations

import logging
import os
import stat

import pytest
from lighthouse import cli, config, logs
from lighthouse.logs import event


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in saved:
            handler.close()
    root.handlers[:], root.level = saved, level


def test_lines_go_to_the_file_readable_by_the_group_and_survive_rotation(
        tmp_path, restore_logging):
    path = tmp_path / "prober.log"
    old_umask = os.umask(0o077)  # the unit's UMask
    try:
        logs.setup("INFO", "kv", str(path))
        event(logging.getLogger("lighthouse.test"), "first",
              target="https://user:hunter2@example.test/x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        # logrotate (no copytruncate): the file is renamed, the next line opens a new one
        path.rename(tmp_path / "prober.log.1")
        event(logging.getLogger("lighthouse.test"), "second")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old_umask)
    old = (tmp_path / "prober.log.1").read_text()
    assert "msg=first" in old and "hunter2" not in old  # redacted like every other line
    assert "msg=second" in path.read_text() and "msg=first" not in path.read_text()


def test_json_lines_in_the_file_too(tmp_path, restore_logging):
    path = tmp_path / "prober.log"
    logs.setup("INFO", "json", str(path))
    event(logging.getLogger("lighthouse.test"), "hello", n=1)
    assert '"msg": "hello"' in path.read_text()


def _config(tmp_path, log_file: str):
    p = tmp_path / "prober.yaml"
    p.write_text("database:\n  dsn: postgresql://u@127.0.0.1:1/db\n"
                 f"logging:\n  file: {log_file}\n")
    return p


def test_run_refuses_a_file_it_cannot_open_before_touching_anything(tmp_path, capsys,
                                                                   restore_logging):
    target = tmp_path / "missing-dir" / "prober.log"
    code = cli.main(["--config", str(_config(tmp_path, str(target))), "run"])
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"logging.file: cannot open {target}: No such file or directory" in err


def test_only_run_writes_the_file(tmp_path, restore_logging):
    target = tmp_path / "prober.log"
    cli.main(["--config", str(_config(tmp_path, str(target))), "check", "tcp://127.0.0.1:1",
              "--allow", "127.0.0.1"])
    assert not target.exists()


def test_a_relative_path_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match="logging.file: an absolute path"):
        config.load(_config(tmp_path, "prober.log"), env={})
