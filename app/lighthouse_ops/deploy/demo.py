"""Demo monitors for the main job and the short report it prints.

Monitors are rows in `subscriptions` owned by a `demo` user, inserted over SSH with psql as
the postgres OS user on the database host (peer auth; the database is not exposed to the
controller). Inserts are keyed by name, so a second run adds nothing.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import TYPE_CHECKING, Any

from lighthouse.push import token_sha256

from lighthouse_ops.deploy.ansible_run import PlaybookResult

if TYPE_CHECKING:
    from lighthouse_ops.deploy.local import LocalDeployment
    from lighthouse_ops.sandbox import Sandbox

DEMO_TARGET_PORT = 8081
# playbooks/files/demo_targets.py on the first prober host
DEMO_API_PORT, DEMO_WS_PORT, DEMO_DNS_PORT = 8082, 8083, 5353
DEMO_DNS_NAME = "demo.lighthouse.test"
DEMO_WALLET = "0x" + "11" * 20
DEMO_TOKEN_CONTRACT = "0x" + "22" * 20
DEMO_USER = "demo"
# The push token lives in the sandbox's secrets dir (demo.yml's password lookup makes it).
PUSH_SECRET_NAME = "demo_push_token"  # noqa: S105 - a file name


def demo_push_sha256(dep: LocalDeployment) -> str:
    """The demo push monitor's token hash (the token itself stays in the secrets dir)."""
    return token_sha256((dep.secrets_dir / PUSH_SECRET_NAME).read_text().strip())


def demo_monitors(db_ip: str, prober_ip: str,
                  push_sha256: str | None = None) -> list[dict[str, Any]]:
    api = f"http://{prober_ip}:{DEMO_API_PORT}"
    typed = [
        {"name": "demo: websocket echo", "type": "websocket",
         "config": {"url": f"ws://{prober_ip}:{DEMO_WS_PORT}/", "send": "ping",
                    "expect": "ping", "timeout_s": 5}},
        {"name": "demo: graphql status", "type": "graphql",
         "config": {"url": f"{api}/graphql", "query": "{ status probers }",
                    "json_path": "$.status", "json_expected": "ok", "timeout_s": 5}},
        {"name": "demo: wallet balance", "type": "balance",
         "config": {"url": f"{api}/rpc", "chain": "demo", "address": DEMO_WALLET,
                    "min_balance": 1, "hysteresis": "0.5", "timeout_s": 5}},
        {"name": "demo: USDC balance", "type": "balance",
         "config": {"url": f"{api}/rpc", "chain": "demo", "address": DEMO_WALLET,
                    "token": DEMO_TOKEN_CONTRACT, "decimals": 6, "min_balance": 100,
                    "timeout_s": 5}},
        {"name": "demo: login canary", "type": "canary",
         "config": {"timeout_s": 5, "steps": [
             {"name": "login", "method": "POST", "url": f"{api}/login",
              "body": {"user": "demo"},
              "extract": {"session": {"json_path": "$.token"}}},
             {"name": "profile", "url": f"{api}/me",
              "headers": {"Authorization": "Bearer {{session}}"},
              "json_path": "$.user", "json_expected": "demo"}]}},
        {"name": "demo: dns record", "type": "dns",
         "config": {"name": DEMO_DNS_NAME, "server": prober_ip, "port": DEMO_DNS_PORT,
                    "expected": [db_ip], "match": "exact", "timeout_s": 5}},
    ]
    if push_sha256 is not None:
        typed.append({"name": "demo: push heartbeat", "type": "push",
                      "config": {"token_sha256": push_sha256, "grace_s": 60}})
    return typed + [
        {"name": "demo: web page on db-1", "type": "http",
         "config": {"url": f"http://{db_ip}:{DEMO_TARGET_PORT}/", "expected_status": [200],
                    "keyword": "Lighthouse demo", "timeout_s": 5}},
        {"name": "demo: PostgreSQL port on db-1", "type": "tcp",
         "config": {"host": db_ip, "port": 5432, "timeout_s": 5}},
        {"name": "demo: prober health", "type": "http",
         "config": {"url": f"http://{prober_ip}:8080/health", "expected_status": [200],
                    "timeout_s": 5}},
        {"name": "demo: closed port (always down)", "type": "http",
         "config": {"url": f"http://{db_ip}:8089/", "expected_status": [200], "timeout_s": 3}},
    ]


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def monitors_sql(monitors: list[dict[str, Any]], interval_s: int = 60) -> str:
    rows = ",\n".join(
        f"({_sql_literal(m['name'])}, {_sql_literal(m['type'])}::monitor_type, "
        f"{_sql_literal(json.dumps(m['config'], sort_keys=True))}::jsonb)"
        for m in monitors
    )
    return f"""
BEGIN;
INSERT INTO users (display_name)
  SELECT '{DEMO_USER}' WHERE NOT EXISTS (SELECT 1 FROM users WHERE display_name = '{DEMO_USER}');
WITH wanted(name, target_type, target_config) AS (VALUES
{rows})
INSERT INTO subscriptions (user_id, name, target_type, target_config, check_interval_seconds,
                           status, activated_at)
SELECT (SELECT id FROM users WHERE display_name = '{DEMO_USER}' ORDER BY created_at LIMIT 1),
       w.name, w.target_type, w.target_config, {int(interval_s)}, 'active', now()
FROM wanted w
WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.name = w.name);
COMMIT;
"""


