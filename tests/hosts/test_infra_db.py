"""testinfra: the converged database host (packages, service, sockets, modes, /data, extension,
TLS the prober verifies; postgres-baseline controls: test_postgres_baseline.py)."""

from __future__ import annotations

import json

import psycopg
import pytest
from lighthouse_ops.deploy.ansible_run import changed_tasks

from tests.hosts.deploy_support import Converged, psql

PG = "17"
CONF_DIR = f"/etc/postgresql/{PG}/main"
PGDATA = f"/data/postgresql/{PG}/main"


def show(sandbox, setting: str, database: str = "postgres") -> str:
    return psql(sandbox, f"SHOW {setting}", database)[0][0]


def test_packages_and_versions(db) -> None:
    assert db.package(f"postgresql-{PG}").is_installed
    tsdb = db.package(f"postgresql-{PG}-timescaledb")
    assert tsdb.is_installed and tsdb.version.startswith("2.")
    for name in ("chrony", "unattended-upgrades", "e2fsprogs"):
        assert db.package(name).is_installed, name


def test_postgresql_running_and_enabled(db) -> None:
    svc = db.service(f"postgresql@{PG}-main")
    assert svc.is_running and svc.is_enabled
    assert "RequiresMountsFor=/data" in db.file(
        "/etc/systemd/system/postgresql@.service.d/lighthouse.conf").content_string


def test_5432_only_on_loopback_and_host_address(db, sandbox_hosts) -> None:
    ip = sandbox_hosts["db-1"].ip
    assert db.socket(f"tcp://127.0.0.1:{5432}").is_listening
    assert db.socket(f"tcp://{ip}:5432").is_listening
    assert not db.socket("tcp://0.0.0.0:5432").is_listening
    listening = db.check_output("ss -Hltn 'sport = :5432'")
    assert {line.split()[3] for line in listening.splitlines()} == {"127.0.0.1:5432",
                                                                    f"{ip}:5432"}


def test_data_volume_mounted_by_uuid_with_noatime(db) -> None:
    mount = db.mount_point("/data")
    assert mount.exists and mount.filesystem == "ext4"
    assert "noatime" in mount.options
    uuid = db.check_output("findmnt -n -o UUID /data")
    assert f"UUID={uuid} /data ext4" in db.file("/etc/fstab").content_string


def test_pgdata_on_data_volume_private(db, sandbox) -> None:
    assert show(sandbox, "data_directory") == PGDATA
    d = db.file(PGDATA)
    assert d.is_directory and d.mode == 0o700 and d.user == "postgres"
    assert db.check_output(f"findmnt -n -o TARGET --target {PGDATA}") == "/data"


@pytest.mark.parametrize("path", ["postgresql.conf", "pg_hba.conf", "pg_ident.conf",
                                  "conf.d/50-lighthouse.conf"])
def test_configs_not_world_readable(db, path: str) -> None:
    f = db.file(f"{CONF_DIR}/{path}")
    assert f.user == "postgres" and f.mode & 0o037 == 0, oct(f.mode)


def test_timescaledb_extension_and_preload(sandbox) -> None:
    rows = psql(sandbox, "SELECT extname, extversion FROM pg_extension ORDER BY 1")
    names = {r[0] for r in rows}
    assert {"timescaledb", "pg_stat_statements"} <= names
    assert set(show(sandbox, "shared_preload_libraries").split(",")) >= {
        "timescaledb", "pg_stat_statements"}
    # the extension's own settings exist in databases that have it
    assert show(sandbox, "timescaledb.license", "lighthouse") == "apache"


def test_the_prober_connects_over_tls_it_verifies(sandbox, sandbox_hosts, prober_host) -> None:
    """sslmode=verify-full with the CA the db host made; the server sees TLS connections."""
    dsn = prober_host.file("/etc/lighthouse/prober.yaml").content_string
    assert "sslmode=verify-full&sslrootcert=/etc/lighthouse/db-ca.crt" in dsn
    rows = psql(sandbox, "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a "
                         f"USING (pid) WHERE a.client_addr = '{sandbox_hosts['prober-1'].ip}'",
                "postgres")
    assert rows and all(r[0] == "t" and r[1] in ("TLSv1.2", "TLSv1.3") for r in rows), rows


