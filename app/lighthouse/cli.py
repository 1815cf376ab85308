"""`lighthouse` command line: run the prober, one-off checks, monitors, reports, migrations.

    lighthouse [-c prober.yaml] run
    lighthouse check https://example.com [--expect 200 --keyword ok --timeout 5]
    lighthouse check dns --settings '{"name": "example.com", "record": "MX"}'   (any type)
    lighthouse monitors add NAME TARGET [--interval 60]   (TARGET: URL, tcp://h:p, tls://h[:p])
    lighthouse monitors add NAME push://                  (prints the push URL once)
    lighthouse monitors add NAME TYPE --settings JSON|@FILE (websocket/graphql/balance/canary/dns)
    lighthouse monitors new-token M                       (push: rotate the token)
    lighthouse monitors locations M [--set a,b,c | --all] [--quorum N]   (a prober fleet)
    lighthouse monitors list | pause M | resume M | remove M [--yes]   (M: id or name)
    lighthouse fleet [--json]                             (probers, live or not; troubled verdicts)
    lighthouse report [--days 7] [--json]
    lighthouse migrate [--dry-run]

Exit codes: 0 ok, 1 check failed / not found, 2 usage or configuration error, 3 database error.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.types.json import Jsonb

from lighthouse import __version__, push
from lighthouse.checks.context import MAX_TIMEOUT_S, MIN_TIMEOUT_S, CheckContext
from lighthouse.checks.errors import CheckError
from lighthouse.checks.runner import parse_config
from lighthouse.config import FLEET_LOCATION_RE, Config, ConfigError, StartupError, load
from lighthouse.db.connect import one
from lighthouse.logs import setup as setup_logging
from lighthouse.models import Monitor
from lighthouse.redact import target_of

EXIT_FAIL, EXIT_USAGE, EXIT_DB = 1, 2, 3
OPERATOR = "operator"
CONFIGURED_TYPES = ("dns", "graphql", "balance", "canary", "websocket")


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- targets
def target_config(target: str, args: argparse.Namespace | None = None) -> tuple[str, dict]:
    """(monitor type, target_config) from a URL-ish target."""
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise CliError(f"target {target!r}: URL has no host")
        cfg: dict[str, Any] = {"url": target}
        if args is not None:
            if getattr(args, "method", None):
                cfg["method"] = args.method.upper()
            if getattr(args, "expect", None):
                cfg["expected_status"] = args.expect
            if getattr(args, "keyword", None):
                cfg["keyword"] = args.keyword
            if getattr(args, "timeout", None) is not None:
                cfg["timeout_s"] = args.timeout
        return "http", cfg
    if scheme in ("tcp", "tls"):
        if not parts.hostname:
            raise CliError(f"target {target!r}: no host")
        try:
            port = parts.port
        except ValueError:
            raise CliError(f"target {target!r}: bad port") from None
        if port is None and scheme == "tcp":
            raise CliError(f"target {target!r}: tcp:// needs a port")
        cfg = {"host": parts.hostname, "port": port or 443}
        if args is not None and getattr(args, "timeout", None) is not None:
            cfg["timeout_s"] = args.timeout
        return scheme, cfg
    if target in CONFIGURED_TYPES:
        raw = getattr(args, "settings", None) if args is not None else None
        if raw is None:
            raise CliError(f"target {target}: give its settings with --settings JSON "
                           "(docs/checks.md lists the keys)")
        return target, _json_config(raw)
    raise CliError(f"target {target!r}: use http(s)://, tcp://host:port, tls://host[:port], "
                   f"push:// or a type with --settings ({', '.join(CONFIGURED_TYPES)})")


def _json_config(raw: str) -> dict[str, Any]:
    """--settings: inline JSON, or @FILE holding it."""
    if raw.startswith("@"):
        try:
            with open(raw[1:], encoding="utf-8") as fh:
                raw = fh.read()
        except OSError as exc:
            raise CliError(f"--settings {raw[:200]}: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(f"--settings: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise CliError("--settings: expected a JSON object of the type's keys")
    return doc


def validate_target(cfg: Config, typ: str, tcfg: dict[str, Any]) -> None:
    """Refuse now, naming the key, what the prober would otherwise fail on every check."""
    ctx = CheckContext.create(allow_cidrs=cfg.checks.ssrf_allow)
    try:
        parse_config(typ, tcfg, ctx)
    except CheckError as exc:
        raise CliError(f"{typ} monitor: {exc.message}") from None


def _print_push_url(cfg: Config, token: str) -> None:
    base = cfg.alerting.status_page_url.rstrip("/") or f"http://{cfg.http.listen[0]}:{cfg.http.port}"
    # The one time the token is shown: only its hash is stored.
    print(f"push URL (shown once, keep it secret): {base}{push.PREFIX}{token}")
    print(f"  e.g. cron: ... && curl -fsS -m 10 '{base}{push.PREFIX}{token}'")
    print(f"  failure:   curl -fsS -m 10 '{base}{push.PREFIX}{token}?status=down&msg=why'")


# --------------------------------------------------------------------------- check
def format_result(result: Any) -> str:
    lines = [f"status:        {result.status}"
             + (f" ({result.error_code})" if result.error_code else "")]
    if result.http_status is not None:
        lines.append(f"http status:   {result.http_status}")
    if result.latency_ms is not None:
        lines.append(f"latency:       {result.latency_ms} ms")
    timings = dict(result.timings or {})
    balance = timings.pop("balance", None)
    total = timings.pop("total", None)
    for key, value in [*timings.items(), *([("total", total)] if total is not None else [])]:
        unit = "s" if key.endswith("_s") else "ms"  # since_push_s; the rest are phases in ms
        lines.append(f"  {key + ':':<14} {value:8.2f} {unit}")
    if balance is not None:
        lines.append(f"balance:       {balance:g}")
    if result.cert_days_left is not None:
        lines.append(f"cert days:     {result.cert_days_left}")
    if result.error_message:
        lines.append(f"message:       {result.error_message}")
    return "\n".join(lines)


async def _one_check(cfg: Config, monitor: Monitor, allow: list[str], no_ssrf: bool) -> Any:
    from lighthouse.checks import CheckContext, run_check

    ctx = CheckContext.create(allow_cidrs=[*cfg.checks.ssrf_allow, *allow],
                              ssrf_enabled=not no_ssrf, max_body_bytes=cfg.checks.max_body_bytes,
                              default_timeout_s=cfg.checks.default_timeout_s)
    try:
        return await run_check(monitor, ctx)
    finally:
        await ctx.aclose()


def cmd_check(cfg: Config, args: argparse.Namespace) -> int:
    typ, tcfg = target_config(args.target, args)
    monitor = Monitor(uuid.uuid4(), "one-off", typ, tcfg, 60)
    result = asyncio.run(_one_check(cfg, monitor, args.allow or [], args.no_ssrf))
    if args.json:
        print(json.dumps({"status": str(result.status), "http_status": result.http_status,
                          "latency_ms": result.latency_ms, "error_code": result.error_code,
                          "error_message": result.error_message, "timings": result.timings,
                          "cert_days_left": result.cert_days_left}, indent=1))
    else:
        print(f"{typ} {target_of(monitor)}")
        print(format_result(result))
    return 0 if str(result.status) == "success" else EXIT_FAIL


# --------------------------------------------------------------------------- database helpers
def _connect(cfg: Config) -> psycopg.Connection:
    from lighthouse.db.connect import connect

    return connect(cfg.database.dsn, connect_timeout=max(1, int(cfg.database.connect_timeout_s)),
                   application_name="lighthouse-cli")


def operator_user(conn: psycopg.Connection) -> uuid.UUID:
    """The operator's users row (created on first use): monitors added from the CLI own it."""
    row = conn.execute("SELECT id FROM users WHERE wallet_address IS NULL AND display_name = %s "
                       "ORDER BY created_at LIMIT 1", (OPERATOR,)).fetchone()
    if row:
        return row[0]
    return one(conn, "INSERT INTO users (display_name) VALUES (%s) RETURNING id",
               (OPERATOR,))[0]


