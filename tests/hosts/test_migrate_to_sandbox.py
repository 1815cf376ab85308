"""`invoke db.migrate-to` on sandbox hosts: the live database on db-1 (PostgreSQL 17 +
TimescaleDB, Apache edition) moves to a plain PostgreSQL 17 (Debian's package, no TimescaleDB:
the stand-in for RDS) on prober-1, while the prober writes. The runbook runs end to end through
invoke: live bulk copy, read-only cutover while the prober spools, verification, and the switch
through prober.yml (Ansible renders the prober's DSN for the new host, restarts it, the spool
replays there). Then: every check the prober made is on the target, nothing twice, the source
is read-only, the prober is healthy on the vanilla server.

It leaves the prober pointed at prober-1 and db-1 read-only, so tests/hosts/conftest.py runs it
after every other host test but the fleet proof, whose own site.yml converge points the probers
back at db-1 (made writable again here on the way out).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from lighthouse_ops.sandbox import Sandbox

from tests.hosts.deploy_support import Converged, psql
from tests.support.pgserver import wait_for

ROOT = Path(__file__).resolve().parents[2]
TARGET_PORT = 5433  # the package's own cluster keeps 5432 (localhost only)
TARGET_DIR = "/var/lib/postgresql/lh-target"
PG_BIN = "/usr/lib/postgresql/17/bin"


def _sh(sandbox: Sandbox, host: str, script: str, check: bool = True) -> str:
    return sandbox.ssh(host, script, check=check).stdout


def plain_postgres(sandbox: Sandbox, password: str) -> str:
    """PostgreSQL 17 without TimescaleDB on prober-1: TLS with a certificate from the members'
    CA for its own address (the prober verifies it as it verifies db-1), the app role as its
    superuser (as RDS's master user), reachable from the controller and the probers."""
    ip = sandbox.host("prober-1").ip
    _sh(sandbox, "prober-1", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                             "--no-install-recommends postgresql-17 >/dev/null")
    # a server certificate for prober-1's address, signed on db-1 by the CA the probers trust
    csr = _sh(sandbox, "prober-1", f"""set -e
mkdir -p {TARGET_DIR}.tls && cd {TARGET_DIR}.tls
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
  -subj /CN=prober-1 -addext subjectAltName=IP:{ip} -out server.csr 2>/dev/null
chown -R postgres:postgres . && chmod 600 server.key && cat server.csr""")
    cert = sandbox.ssh("db-1", "set -e; d=$(mktemp -d); cat > $d/csr; cd /etc/lighthouse-db-ca; "
                               "openssl x509 -req -in $d/csr -CA ca.crt -CAkey ca.key "
                               "-CAcreateserial -CAserial $d/serial -days 7 -copy_extensions "
                               "copy 2>/dev/null; rm -rf $d", input_text=csr).stdout
    sandbox.ssh("prober-1", f"cat > {TARGET_DIR}.tls/server.crt", input_text=cert)
    allowed = [sandbox.host("prober-1").controller_ip] + [h.ip for h in sandbox.hosts()
                                                      if h.role == "prober"]
    hba = "\\n".join(f"hostssl lighthouse lighthouse {a}/32 scram-sha-256" for a in allowed)
    _sh(sandbox, "prober-1", f"""set -e
rm -rf {TARGET_DIR} && install -d -o postgres -g postgres {TARGET_DIR}
printf '%s' '{password}' > {TARGET_DIR}.pw && chown postgres {TARGET_DIR}.pw
runuser -u postgres -- {PG_BIN}/initdb -D {TARGET_DIR} -U lighthouse --pwfile {TARGET_DIR}.pw \
  -A scram-sha-256 -E UTF8 --locale C.UTF-8 >/dev/null
rm -f {TARGET_DIR}.pw
printf 'local all all scram-sha-256\\nhostssl all all 127.0.0.1/32 scram-sha-256\\n{hba}\\n' \
  > {TARGET_DIR}/pg_hba.conf
cat >> {TARGET_DIR}/postgresql.auto.conf <<EOF
listen_addresses = '127.0.0.1,{ip}'
port = {TARGET_PORT}
unix_socket_directories = '/tmp'
ssl = on
ssl_cert_file = '{TARGET_DIR}.tls/server.crt'
ssl_key_file = '{TARGET_DIR}.tls/server.key'
EOF
runuser -u postgres -- {PG_BIN}/pg_ctl -D {TARGET_DIR} -l {TARGET_DIR}.log -w start >/dev/null
PGPASSWORD='{password}' {PG_BIN}/psql -h 127.0.0.1 -p {TARGET_PORT} -U lighthouse -d postgres \
  -qc 'CREATE DATABASE lighthouse'""")
    return f"postgresql://lighthouse:{password}@{ip}:{TARGET_PORT}/lighthouse?sslmode=require"


@pytest.fixture(scope="module")
def move(sandbox: Sandbox, site: Converged):
    dep = site.dep
    password = (Path(dep.secrets_dir) / "db_app_password").read_text().strip()
    db_ip = sandbox.host("db-1").ip
    controller = sandbox.host("db-1").controller_ip
    # the runbook runs on the controller: let it reach db-1's database (the sandbox's hba
    # admits the probers only); the fleet proof's converge writes hba back
    sandbox.ssh("db-1", f"echo 'hostssl lighthouse lighthouse {controller}/32 scram-sha-256' "
                        ">> /etc/postgresql/17/main/pg_hba.conf && "
                        "runuser -u postgres -- psql -qc 'SELECT pg_reload_conf()'")
    target = plain_postgres(sandbox, password)
    source = f"postgresql://lighthouse:{password}@{db_ip}:5432/lighthouse?sslmode=require"
    yield dep, source, target
    psql(sandbox, "ALTER DATABASE lighthouse RESET default_transaction_read_only",
         database="postgres")  # a session on lighthouse itself would be read-only
    sandbox.ssh("prober-1", f"runuser -u postgres -- {PG_BIN}/pg_ctl -D {TARGET_DIR} -m fast "
                            "stop", check=False)


def _count(dsn: str, query: str) -> int:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=10) as conn:
        return int(conn.execute(query).fetchone()[0])