def test_the_server_certificate_names_the_db_address_and_chains_to_its_ca(
        db, sandbox_hosts, tmp_path) -> None:
    """From the controller (not in pg_hba): verification succeeds up to pg_hba's refusal; a
    wrong name or another CA fails at TLS."""
    ca = tmp_path / "ca.crt"
    ca.write_text(db.file("/etc/lighthouse-db-ca/ca.crt").content_string)
    ip = sandbox_hosts["db-1"].ip
    common = {"port": 5432, "dbname": "lighthouse", "user": "lighthouse",
              "password": "wrong-anyway", "connect_timeout": 5, "sslmode": "verify-full"}
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry.*SSL encryption"):
        psycopg.connect(host=ip, sslrootcert=str(ca), **common)
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        psycopg.connect(host="db.example.invalid", hostaddr=ip, sslrootcert=str(ca), **common)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(host=ip, sslrootcert="/etc/ssl/certs/ca-certificates.crt", **common)


def test_tcp_without_tls_is_refused_even_from_the_prober(prober_host, sandbox_hosts) -> None:
    ip = sandbox_hosts["db-1"].ip
    out = prober_host.run(
        "/opt/lighthouse/current/bin/python -c 'import psycopg; psycopg.connect("
        f"host=\"{ip}\", dbname=\"lighthouse\", user=\"lighthouse\", "
        "password=\"wrong-anyway\", sslmode=\"disable\", connect_timeout=5)'")
    assert out.rc != 0 and "no pg_hba.conf entry" in out.stderr and "no encryption" in out.stderr


TLS = f"{CONF_DIR}/tls"
SERVED_END = ("openssl s_client -starttls postgres -connect 127.0.0.1:5432 </dev/null 2>/dev/null"
              " | openssl x509 -noout -enddate")


def test_a_converge_reissues_a_certificate_close_to_expiry(site: Converged, sandbox, db) -> None:
    """A certificate with a day left (timescaledb_tls_renew_days is 30) is re-issued by the next
    converge and served after a reload; the keys stay private."""
    sandbox.ssh("db-1", f"cd {TLS} && openssl req -x509 -new -noenc -newkey ec -pkeyopt "
                "ec_paramgen_curve:prime256v1 -keyout server.key -out server.crt -days 1 "
                "-CA /etc/lighthouse-db-ca/ca.crt -CAkey /etc/lighthouse-db-ca/ca.key "
                "-config server.cnf -extensions server_cert 2>/dev/null "
                "&& chown postgres:postgres server.key server.crt && chmod 0600 server.key "
                "&& systemctl reload postgresql@17-main", check=True)
    expiring = db.check_output(SERVED_END)
    res = site.dep.playbook("db.yml", echo=False, check=False)
    assert res.ok, res.output[-3000:]
    changed = changed_tasks(res.output)
    assert ("timescaledb : Issue the server certificate", "db-1") in changed, changed
    assert ("timescaledb : Reload postgresql under systemd", "db-1") in changed, changed
    assert db.run(f"openssl x509 -noout -checkend 2592000 -in {TLS}/server.crt").rc == 0
    served = db.check_output(SERVED_END)
    assert served != expiring
    assert served == db.check_output(f"openssl x509 -noout -enddate -in {TLS}/server.crt")
    ca_dir = db.file("/etc/lighthouse-db-ca")
    assert ca_dir.user == "root" and ca_dir.mode == 0o700
    assert db.file("/etc/lighthouse-db-ca/ca.key").mode == 0o600
    key = db.file(f"{TLS}/server.key")
    assert key.user == "postgres" and key.mode == 0o600