def find_monitor(conn: psycopg.Connection, ref: str) -> tuple[uuid.UUID, str, str]:
    """(id, name, status) by id or exact name; errors on none or several."""
    try:
        rows = conn.execute("SELECT id, name, status::text FROM subscriptions WHERE id = %s",
                            (uuid.UUID(ref),)).fetchall()
    except ValueError:
        rows = conn.execute("SELECT id, name, status::text FROM subscriptions WHERE name = %s "
                            "AND status <> 'cancelled'", (ref,)).fetchall()
    if not rows:
        raise CliError(f"no monitor {ref!r}", EXIT_FAIL)
    if len(rows) > 1:
        raise CliError(f"{len(rows)} monitors are named {ref!r}; use the id: "
                       + ", ".join(str(r[0]) for r in rows), EXIT_FAIL)
    return rows[0]


def cmd_monitors(cfg: Config, args: argparse.Namespace) -> int:
    with _connect(cfg) as conn:
        if args.action == "add":
            if args.target == "push://":
                token, sha = push.new_token()
                typ, tcfg = "push", {"token_sha256": sha}
                if args.grace is not None:
                    tcfg["grace_s"] = args.grace
            else:
                token = None
                typ, tcfg = target_config(args.target, args)
            validate_target(cfg, typ, tcfg)
            if args.interval < 60:
                raise CliError(f"--interval {args.interval}: must be at least 60 seconds")
            taken = conn.execute("SELECT id FROM subscriptions WHERE name = %s "
                                 "AND status <> 'cancelled' LIMIT 1", (args.name,)).fetchone()
            if taken:  # pause/resume/remove find monitors by name: names must say which
                raise CliError(f"a monitor named {args.name!r} exists already ({taken[0]}); "
                               "choose another name", EXIT_USAGE)
            locations, quorum = parse_locations(args.locations, args.quorum)
            user = operator_user(conn)
            status = "paused" if args.paused else "active"
            mid = one(
                conn, "INSERT INTO subscriptions (user_id, name, target_type, target_config, "
                "check_interval_seconds, status, activated_at, locations, quorum) "
                "VALUES (%s, %s, %s, %s, %s, %s, CASE WHEN %s = 'active' THEN now() END, "
                "%s, %s) RETURNING id",
                (user, args.name, typ, Jsonb(tcfg), args.interval, status, status, locations,
                 quorum))[0]
            print(mid)
            if token is not None:
                _print_push_url(cfg, token)
            return 0
        if args.action == "list":
            where = "" if args.all else "WHERE status IN ('active', 'paused', 'pending')"
            rows = conn.execute(
                "SELECT id, name, target_type::text, status::text, check_interval_seconds, "
                f"target_config, locations, quorum FROM subscriptions {where} "
                "ORDER BY name, id").fetchall()
            if args.json:
                print(json.dumps([{"id": str(r[0]), "name": r[1], "type": r[2], "status": r[3],
                                   "interval_s": r[4], "target": r[5], "locations": r[6],
                                   "quorum": r[7]} for r in rows], indent=1))
                return 0
            print(f"{'ID':<36}  {'NAME':<24} {'TYPE':<5} {'STATUS':<9} {'EVERY':>6}  TARGET")
            for r in rows:
                target = target_of(Monitor(r[0], r[1], r[2], dict(r[5]), r[4]))
                print(f"{r[0]!s:<36}  {r[1][:24]:<24} {r[2]:<5} {r[3]:<9} {r[4]:>5}s  {target}")
            return 0
        mid, name, status = find_monitor(conn, args.monitor)
        if args.action == "locations":
            return _monitor_locations(conn, mid, name, args)
        if args.action == "new-token":
            token, sha = push.new_token()
            done = conn.execute("UPDATE subscriptions SET target_config = jsonb_set("
                                "target_config, '{token_sha256}', to_jsonb(%s::text)) "
                                "WHERE id = %s AND target_type::text = 'push' RETURNING id",
                                (sha, mid)).fetchone()
            if done is None:
                raise CliError(f"{name} is not a push monitor", EXIT_USAGE)
            print(f"{name} ({mid}): new token; the old one stops working now")
            _print_push_url(cfg, token)
            return 0
        if args.action in ("pause", "resume"):
            new = "paused" if args.action == "pause" else "active"
            conn.execute("UPDATE subscriptions SET status = %s, activated_at = "
                         "coalesce(activated_at, CASE WHEN %s = 'active' THEN now() END) "
                         "WHERE id = %s", (new, new, mid))
            print(f"{name} ({mid}): {status} -> {new}")
            return 0
        if args.action == "remove":
            n = one(conn, "SELECT count(*) FROM lh_checks('-infinity', 'infinity') "
                          "WHERE subscription_id = %s", (mid,))[0]
            print(f"will delete monitor {name} ({mid}), its alert channels; "
                  f"its {n} stored checks stay until retention drops them")
            if not args.yes:
                if not sys.stdin.isatty():
                    raise CliError("refusing to delete without --yes (stdin is not a terminal)")
                if input("delete? [y/N] ").strip().lower() not in ("y", "yes"):
                    print("nothing deleted")
                    return EXIT_FAIL
            conn.execute("DELETE FROM subscriptions WHERE id = %s", (mid,))
            print(f"deleted {name} ({mid})")
            return 0
    raise CliError(f"unknown action {args.action!r}")