UPTIME_SQL = """
SELECT s.name,
       count(c.*) AS checks,
       coalesce(round(100.0 * count(*) FILTER (WHERE c.status = 'success')
                      / nullif(count(c.*), 0), 1)::text, '-') AS uptime_pct,
       coalesce(round(avg(c.latency_ms))::text, '-') AS avg_ms
FROM subscriptions s
LEFT JOIN check_history c ON c.subscription_id = s.id AND c.time > now() - interval '24 hours'
GROUP BY s.name ORDER BY s.name;
"""


def psql(sb: Sandbox, db_host: str, sql: str, database: str = "lighthouse") -> str:
    cmd = ("runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 "
           f"-d {shlex.quote(database)} -AtF '|'")
    return sb.ssh(db_host, cmd, input_text=sql).stdout


def ensure_demo(dep: LocalDeployment, echo: bool = True) -> None:
    hosts = dep.sandbox.hosts()
    db = next(h for h in hosts if h.role == "db")
    prober = next(h for h in hosts if h.role == "prober")
    dep.playbook("demo.yml", echo=echo)
    psql(dep.sandbox, db.name,
         monitors_sql(demo_monitors(db.ip, prober.ip, demo_push_sha256(dep))))


def wait_for_first_checks(sb: Sandbox, timeout_s: float = 90, poll_s: float = 3) -> bool:
    """Wait (bounded) until every monitor has a check row; checks start within one interval."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = uptime_rows_for(sb)
        if rows and all(r[1] != "0" for r in rows):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)


def uptime_rows_for(sb: Sandbox) -> list[list[str]]:
    db = next(h for h in sb.hosts() if h.role == "db")
    out = psql(sb, db.name, UPTIME_SQL)
    return [line.split("|") for line in out.splitlines() if line.strip()]


def report(dep: LocalDeployment, site: PlaybookResult) -> str:
    lines = [f"Lighthouse deployed to sandbox '{dep.sandbox.name}' "
             f"(release {dep.release.name}; site.yml changed={site.changed})"]
    for name, url in dep.prober_urls().items():
        lines += [f"  {name}: status page {url}", f"  {name}: metrics     {url}metrics",
                  f"  {name}: health      {url}health"]
    lines.append(f"  ssh: ssh -F {dep.sandbox.ssh_config_path} db-1")
    lines.append("Uptime, last 24 h (monitor | checks | uptime % | avg ms):")
    for row in uptime_rows_for(dep.sandbox):
        lines.append("  " + " | ".join(row))
    lines.append("Timings: " + ", ".join(f"{k}={v:.1f}" for k, v in dep.timings.items()))
    return "\n".join(lines)
