"""dev-sec postgres-baseline on the converged database host, one test per control (named after
it), read from the running server and the files it uses. Where we deviate from a control's
letter the test asserts what we do instead and the docstring says why (docs/ansible.md)."""

from __future__ import annotations

import pytest

from tests.hosts.deploy_support import psql

PG = "17"
CONF_DIR = f"/etc/postgresql/{PG}/main"
PGDATA = f"/data/postgresql/{PG}/main"
LOG_DIR = "/var/log/postgresql"
DATABASES = ("postgres", "lighthouse")
# objects an extension (timescaledb, pg_stat_statements) made, which we do not own or change
NOT_EXTENSION_MEMBER = ("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} "
                        "AND d.deptype = 'e')")


@pytest.fixture(scope="module")
def hba(db) -> list[list[str]]:
    text = db.file(f"{CONF_DIR}/pg_hba.conf").content_string
    return [line.split() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def show(sandbox, setting: str) -> str:
    return psql(sandbox, f"SHOW {setting}", "postgres")[0][0]


def private_to_postgres(f, mode: int) -> None:
    assert f.user == "postgres" and f.group == "postgres", (f.path, f.user, f.group)
    assert f.mode == mode, (f.path, oct(f.mode))


def test_postgres_01_running(db) -> None:
    assert db.service(f"postgresql@{PG}-main").is_running


def test_postgres_02_stable_version(sandbox) -> None:
    version = show(sandbox, "server_version")
    assert version.split(".")[0] in {"13", "14", "15", "16", "17"}
    assert not any(tag in version for tag in ("RC", "DEVEL", "BETA", "beta", "rc"))


def test_postgres_03_one_instance(db) -> None:
    postmasters = db.check_output("pgrep -c -f '^/usr/lib/postgresql/[0-9]+/bin/postgres '")
    assert postmasters == "1"


@pytest.mark.parametrize("database", DATABASES)
def test_postgres_04_only_c_and_internal_untrusted_languages(sandbox, database) -> None:
    rows = psql(sandbox, "SELECT lanname FROM pg_language WHERE NOT lanpltrusted "
                         "AND lanname NOT IN ('internal', 'c')", database)
    assert rows == []


@pytest.mark.parametrize("database", DATABASES)
def test_postgres_05_no_extra_languages(sandbox, database) -> None:
    rows = psql(sandbox, "SELECT lanname FROM pg_language "
                         "WHERE lanname NOT IN ('internal', 'c', 'sql', 'plpgsql')", database)
    assert rows == []


def test_postgres_06_every_password_login_role_has_a_password(sandbox, db, hba) -> None:
    """Deviation: postgres has no password at all, so it can only log in by peer on the local
    socket (postgres-13); a password it never uses would only add a way in."""
    without = psql(sandbox, "SELECT usename FROM pg_shadow WHERE passwd IS NULL", "postgres")
    assert without == [["postgres"]]
    local = [f for f in hba if f[0] == "local" and f[2] in ("postgres", "all")]
    assert local and all(f[-1] == "peer" for f in local)
    # over TCP the password check can only fail for it
    out = db.run("PGPASSWORD=anything PGCONNECT_TIMEOUT=5 psql 'host=127.0.0.1 user=postgres "
                 "dbname=postgres sslmode=require' -Atc 'SELECT 1'")
    assert out.rc != 0 and "password authentication failed" in out.stderr


def test_postgres_07_salted_password_hashes(sandbox) -> None:
    assert show(sandbox, "password_encryption") == "scram-sha-256"
    hashes = psql(sandbox, "SELECT usename, passwd FROM pg_shadow WHERE passwd IS NOT NULL",
                  "postgres")
    assert hashes and all(h.startswith("SCRAM-SHA-256$") for _, h in hashes), \
        [u for u, h in hashes if not h.startswith("SCRAM-SHA-256$")]


def test_postgres_08_only_the_dba_has_superuser_createdb_createrole(sandbox) -> None:
    rows = psql(sandbox, "SELECT rolname FROM pg_roles WHERE rolsuper OR rolcreaterole "
                         "OR rolcreatedb", "postgres")
    assert rows == [["postgres"]]


def test_postgres_09_only_the_dba_has_privileges_on_pg_authid(sandbox) -> None:
    rows = psql(sandbox, "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
                         "WHERE table_name = 'pg_authid'", "postgres")
    assert rows == [["postgres"]]


def test_postgres_10_config_dir_and_files_belong_to_postgres(db) -> None:
    private_to_postgres(db.file(CONF_DIR), 0o700)
    private_to_postgres(db.file(f"{CONF_DIR}/postgresql.conf"), 0o640)
    private_to_postgres(db.file(f"{CONF_DIR}/pg_hba.conf"), 0o600)


def test_postgres_11_ssl_on(sandbox) -> None:
    assert show(sandbox, "ssl") == "on"
    assert show(sandbox, "ssl_cert_file") == f"{CONF_DIR}/tls/server.crt"


def test_postgres_12_strong_ssl_ciphers(sandbox, db) -> None:
    """Deviation: the control's literal list ('ALL:!ADH:!LOW:!EXP:!MD5:@STRENGTH') still allows
    3DES, RC4-era and SHA-1 suites; we require TLS 1.2+ and check what the list expands to."""
    assert show(sandbox, "ssl_min_protocol_version") in ("TLSv1.2", "TLSv1.3")
    suites = db.check_output(f"openssl ciphers '{show(sandbox, 'ssl_ciphers')}'").split(":")
    weak = [s for s in suites if any(w in s for w in
                                     ("NULL", "MD5", "RC4", "DES", "EXP", "ADH", "AECDH"))
            or s.endswith("-SHA")]
    assert suites and not weak, weak


def test_postgres_13_local_users_use_peer(hba) -> None:
    local = [f for f in hba if f[0] == "local"]
    assert local and all(f[-1] == "peer" for f in local), local


def test_postgres_14_only_trusted_methods_for_tcp(hba) -> None:
    tcp = [f for f in hba if f[0] != "local"]
    assert tcp and all(f[-1] == "scram-sha-256" for f in tcp), tcp


def test_postgres_15_tls_between_all_peers(hba) -> None:
    assert [f for f in hba if f[0] in ("host", "hostnossl", "hostgssenc")] == []
    assert all(f[0] in ("local", "hostssl") for f in hba)


def test_postgres_16_logging(sandbox, db) -> None:
    """Deviations: log_min_duration_statement = 1 s instead of log_duration (a line for every
    statement the prober's writer sends) and log_hostname off (a reverse DNS lookup on every
    connection stalls logins when DNS is down, an outage a monitor must ride out); %m is %t
    with milliseconds."""
    assert show(sandbox, "logging_collector") == "on"
    assert show(sandbox, "log_connections") == "on"
    assert show(sandbox, "log_disconnections") == "on"
    assert show(sandbox, "log_min_duration_statement") == "1s"
    assert show(sandbox, "log_directory") == LOG_DIR
    prefix = show(sandbox, "log_line_prefix")
    assert all(escape in prefix for escape in ("%m", "%u", "%d", "%h")), prefix
    log = db.file(f"{LOG_DIR}/postgresql-{PG}-main.log")
    assert "connection authorized" in log.content_string


@pytest.mark.parametrize("database", DATABASES)
def test_postgres_17_no_grants_to_public(sandbox, database) -> None:
    """On everything but the extensions' own catalogs (TimescaleDB's and pg_stat_statements'
    views grant SELECT to PUBLIC by design; we do not rewrite extensions)."""
    rows = psql(sandbox, "SELECT c.relnamespace::regnamespace, c.relname FROM pg_class c, "
                         "aclexplode(c.relacl) a WHERE a.grantee = 0 AND c.relnamespace NOT IN "
                         "('pg_catalog'::regnamespace, 'information_schema'::regnamespace) AND "
                         + NOT_EXTENSION_MEMBER.format(oid="c.oid"), database)
    assert rows == []


@pytest.mark.parametrize("database", DATABASES)
def test_postgres_18_no_grant_option_to_others(sandbox, database) -> None:
    """An owner always holds the grant option on its own tables (the app role owns its schema,
    it runs the migrations): what must not exist is a grant option given to anyone else."""
    rows = psql(sandbox, "SELECT grantee, table_schema, table_name FROM "
                         "information_schema.table_privileges WHERE is_grantable = 'YES' "
                         "AND grantee <> grantor AND grantee <> 'postgres'", database)
    assert rows == []


@pytest.mark.parametrize("database", DATABASES)
def test_postgres_19_no_security_definer_functions(sandbox, database) -> None:
    """Ours and any added by hand; TimescaleDB ships some of its own (extension members)."""
    rows = psql(sandbox, "SELECT p.oid::regprocedure FROM pg_proc p WHERE p.prosecdef AND "
                         + NOT_EXTENSION_MEMBER.format(oid="p.oid"), database)
    assert rows == []


def test_postgres_20_data_and_log_dirs_belong_to_postgres(db) -> None:
    private_to_postgres(db.file(PGDATA), 0o700)
    private_to_postgres(db.file(LOG_DIR), 0o700)
    private_to_postgres(db.file(f"{LOG_DIR}/postgresql-{PG}-main.log"), 0o600)