def parse_locations(raw: str | None, quorum: int | None) -> tuple[list[str] | None, int | None]:
    """--locations a,b,c / --quorum N as the subscriptions columns (None: every location /
    a majority). The names are fleet.location values."""
    locations = None
    if raw is not None:
        locations = sorted({part.strip() for part in raw.split(",") if part.strip()})
        if not locations:
            raise CliError("--locations: give at least one location (or leave it out: all)")
        bad = [loc for loc in locations if not FLEET_LOCATION_RE.match(loc)]
        if bad:
            raise CliError(f"--locations: {bad[0]!r} is not a location name (lower-case "
                           "letters, digits, '.', '_', '-', as in fleet.location)")
    if quorum is not None:
        if quorum < 1:
            raise CliError(f"--quorum {quorum}: must be at least 1")
        if locations is not None and quorum > len(locations):
            raise CliError(f"--quorum {quorum}: more than the {len(locations)} location"
                           f"{'s' if len(locations) != 1 else ''} given")
    return locations, quorum


def _monitor_locations(conn: psycopg.Connection, mid: uuid.UUID, name: str,
                       args: argparse.Namespace) -> int:
    if args.set is not None or args.all or args.quorum is not None:
        current = one(conn, "SELECT locations FROM subscriptions WHERE id = %s", (mid,))[0]
        keep = ",".join(current) if current and args.set is None and not args.all else None
        locations, quorum = parse_locations(args.set if args.set is not None else keep,
                                            args.quorum)
        conn.execute("UPDATE subscriptions SET locations = %s, quorum = %s WHERE id = %s",
                     (locations, quorum, mid))
    locations, quorum = one(conn, "SELECT locations, quorum FROM subscriptions WHERE id = %s",
                            (mid,))
    print(f"{name} ({mid}): checked from {', '.join(locations) if locations else 'every location'}"
          f"; quorum {quorum if quorum else 'a majority'}")
    return 0