def test_the_live_database_moves_to_plain_postgresql_and_the_prober_follows(
        sandbox: Sandbox, move) -> None:
    import psycopg

    dep, source, target = move
    recent = "SELECT count(*) FROM check_history WHERE time > now() - interval '10 minutes'"
    assert wait_for(lambda: _count(source, recent) > 0, 120)
    started = time.time()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("invoke")), "db.migrate-to", "--source", source,
         "--target", target, "--inventory", str(dep.inventory), "-y"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
        env={**os.environ, "LIGHTHOUSE_SECRETS_DIR": str(dep.secrets_dir)})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    out = done.stdout
    assert "every table equal" in out and "source is read-only" in out, out
    # the source refuses writes: the prober cannot fall back on it by mistake
    with psycopg.connect(source) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
    # the prober now writes to the plain server (vanilla level: partitions, no TimescaleDB)
    with psycopg.connect(target) as conn:
        level = conn.execute("SELECT capability FROM schema_migrations ORDER BY version DESC "
                             "LIMIT 1").fetchone()[0]
        assert level == "vanilla"
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
                            ).fetchone()[0] == 0
    after = f"SELECT count(*) FROM check_history WHERE time > to_timestamp({time.time()})"
    assert wait_for(lambda: _count(target, after) >= 2, 120), out
    config = sandbox.ssh("prober-1", "cat /etc/lighthouse/prober.yaml").stdout
    assert f"@{sandbox.host('prober-1').ip}:{5433}/" in config
    with urllib.request.urlopen(dep.prober_urls()["prober-1"] + "health",  # noqa: S310
                                timeout=10) as r:
        health = json.loads(r.read())
    assert health["database"]["reachable"] is True, health
    # every check stored on db-1 is on the target, once; nothing was lost in the window
    key = "SELECT subscription_id, time, location FROM check_history"
    with psycopg.connect(source) as s, psycopg.connect(target) as t:
        theirs = set(s.execute(key).fetchall())
        ours = t.execute(key).fetchall()
    assert theirs <= set(ours) and len(ours) == len(set(ours))
    gap = ("SELECT max(gap) FROM (SELECT extract(epoch FROM time - lag(time) OVER "
           "(PARTITION BY subscription_id, location ORDER BY time)) AS gap FROM check_history "
           f"WHERE time > to_timestamp({started - 60})) g")
    worst = _count(target, gap.replace("SELECT max(gap)", "SELECT coalesce(max(gap), 0)::int"))
    longest = _count(target, "SELECT max(check_interval_seconds) FROM subscriptions "
                             "WHERE status = 'active'")
    # no check skipped: at most one interval plus the prober's restart between two checks
    assert worst <= longest + 30, (worst, longest)
    # the results made while db-1 was read-only went to the spool and reached the target
    journal = sandbox.ssh("prober-1", "journalctl -u lighthouse-prober --no-pager -o cat "
                                      f"--since @{int(started)}").stdout
    assert "spooling results" in journal and "spool segment replayed" in journal, journal[-3000:]
    lines = [line for line in out.splitlines() if "read-only" in line and "verify" in line]
    print(f"\nmigrate-to in the sandbox: {lines[-1].strip() if lines else out[-300:]}; "
          f"largest gap between two checks of a monitor {worst} s")
