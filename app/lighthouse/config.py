"""Prober configuration: one YAML file plus environment overrides, validated at start-up.

Every key has a default except `database.dsn`. An environment variable
`LIGHTHOUSE_<SECTION>__<KEY>` (e.g. `LIGHTHOUSE_DATABASE__DSN`) overrides the file; its value is
read as YAML so numbers, booleans and lists work (`LIGHTHOUSE_CHECKS__SSRF_ALLOW='[127.0.0.1/32]'`).
Errors name the key and where it came from (the file, or the environment variable).
docs/prober.md lists every key; a unit test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lighthouse.checks.context import MAX_TIMEOUT_S, MIN_TIMEOUT_S
from lighthouse.db.compaction import MIN_COMPACT_AFTER

DEFAULT_PATH = Path("/etc/lighthouse/prober.yaml")
ENV_PREFIX = "LIGHTHOUSE_"


class ConfigError(ValueError):
    """A configuration problem; the message names the key and the file or variable."""


class StartupError(ConfigError):
    """Valid configuration the machine refuses at start-up (a port in use); names the key."""


@dataclass(slots=True)
class DatabaseConfig:
    dsn: str = ""  # required; libpq URI or key=value string
    pool_min: int = 1  # connections kept open for the web server / alert recording
    pool_max: int = 4
    connect_timeout_s: float = 5.0
    apply_migrations: bool = False  # `lighthouse run` migrates first only if true
    schema_wait_s: float = 60.0  # wait this long for an older schema to be migrated
    maintenance_interval_s: float = 300.0  # partitions, retention, rollups; 0 = leave to others
    compact_after_days: float = 2.0  # raw checks older than this are packed (db.compaction)


@dataclass(slots=True)
class ChecksConfig:
    ssrf_allow: list[str] = field(default_factory=list)  # CIDRs allowed despite being private
    max_body_bytes: int = 65536  # read cap per response (assertions see at most this)
    default_timeout_s: float = 10.0  # when a monitor sets no timeout_s
    user_agent: str = "lighthouse-prober/0.1"


@dataclass(slots=True)
class SchedulerConfig:
    max_concurrency: int = 500  # checks in flight at once (see docs/benchmarks.md)
    reload_poll_s: float = 60.0  # full reload of subscriptions (fallback to LISTEN/NOTIFY)
    shutdown_grace_s: float = 10.0  # SIGTERM: in-flight checks get this long to finish
    max_queue: int = 100000  # due checks waiting for a worker; beyond this, due checks are skipped
    stall_exit_s: float = 30.0  # event loop or scheduler stuck this long: exit 70 (0 = never)


@dataclass(slots=True)
class StorageConfig:
    batch_size: int = 500  # rows per COPY
    flush_interval_s: float = 1.0  # longest a result waits in memory
    spool_dir: str = "/var/lib/lighthouse/spool"
    spool_max_bytes: int = 256 * 1024 * 1024  # beyond this, results are dropped and counted
    spool_segment_bytes: int = 8 * 1024 * 1024
    spool_min_free_bytes: int = 64 * 1024 * 1024  # stop spooling before the disk is this full
    monitor_cache: str = ""  # last known monitor set ("": monitors.json beside spool_dir)
    spool_fsync: str = "batch"  # "batch": fsync after each spooled batch; "off": leave it to the OS
    retry_interval_s: float = 2.0  # how often to try the database again while it is down
    max_buffered_rows: int = 100_000  # results waiting in memory; the oldest beyond go to the spool


@dataclass(slots=True)
class AlertingConfig:
    enabled: bool = True
    failure_threshold: int = 3  # consecutive failed checks before "down"
    success_threshold: int = 2  # consecutive good checks before "up" again
    flap_window_s: float = 3600.0
    flap_max_transitions: int = 4  # more state changes than this in the window: flapping
    high_latency_ms: int = 0  # 0 = off unless a monitor sets alert_latency_ms
    cert_warn_days: int = 14  # certificate_expiry alert when fewer days left
    max_attempts: int = 4  # delivery attempts per channel
    backoff_s: float = 1.0  # first retry delay; doubles per attempt
    backoff_max_s: float = 60.0
    timeout_s: float = 10.0  # per delivery attempt
    webhook_signature_header: str = "X-Lighthouse-Signature"
    slack_base_url: str = "https://hooks.slack.com"
    discord_base_url: str = "https://discord.com"
    telegram_base_url: str = "https://api.telegram.org"
    telegram_bot_token: str = ""  # secret: prefer LIGHTHOUSE_ALERTING__TELEGRAM_BOT_TOKEN
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: str = "none"  # "none" | "starttls" | "ssl"
    smtp_username: str = ""
    smtp_password: str = ""  # secret: prefer LIGHTHOUSE_ALERTING__SMTP_PASSWORD
    smtp_from: str = "lighthouse@localhost"
    status_page_url: str = ""  # linked from alert messages when set
    sns_region: str = ""  # sms channel: AWS region of SNS ("" = AWS_REGION / the profile's)
    sns_endpoint_url: str = ""  # sms channel: "" = https://sns.<region>.amazonaws.com


@dataclass(slots=True)
class HttpConfig:
    enabled: bool = True
    # Addresses to bind (same port on each): loopback for local health checks plus the one
    # address the host serves on, rather than 0.0.0.0 on every interface.
    listen: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    port: int = 8080
    title: str = "Lighthouse status"
    status_days: int = 90  # uptime bars on the status page
    status_max_monitors: int = 200  # monitors a status page shows (by name); ?page=N for more
    metrics_max_monitors: int = 1000  # monitors with per-monitor probe_* series (0: none)
    logo_url: str = ""  # shown beside the title (visitors' browsers fetch it, not the prober)
    links: list[str] = field(default_factory=list)  # header links, each "Text=https://..."


@dataclass(slots=True)
class FleetConfig:
    enabled: bool = False  # several probers share the monitors (lighthouse.fleet)
    name: str = ""  # this prober's name, unique in the fleet ("": the host name)
    location: str = "default"  # where it checks from; each monitor once per location
    lease_s: float = 15.0  # a prober silent this long is dead; heartbeats every lease_s / 3


@dataclass(slots=True)
class LoggingConfig:
    level: str = "INFO"
    format: str = "kv"  # "kv" (key=value) | "json"
    # `lighthouse run` also writes its log here ("": stderr only), for a shipper to read
    file: str = ""


@dataclass(slots=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: str = "<defaults>"  # where the file part came from (for messages)


SECTIONS: dict[str, type] = {
    name: typ for name, typ in typing.get_type_hints(Config).items() if name != "source"
}

_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("storage", "spool_fsync"): ("batch", "off"),
    ("alerting", "smtp_security"): ("none", "starttls", "ssl"),
    ("logging", "format"): ("kv", "json"),
    ("logging", "level"): ("DEBUG", "INFO", "WARNING", "ERROR"),
}
_POSITIVE = {
    ("database", "pool_max"), ("database", "connect_timeout_s"),
    ("scheduler", "max_concurrency"), ("scheduler", "reload_poll_s"), ("scheduler", "max_queue"),
    ("storage", "batch_size"), ("storage", "flush_interval_s"), ("storage", "spool_max_bytes"),
    ("storage", "spool_segment_bytes"), ("storage", "retry_interval_s"),
    ("alerting", "failure_threshold"), ("alerting", "success_threshold"),
    ("alerting", "max_attempts"), ("alerting", "timeout_s"), ("checks", "max_body_bytes"),
    ("checks", "default_timeout_s"), ("http", "status_days"), ("http", "status_max_monitors"),
}
# Upper (and lower) bounds the code enforces later, checked at load so a value that passes here
# cannot break at run time. Timeouts come from the checks' own limits (defined once there).
_BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("checks", "default_timeout_s"): (MIN_TIMEOUT_S, MAX_TIMEOUT_S),
    ("checks", "max_body_bytes"): (1024, 64 * 1024 * 1024),
    ("scheduler", "max_concurrency"): (1, 20_000),  # a task and a socket each: mind the fd limit
    ("scheduler", "max_queue"): (1, 10_000_000),
    ("scheduler", "stall_exit_s"): (0, 3600),
    ("database", "pool_max"): (1, 100),
    ("storage", "batch_size"): (1, 100_000),
    ("storage", "spool_segment_bytes"): (4096, 1024 ** 3),
    ("alerting", "timeout_s"): (0.1, 300),
    ("alerting", "max_attempts"): (1, 20),
    ("http", "port"): (0, 65535),  # 0: any free port (tests)
    ("http", "metrics_max_monitors"): (0, 1_000_000),
    ("alerting", "smtp_port"): (1, 65535),
    ("fleet", "lease_s"): (3, 3600),
    ("database", "compact_after_days"): (MIN_COMPACT_AFTER.days, 90),
}
# Also enforced by sql/007_fleet.sql (probers table), so a hand-made row cannot break ownership.
FLEET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
FLEET_LOCATION_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
SECRET_KEYS = {("database", "dsn"), ("alerting", "telegram_bot_token"),
               ("alerting", "smtp_password")}


def _hint(name: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """value converted to typ, or ConfigError naming `where` (e.g. "file: section.key")."""
    origin = typing.get_origin(typ)
    if origin in (list, typing.List):  # noqa: UP006 - runtime comparison
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (inner,) = typing.get_args(typ)
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(f"{where}: unsupported type")  # not used by the schema
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if typ is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if typ is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
    raise ConfigError(f"{where}: unsupported type {typ!r}")


def _apply_section(section: Any, name: str, values: Mapping[str, Any], where: str) -> None:
    types_ = _field_types(type(section))
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: section {name!r} must be a mapping")
    for key, raw in values.items():
        if key not in types_:
            raise ConfigError(f"{where}: unknown key {name}.{key}{_hint(str(key), types_)}")
        setattr(section, key, _coerce(raw, types_[key], f"{where}: {name}.{key}"))


def _validate(cfg: Config) -> None:
    for section_name in SECTIONS:
        section = getattr(cfg, section_name)
        for key in _field_types(type(section)):
            value = getattr(section, key)
            where = f"{cfg.source}: {section_name}.{key}"
            choices = _CHOICES.get((section_name, key))
            if choices and value not in choices:
                raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
            if (section_name, key) in _POSITIVE and value <= 0:
                raise ConfigError(f"{where}: must be greater than 0, got {value!r}")
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"{where}: must not be negative, got {value!r}")
            bounds = _BOUNDS.get((section_name, key))
            if bounds and not bounds[0] <= value <= bounds[1]:
                raise ConfigError(f"{where}: must be between {bounds[0]:g} and {bounds[1]:g}, "
                                  f"got {value!r}")
    if not cfg.database.dsn:
        raise ConfigError(f"{cfg.source}: database.dsn is required "
                          f"(or set {ENV_PREFIX}DATABASE__DSN)")
    if cfg.database.pool_min > cfg.database.pool_max:
        raise ConfigError(f"{cfg.source}: database.pool_min must be <= database.pool_max")
    for i, cidr in enumerate(cfg.checks.ssrf_allow):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(
                f"{cfg.source}: checks.ssrf_allow[{i}]: not a CIDR or address: {cidr!r}"
            ) from None
    if cfg.http.enabled and not cfg.http.listen:
        raise ConfigError(f"{cfg.source}: http.listen: give at least one address to bind "
                          f"(or http.enabled: false)")
    for i, addr in enumerate(cfg.http.listen):
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise ConfigError(f"{cfg.source}: http.listen[{i}]: must be an IP address to bind "
                              f"(127.0.0.1, 10.0.1.5, ::1), got {addr!r}") from None
    if cfg.fleet.name and not FLEET_NAME_RE.match(cfg.fleet.name):
        raise ConfigError(f"{cfg.source}: fleet.name: letters, digits, '.', '_', '-' "
                          f"(at most 63), got {cfg.fleet.name!r}")
    if not FLEET_LOCATION_RE.match(cfg.fleet.location):
        raise ConfigError(f"{cfg.source}: fleet.location: lower-case letters, digits, '.', "
                          f"'_', '-' (at most 63, e.g. eu-west-1), got {cfg.fleet.location!r}")
    ua = cfg.checks.user_agent
    if not ua or any(c in ua for c in "\r\n\x00") or not ua.isascii():
        raise ConfigError(f"{cfg.source}: checks.user_agent: must be one line of ASCII text")
    for key in ("slack_base_url", "discord_base_url", "telegram_base_url"):
        url = getattr(cfg.alerting, key)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{cfg.source}: alerting.{key}: must be an http(s) URL, got {url!r}")
    if cfg.logging.file and not cfg.logging.file.startswith("/"):
        raise ConfigError(f"{cfg.source}: logging.file: an absolute path (or empty), got "
                          f"{cfg.logging.file!r}")
    if cfg.http.logo_url and not cfg.http.logo_url.startswith(("https://", "http://", "/")):
        raise ConfigError(f"{cfg.source}: http.logo_url: must be an http(s) URL or a path, "
                          f"got {cfg.http.logo_url!r}")
    for i, link in enumerate(cfg.http.links):
        text, sep, url = link.partition("=")
        if not sep or not text.strip() or not url.startswith(("https://", "http://", "/")):
            raise ConfigError(f"{cfg.source}: http.links[{i}]: must be \"Text=https://...\", "
                              f"got {link!r}")


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None,
         require_dsn: bool = True) -> Config:
    """Reads the YAML file (if given or present at the default path), applies env overrides,
    validates, and returns the Config. Raises ConfigError."""
    env = os.environ if env is None else env
    cfg = Config()
    if path is None and DEFAULT_PATH.exists():
        path = DEFAULT_PATH
    if path is not None:
        path = Path(path)
        cfg.source = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of sections")
        for name, values in data.items():
            if name not in SECTIONS:
                raise ConfigError(f"{path}: unknown section {name!r}{_hint(str(name), SECTIONS)}")
            _apply_section(getattr(cfg, name), name, values or {}, str(path))
    for var, raw in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        section_name, _, key = var[len(ENV_PREFIX):].lower().partition("__")
        where = f"environment {var}"
        if section_name not in SECTIONS:
            raise ConfigError(f"{where}: unknown section {section_name!r}"
                              f"{_hint(section_name, SECTIONS)}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        # YAML would turn "0123" or "on" into other types; strings keep their text.
        if _field_types(SECTIONS[section_name]).get(key) is str:
            value = raw
        _apply_section(getattr(cfg, section_name), section_name, {key: value}, where)
    if not require_dsn and not cfg.database.dsn:
        cfg.database.dsn = "postgresql:///lighthouse"  # placeholder for DB-less commands
    _validate(cfg)
    return cfg


def all_keys() -> list[str]:
    """Every `section.key`, for the docs test."""
    return [f"{s}.{k}" for s, cls in SECTIONS.items() for k in _field_types(cls)]