def cmd_report(cfg: Config, args: argparse.Namespace) -> int:
    from lighthouse.db import queries

    with _connect(cfg) as conn:
        monitors = conn.execute(
            "SELECT id, name, status::text FROM subscriptions "
            "WHERE status IN ('active', 'paused') ORDER BY name, id").fetchall()
        end = datetime.now(UTC)
        stats = queries.summary(conn, [m[0] for m in monitors], end=end,
                                start=end - timedelta(days=args.days))
        inside = queries.in_maintenance(conn, [m[0] for m in monitors],
                                        end - timedelta(days=args.days), end)
    out = []
    for mid, name, status in monitors:
        s = stats[mid]
        ex = queries.uptime_excluding(s, inside.get(mid))
        out.append({"id": str(mid), "name": name, "status": status, "checks": s.total,
                    "uptime_pct": None if s.uptime_pct is None else round(s.uptime_pct, 3),
                    "checks_in_maintenance": inside.get(mid, (0, 0))[0],
                    "uptime_excluding_maintenance_pct": None if ex is None else round(ex, 3),
                    "avg_ms": None if s.avg_latency_ms is None else round(s.avg_latency_ms, 1),
                    "p50_ms": s.percentile(0.5), "p95_ms": s.percentile(0.95),
                    "p99_ms": s.percentile(0.99)})
    if args.json:
        print(json.dumps(out, indent=1))
        return 0

    def f(v: float | None, suffix: str = "") -> str:
        return "-" if v is None else f"{v:.1f}{suffix}"

    print(f"last {args.days} days; UPTIME* leaves out checks inside maintenance windows")
    print(f"{'NAME':<24} {'STATUS':<7} {'CHECKS':>7} {'UPTIME':>8} {'UPTIME*':>8} {'AVG':>8} "
          f"{'P95':>8} {'P99':>8}")
    for r in out:
        print(f"{r['name'][:24]:<24} {r['status']:<7} {r['checks']:>7} "
              f"{f(r['uptime_pct'], '%'):>8} {f(r['uptime_excluding_maintenance_pct'], '%'):>8} "
              f"{f(r['avg_ms']):>8} {f(r['p95_ms']):>8} {f(r['p99_ms']):>8}")
    return 0