def test_a_backup_config_that_cannot_open_the_repository_is_refused(site: Converged, sandbox,
                                                                    db) -> None:
    """The repository is encrypted; a converge asking for no cipher would make every
    archive-push fail. It stops with a clear message, keeps the working config and archiving."""
    conf = "/etc/pgbackrest/pgbackrest.conf"
    before = db.check_output(f"sha256sum {conf}")
    assert db.run(f"grep -q '^repo1-cipher-type=aes-256-cbc$' {conf}").rc == 0
    passphrase = (site.dep.secrets_dir / "pgbackrest_cipher_pass").read_text().strip()
    res = site.dep.playbook("db.yml", {"pgbackrest_repo_cipher_type": "none"}, echo=False,
                            check=False)
    assert not res.ok
    assert "does not open with repo1-cipher-type=none" in res.output, res.output[-2000:]
    assert "The current config was left in place" in res.output
    assert passphrase and passphrase not in res.output
    assert db.check_output(f"sha256sum {conf}") == before
    sandbox.ssh("db-1", "cd /tmp && su postgres -c 'pgbackrest --stanza=lighthouse "
                "--log-level-console=warn check'", check=True)


def test_tuning_rendered_from_timescaledb_tune_rules(db) -> None:
    conf = db.file(f"{CONF_DIR}/conf.d/50-lighthouse.conf").content_string
    # group_vars: 1024 MB, 2 CPUs -> RAM/4 and 3/4 RAM
    assert "shared_buffers = '256MB'" in conf
    assert "effective_cache_size = '768MB'" in conf
    assert "max_worker_processes = 13" in conf


def test_app_role_reaches_only_from_allowed_addresses(sandbox, sandbox_hosts) -> None:
    """The controller is not in pg_hba's CIDRs: its connection is refused by pg_hba."""
    ip = sandbox_hosts["db-1"].ip
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
        psycopg.connect(host=ip, port=5432, dbname="lighthouse", user="lighthouse",
                        password="wrong-anyway", connect_timeout=5, sslmode="disable")  # noqa: S106


def test_app_role_is_not_superuser_and_owns_database(sandbox) -> None:
    rows = psql(sandbox, "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                         "WHERE rolname = 'lighthouse'", "postgres")
    assert rows == [["f", "f", "f"]]
    owner = psql(sandbox, "SELECT pg_get_userbyid(datdba) FROM pg_database "
                          "WHERE datname = 'lighthouse'", "postgres")
    assert owner == [["lighthouse"]]


def test_common_role_items(db) -> None:
    assert db.file("/etc/systemd/journald.conf.d/50-lighthouse.conf").contains("SystemMaxUse=")
    assert db.file("/etc/apt/apt.conf.d/20auto-upgrades").contains('Unattended-Upgrade "1"')
    assert db.file("/etc/sysctl.d/60-lighthouse.conf").contains("vm.swappiness = 1")
    assert db.service("chrony").is_enabled
    user = db.user("lighthouse")
    assert user.exists and user.shell == "/usr/sbin/nologin"


def test_unattended_upgrades_timers_run_and_leave_postgresql_alone(db, prober_host) -> None:
    for host in (db, prober_host):
        for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
            unit = host.service(timer)
            assert unit.is_enabled and unit.is_running, timer
    held = db.check_output("apt-config dump Unattended-Upgrade::Package-Blacklist")
    for pattern in ("^postgresql-[0-9]+", "^timescaledb", "^postgresql-common$"):
        assert f'"{pattern}"' in held, held


def test_cloudwatch_config_rendered_valid_not_installed(db) -> None:
    f = db.file("/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json")
    cfg = json.loads(f.content_string)
    assert sorted(cfg["metrics"]["metrics_collected"]["disk"]["resources"]) == ["/", "/data"]
    # what the stack's alarms read (tests/unit/infra/test_aws_contract.py crosses that seam)
    assert cfg["metrics"]["namespace"] == "CWAgent"
    assert cfg["metrics"]["metrics_collected"]["disk"]["drop_device"] is True
    assert not db.file("/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl").exists


def test_pgbackrest_check_passes_and_archiving_healthy(db, sandbox) -> None:
    if not db.file("/etc/pgbackrest/pgbackrest.conf").exists:
        pytest.skip("pgbackrest role not converged (no roles/pgbackrest or S3)")
    db.run_expect([0], "runuser -u postgres -- pgbackrest --stanza=lighthouse check")
    assert show(sandbox, "archive_mode") == "on"
    failed = psql(sandbox, "SELECT failed_count FROM pg_stat_archiver", "postgres")
    assert failed == [["0"]]
    conf = db.file("/etc/pgbackrest/pgbackrest.conf")
    assert conf.mode & 0o007 == 0  # holds the repository key
