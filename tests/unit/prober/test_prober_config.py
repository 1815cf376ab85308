"""Config: file + env overrides; every error names the key and where it came from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lighthouse import config

ROOT = Path(__file__).resolve().parents[3]
DSN = {"LIGHTHOUSE_DATABASE__DSN": "postgresql://u@h/db"}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "prober.yaml"
    p.write_text(text)
    return p


def test_defaults_and_file_values(tmp_path):
    p = write(tmp_path, "database:\n  dsn: postgresql://x@y/z\nscheduler:\n  max_concurrency: 7\n"
                        "checks:\n  ssrf_allow: [127.0.0.1/32]\n")
    cfg = config.load(p, env={})
    assert cfg.database.dsn == "postgresql://x@y/z"
    assert cfg.scheduler.max_concurrency == 7
    assert cfg.checks.ssrf_allow == ["127.0.0.1/32"]
    assert cfg.alerting.failure_threshold == 3 and cfg.alerting.success_threshold == 2
    assert cfg.storage.flush_interval_s == 1.0


def test_env_overrides_file_with_typed_values(tmp_path):
    p = write(tmp_path, "database:\n  dsn: postgresql://file/db\nhttp:\n  port: 8080\n")
    cfg = config.load(p, env={"LIGHTHOUSE_DATABASE__DSN": "postgresql://env/db",
                              "LIGHTHOUSE_HTTP__PORT": "9100",
                              "LIGHTHOUSE_ALERTING__ENABLED": "false",
                              "LIGHTHOUSE_CHECKS__SSRF_ALLOW": "[10.0.0.0/8, 127.0.0.1]",
                              "LIGHTHOUSE_ALERTING__TELEGRAM_BOT_TOKEN": "0123:on",
                              "OTHER_VAR": "ignored"})
    assert cfg.database.dsn == "postgresql://env/db"
    assert cfg.http.port == 9100
    assert cfg.alerting.enabled is False
    assert cfg.checks.ssrf_allow == ["10.0.0.0/8", "127.0.0.1"]
    assert cfg.alerting.telegram_bot_token == "0123:on"  # noqa: S105 - strings keep text


@pytest.mark.parametrize("text, needle", [
    ("scheduler:\n  max_concurency: 5\n", "scheduler.max_concurency"),
    ("schedular:\n  max_concurrency: 5\n", "'schedular'"),
    ("scheduler:\n  max_concurrency: lots\n", "scheduler.max_concurrency: expected an integer"),
    ("alerting:\n  enabled: maybe\n", "alerting.enabled: expected true or false"),
    ("storage:\n  spool_fsync: sometimes\n", "storage.spool_fsync: must be one of batch, off"),
    ("storage:\n  batch_size: 0\n", "storage.batch_size: must be greater than 0"),
    ("checks:\n  ssrf_allow: [not-a-cidr]\n", "checks.ssrf_allow[0]"),
    ("alerting:\n  slack_base_url: hooks.slack.com\n", "alerting.slack_base_url"),
    ("- just\n- a list\n", "top level must be a mapping"),
    ("database: {dsn: [unclosed\n", "not valid YAML"),
])
def test_file_errors_name_key_and_file(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as err:
        config.load(p, env=DSN)
    assert str(p) in str(err.value)
    assert needle in str(err.value)


def test_unknown_key_suggests_the_close_one(tmp_path):
    p = write(tmp_path, "scheduler:\n  max_concurency: 5\n")
    with pytest.raises(config.ConfigError, match="did you mean 'max_concurrency'"):
        config.load(p, env=DSN)


def test_env_errors_name_the_variable():
    with pytest.raises(config.ConfigError, match=r"environment LIGHTHOUSE_HTTP__PROT: "
                                                 r"unknown key http.prot"):
        config.load(None, env={**DSN, "LIGHTHOUSE_HTTP__PROT": "1"})
    with pytest.raises(config.ConfigError, match="LIGHTHOUSE_HTTP__PORT: http.port: expected"):
        config.load(None, env={**DSN, "LIGHTHOUSE_HTTP__PORT": "eighty"})


def test_dsn_is_required_unless_the_command_needs_no_database(tmp_path):
    p = write(tmp_path, "http:\n  port: 8080\n")
    with pytest.raises(config.ConfigError, match="database.dsn is required"):
        config.load(p, env={})
    assert config.load(p, env={}, require_dsn=False).http.port == 8080


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(config.ConfigError, match="cannot read config file"):
        config.load(tmp_path / "nope.yaml", env=DSN)


def test_docs_and_example_cover_every_key():
    doc = (ROOT / "docs" / "prober.md").read_text()
    example = (ROOT / "app" / "lighthouse" / "prober.example.yaml").read_text()
    documented = set(re.findall(r"`([a-z]+\.[a-z0-9_]+)`", doc))
    missing = [k for k in config.all_keys() if k not in documented]
    assert not missing, f"docs/prober.md lacks {missing}"
    for key in config.all_keys():
        assert re.search(rf"^\s*#?\s*{key.split('.')[1]}:", example, re.M), key


def test_example_config_loads():
    p = ROOT / "app" / "lighthouse" / "prober.example.yaml"
    cfg = config.load(p, env={})
    assert cfg.source == str(p)