def cmd_incident(cfg: Config, args: argparse.Namespace) -> int:
    from lighthouse import incidents

    with _connect(cfg) as conn:
        if args.action == "note":
            note = args.text.strip()
            if not note or len(note) > 2000:
                raise CliError("the note must be 1 to 2000 characters")
            if not incidents.add_note(conn, args.id, note):
                raise CliError(f"no incident {args.id}", EXIT_FAIL)
            print(f"incident {args.id}: note saved")
            return 0
        monitor = find_monitor(conn, args.monitor)[0] if args.monitor else None
        since = datetime.now(UTC) - timedelta(days=args.days)
        listed = incidents.recent(conn, since, monitor, limit=args.limit)
    now = datetime.now(UTC)
    if args.json:
        print(json.dumps([{"id": i.id, "monitor_id": str(i.subscription_id), "monitor": i.monitor,
                           "started_at": i.started_at.isoformat(),
                           "ended_at": i.ended_at.isoformat() if i.ended_at else None,
                           "duration_s": round(i.duration_s(now)),
                           "first_error_code": i.first_error_code, "first_error": i.first_error,
                           "note": i.note} for i in listed], indent=1))
        return 0
    print(f"{'ID':>6}  {'MONITOR':<24} {'STARTED (UTC)':<19}  {'DURATION':>9}  STATE   CAUSE")
    for i in listed:
        mins = i.duration_s(now) / 60
        print(f"{i.id:>6}  {i.monitor[:24]:<24} {i.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
              f"  {mins:>7.1f} m  {'open  ' if i.open else 'closed'}  "
              f"{i.first_error_code or '-'}" + (f"  note: {i.note}" if i.note else ""))
    return 0


def _when(text: str) -> datetime:
    """'now' or an ISO 8601 time with a UTC offset (argparse type)."""
    if text == "now":
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (ISO 8601, e.g. "
                                         "2026-12-24T22:00+01:00, or 'now')") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z or +01:00)")
    return t


def _span(text: str) -> timedelta:
    """A duration: 90m, 2h, 1d (argparse type)."""
    units = {"m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90m, 2h, 1d)")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def cmd_maintenance(cfg: Config, args: argparse.Namespace) -> int:
    from lighthouse import maintenance_windows as mw

    with _connect(cfg) as conn:
        if args.action == "add":
            if bool(args.monitor) == bool(args.all):
                raise CliError("give --monitor M or --all")
            if (args.to is None) == (args.duration is None):
                raise CliError("give --to TIME or --for DURATION")
            ends = args.to if args.to is not None else args.start + args.duration
            if ends <= args.start:
                raise CliError(f"the window ends ({ends.isoformat()}) before it starts")
            if ends <= datetime.now(UTC):
                raise CliError(f"the window is over already (ends {ends.isoformat()})")
            if len(args.note) > 2000:
                raise CliError("the note must be at most 2000 characters")
            mid, name = (find_monitor(conn, args.monitor)[:2] if args.monitor
                         else (None, "every monitor"))
            wid = mw.add(conn, mid, args.start, ends, args.note)
            print(f"maintenance {wid}: {name}, {args.start.astimezone(UTC):%Y-%m-%d %H:%M} to "
                  f"{ends.astimezone(UTC):%Y-%m-%d %H:%M} UTC; alerts held, checks still run")
            return 0
        if args.action == "remove":
            if not mw.remove(conn, args.id):
                raise CliError(f"no maintenance window {args.id}", EXIT_FAIL)
            print(f"maintenance {args.id} removed")
            return 0
        windows = mw.current_and_upcoming(conn)
    if args.json:
        print(json.dumps([{"id": w.id, "monitor_id": str(w.subscription_id)
                           if w.subscription_id else None, "monitor": w.monitor,
                           "starts_at": w.starts_at.isoformat(), "ends_at": w.ends_at.isoformat(),
                           "note": w.note} for w in windows], indent=1))
        return 0
    now = datetime.now(UTC)
    print(f"{'ID':>5}  {'MONITOR':<24} {'FROM (UTC)':<16}  {'TO (UTC)':<16}  STATE     NOTE")
    for w in windows:
        print(f"{w.id:>5}  {(w.monitor or '(all)')[:24]:<24} "
              f"{w.starts_at.astimezone(UTC):%Y-%m-%d %H:%M}  "
              f"{w.ends_at.astimezone(UTC):%Y-%m-%d %H:%M}  "
              f"{'active  ' if w.active(now) else 'upcoming'}  {w.note}")
    return 0


def cmd_fleet(cfg: Config, args: argparse.Namespace) -> int:
    from lighthouse.fleet import views

    with _connect(cfg) as conn:
        probers, bad = views.members(conn), views.troubled(conn)
    if args.json:
        print(json.dumps({"probers": probers, "troubled": bad}, indent=1, default=str))
        return 0
    if not probers:
        print("no fleet: no prober has heartbeated (fleet.enabled is off, or none runs)")
    else:
        print(f"{'PROBER':<24} {'LOCATION':<16} {'STATE':<5} {'HEARTBEAT':>10}  VERSION")
        for m in probers:
            print(f"{m['name'][:24]:<24} {m['location'][:16]:<16} "
                  f"{'live' if m['live'] else 'DEAD':<5} {m['heartbeat_age_s']:>8.1f} s  "
                  f"{m['version'] or '-'}")
    for t in bad:
        print(f"{t['state'].upper():<8} {t['name']}: down from {', '.join(t['locations_down'])}"
              + (f"; up from {', '.join(t['locations_up'])}" if t["locations_up"] else ""))
    return 0


def cmd_migrate(cfg: Config, args: argparse.Namespace) -> int:
    from lighthouse.db.migrate import migrate

    applied = migrate(cfg.database.dsn, dry_run=args.dry_run)
    verb = "would apply" if args.dry_run else "applied"
    print(f"{verb} {len(applied)} migration(s)"
          + (": " + ", ".join(m.label for m in applied) if applied else ""))
    return 0


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    from lighthouse.service import serve

    asyncio.run(serve(cfg))
    return 0


# --------------------------------------------------------------------------- parser
def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not MIN_TIMEOUT_S <= value <= MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_TIMEOUT_S:g} and {MAX_TIMEOUT_S:g} seconds, got {text}")
    return value


def _cidr(text: str) -> str:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a CIDR or address: {text!r} (e.g. 10.0.0.0/8)") from None
    return text


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not 1 <= value <= 3650:
        raise argparse.ArgumentTypeError(f"must be between 1 and 3650 days, got {value}")
    return value


EXIT_CODES = ("exit codes: 0 ok; 1 check failed or monitor not found; 2 usage or configuration "
              "error; 3 database error; 70 `run` stopped by its watchdog (systemd restarts it)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lighthouse", description="Lighthouse uptime prober",
                                epilog=EXIT_CODES)
    p.add_argument("-c", "--config", help="YAML config file (default /etc/lighthouse/"
                   "prober.yaml if present); env LIGHTHOUSE_<SECTION>__<KEY> overrides")
    p.add_argument("--version", action="version", version=f"lighthouse {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the prober service until SIGTERM")

    c = sub.add_parser("check", help="one-off check of a target; prints timings",
                       epilog=EXIT_CODES)
    c.add_argument("target", help="http(s):// URL, tcp://host:port, tls://host[:port] or "
                   f"{'/'.join(CONFIGURED_TYPES)} with --settings")
    c.add_argument("--settings", metavar="JSON|@FILE",
                   help="the settings of a type named above (docs/checks.md)")
    c.add_argument("--method", help="HTTP method (default GET)")
    c.add_argument("--expect", type=int, action="append", help="expected status (repeatable)")
    c.add_argument("--keyword", help="body must contain this text")
    c.add_argument("--timeout", type=_timeout, metavar="SECONDS",
                   help=f"whole-check deadline ({MIN_TIMEOUT_S:g}-{MAX_TIMEOUT_S:g} s)")
    c.add_argument("--allow", action="append", metavar="CIDR", type=_cidr,
                   help="allow this private range for this check (SSRF allow-list)")
    c.add_argument("--no-ssrf", action="store_true",
                   help="operator check: skip the SSRF guard entirely")
    c.add_argument("--json", action="store_true", help="print the result as JSON")

    m = sub.add_parser("monitors", help="add/list/pause/resume/remove monitors",
                       epilog=EXIT_CODES)
    msub = m.add_subparsers(dest="action", required=True)
    a = msub.add_parser("add", help="add a monitor (names are unique)")
    a.add_argument("name", help="a name not used by another monitor")
    a.add_argument("target", help="http(s):// URL, tcp://host:port, tls://host[:port], push:// "
                   f"(prints its URL once) or {'/'.join(CONFIGURED_TYPES)} with --settings")
    a.add_argument("--settings", metavar="JSON|@FILE",
                   help="the monitor's settings (docs/checks.md), for the types named above")
    a.add_argument("--grace", type=float, metavar="SECONDS",
                   help="push: extra seconds after the interval before it is down (default 60)")
    a.add_argument("--interval", type=int, default=60, help="seconds (>= 60)")
    a.add_argument("--method", help="HTTP method (default GET)")
    a.add_argument("--expect", type=int, action="append", help="expected status (repeatable)")
    a.add_argument("--keyword", help="body must contain this text")
    a.add_argument("--timeout", type=_timeout, metavar="SECONDS",
                   help=f"whole-check deadline ({MIN_TIMEOUT_S:g}-{MAX_TIMEOUT_S:g} s)")
    a.add_argument("--paused", action="store_true", help="add it paused")
    a.add_argument("--locations", metavar="A,B,...",
                   help="fleet locations to check it from (default: every location)")
    a.add_argument("--quorum", type=int, metavar="N",
                   help="locations that must agree on down/up (default: a majority)")
    ls = msub.add_parser("list", help="list monitors")
    ls.add_argument("--all", action="store_true", help="include expired and cancelled")
    ls.add_argument("--json", action="store_true", help="print JSON")
    for action in ("pause", "resume", "remove", "new-token"):
        x = msub.add_parser(action, help=f"{action} a monitor" if action != "new-token"
                            else "push monitor: a new token (prints its URL once)")
        x.add_argument("monitor", help="id or exact name")
        if action == "remove":
            x.add_argument("--yes", action="store_true", help="do not ask")
    lo = msub.add_parser("locations", help="show or set where a monitor is checked from")
    lo.add_argument("monitor", help="id or exact name")
    where = lo.add_mutually_exclusive_group()
    where.add_argument("--set", metavar="A,B,...", help="check it from these locations")
    where.add_argument("--all", action="store_true", help="check it from every location")
    lo.add_argument("--quorum", type=int, metavar="N",
                    help="locations that must agree (omitted with --set/--all: a majority)")

    r = sub.add_parser("report", help="uptime and latency per monitor", epilog=EXIT_CODES)
    r.add_argument("--days", type=_days, default=7, help="window in days (1-3650, default 7)")
    r.add_argument("--json", action="store_true", help="print JSON")

    inc = sub.add_parser("incident", help="list incidents (outages) and annotate them",
                         epilog=EXIT_CODES)
    isub = inc.add_subparsers(dest="action", required=True)
    il = isub.add_parser("list", help="open incidents first, then recent ones")
    il.add_argument("--monitor", help="id or exact name")
    il.add_argument("--days", type=_days, default=30, help="ended within (default 30 days)")
    il.add_argument("--limit", type=int, default=50, help="at most (default 50)")
    il.add_argument("--json", action="store_true", help="print JSON")
    inote = isub.add_parser("note", help="set an incident's note (shown on the status page)")
    inote.add_argument("id", type=int, help="incident id (from `incident list`)")
    inote.add_argument("text", help="the note (replaces an earlier one)")

    mt = sub.add_parser("maintenance", help="planned maintenance: alerts held, visitors told",
                        epilog=EXIT_CODES)
    msub2 = mt.add_subparsers(dest="action", required=True)
    ma = msub2.add_parser("add", help="add a window (checks still run and are stored)")
    ma.add_argument("--monitor", help="id or exact name")
    ma.add_argument("--all", action="store_true", help="every monitor")
    ma.add_argument("--from", dest="start", type=_when, default="now",
                    help="start: ISO 8601 with offset, or 'now' (default)")
    ma.add_argument("--to", type=_when, help="end: ISO 8601 with offset")
    ma.add_argument("--for", dest="duration", type=_span, help="or a duration: 90m, 2h, 1d")
    ma.add_argument("--note", default="", help="shown to visitors on the status page")
    ml = msub2.add_parser("list", help="active and upcoming windows")
    ml.add_argument("--json", action="store_true", help="print JSON")
    mr = msub2.add_parser("remove", help="remove a window (alerts resume)")
    mr.add_argument("id", type=int, help="window id (from `maintenance list`)")

    fl = sub.add_parser("fleet", help="probers (live or dead) and monitors the fleet sees "
                        "down or degraded", epilog=EXIT_CODES)
    fl.add_argument("--json", action="store_true", help="print JSON")

    g = sub.add_parser("migrate", help="apply database migrations", epilog=EXIT_CODES)
    g.add_argument("--dry-run", action="store_true", help="print the SQL, change nothing")
    return p


COMMANDS = {"run": cmd_run, "check": cmd_check, "monitors": cmd_monitors, "report": cmd_report,
            "incident": cmd_incident, "maintenance": cmd_maintenance, "migrate": cmd_migrate,
            "fleet": cmd_fleet}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load(args.config, require_dsn=args.command != "check")
    except ConfigError as exc:
        print(f"lighthouse: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # only the service writes the shipped file: an operator's command run as root would leave
    # it owned by root, where the service could no longer open it
    log_file = cfg.logging.file if args.command == "run" else ""
    try:
        setup_logging(cfg.logging.level, cfg.logging.format, log_file)
    except OSError as exc:
        print(f"lighthouse: cannot start: logging.file: cannot open {log_file}: "
              f"{exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](cfg, args)
    except CliError as exc:
        print(f"lighthouse: {exc}", file=sys.stderr)
        return exc.code
    except StartupError as exc:
        print(f"lighthouse: cannot start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except psycopg.Error as exc:
        print(f"lighthouse: database error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return EXIT_DB
    except Exception as exc:
        from lighthouse.db.errors import DatabaseError

        if isinstance(exc, DatabaseError):
            print(f"lighthouse: {exc}", file=sys.stderr)
            return EXIT_DB
        raise


if __name__ == "__main__":
    sys.exit(main())
