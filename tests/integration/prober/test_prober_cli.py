"""The `lighthouse` CLI against a real database."""

from __future__ import annotations

import json

import pytest
from lighthouse.cli import main

from tests.integration.prober.conftest import scalar


@pytest.fixture
def cli(lh_dsn, monkeypatch, capsys):
    monkeypatch.setenv("LIGHTHOUSE_DATABASE__DSN", lh_dsn)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_monitors_lifecycle_and_report(cli, lh_dsn):
    code, out, _ = cli("monitors", "add", "api", "https://api.example.com/health",
                       "--interval", "120", "--expect", "200", "--keyword", "ok")
    assert code == 0
    mid = out.strip()
    assert cli("monitors", "add", "db", "tcp://db.example.com:5432")[0] == 0
    code, _, err = cli("monitors", "add", "db", "tcp://other.example.com:5432")
    assert code == 2 and "a monitor named 'db' exists already" in err  # pause db: which one?
    code, out, _ = cli("monitors", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["api"]["id"] == mid and rows["api"]["interval_s"] == 120
    assert rows["api"]["target"]["expected_status"] == [200]
    assert rows["db"]["type"] == "tcp" and rows["db"]["status"] == "active"

    assert cli("monitors", "pause", "api")[0] == 0
    assert scalar(lh_dsn, "SELECT status::text FROM subscriptions WHERE id = %s",
                  (mid,)) == "paused"
    assert cli("monitors", "resume", mid)[0] == 0
    code, out, _ = cli("report", "--days", "7")
    assert code == 0 and "api" in out and "db" in out

    code, _, err = cli("monitors", "remove", "api")  # no terminal, no --yes: refuses
    assert code == 2 and "--yes" in err
    assert cli("monitors", "remove", "api", "--yes")[0] == 0
    assert scalar(lh_dsn, "SELECT count(*) FROM subscriptions WHERE name = 'api'") == 0
    code, _, err = cli("monitors", "pause", "api")
    assert code == 1 and "no monitor 'api'" in err
    code, _, err = cli("monitors", "add", "bad", "ftp://x")
    assert code == 2 and "ftp://x" in err


def test_migrate_is_idempotent_and_dry_run_changes_nothing(cli):
    code, out, _ = cli("migrate", "--dry-run")
    assert code == 0 and "would apply 0" in out
    code, out, _ = cli("migrate")
    assert code == 0 and "applied 0" in out


def test_config_errors_name_key_and_file(tmp_path, capsys):
    conf = tmp_path / "p.yaml"
    conf.write_text("scheduler:\n  max_concurrency: many\n")
    assert main(["-c", str(conf), "monitors", "list"]) == 2
    err = capsys.readouterr().err
    assert str(conf) in err and "scheduler.max_concurrency" in err


def test_unreachable_database_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("LIGHTHOUSE_DATABASE__DSN",
                       "postgresql://nobody:pw@127.0.0.1:1/none?connect_timeout=2")
    assert main(["monitors", "list"]) == 3
    err = capsys.readouterr().err
    assert "127.0.0.1:1" in err and "pw" not in err.replace("postgresql", "")


def test_incident_list_and_note(cli, lh_dsn):
    import psycopg

    code, out, _ = cli("monitors", "add", "shop", "https://shop.example/")
    mid = out.strip()
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        iid = conn.execute("INSERT INTO incidents (subscription_id, started_at, ended_at, "
                           "first_error_code) VALUES (%s, now() - interval '1 hour', "
                           "now() - interval '50 minutes', 'status') RETURNING id",
                           (mid,)).fetchone()[0]
    code, out, _ = cli("incident", "list", "--json", "--monitor", "shop")
    (listed,) = json.loads(out)
    assert code == 0 and listed["id"] == iid and listed["duration_s"] == 600
    assert listed["note"] is None and listed["first_error_code"] == "status"
    assert cli("incident", "note", str(iid), "CDN misconfiguration, rolled back")[0] == 0
    code, out, _ = cli("incident", "list")
    assert code == 0 and "note: CDN misconfiguration, rolled back" in out and "closed" in out
    code, _, err = cli("incident", "note", "999999", "x")
    assert code == 1 and "no incident 999999" in err
    code, _, err = cli("incident", "note", str(iid), "  ")
    assert code == 2 and "1 to 2000 characters" in err


def test_maintenance_add_list_remove(cli, lh_dsn):
    cli("monitors", "add", "shop", "https://shop.example/")
    code, out, _ = cli("maintenance", "add", "--monitor", "shop", "--for", "2h",
                       "--note", "database upgrade")
    assert code == 0 and "alerts held, checks still run" in out
    wid = int(out.split()[1].rstrip(":"))
    assert cli("maintenance", "add", "--all", "--from", "2030-01-01T22:00+01:00",
               "--to", "2030-01-02T02:00+01:00")[0] == 0
    code, out, _ = cli("maintenance", "list", "--json")
    windows = json.loads(out)
    assert [(w["monitor"], w["note"]) for w in windows] == [("shop", "database upgrade"),
                                                            (None, "")]
    assert windows[1]["starts_at"] == "2030-01-01T21:00:00+00:00"
    code, out, _ = cli("maintenance", "list")
    assert "active" in out and "upcoming" in out and "(all)" in out
    for argv, says in ((["--monitor", "shop", "--all", "--for", "1h"], "--monitor M or --all"),
                       (["--all"], "--to TIME or --for DURATION"),
                       (["--all", "--from", "2020-01-01T00:00Z", "--for", "1h"], "over already"),
                       (["--all", "--from", "2030-01-01T00:00Z", "--to", "2029-01-01T00:00Z"],
                        "before it starts")):
        code, _, err = cli("maintenance", "add", *argv)
        assert code == 2 and says in err, (argv, err)
    with pytest.raises(SystemExit) as exit_:  # argparse: a time without an offset
        cli("maintenance", "add", "--all", "--from", "2030-01-01T00:00", "--for", "1h")
    assert exit_.value.code == 2
    assert cli("maintenance", "remove", str(wid))[0] == 0
    assert cli("maintenance", "remove", str(wid))[0] == 1
    assert len(json.loads(cli("maintenance", "list", "--json")[1])) == 1


def test_report_leaves_maintenance_out_of_uptime_star_without_double_counting(cli, lh_dsn):
    from datetime import UTC, datetime, timedelta

    import psycopg
    from lighthouse import maintenance_windows as mw

    mid = cli("monitors", "add", "api", "https://api.example/")[1].strip()
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=100)
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        with conn.cursor() as cur:  # 100 checks a minute apart; minutes 40-59 fail
            cur.executemany("INSERT INTO check_history (time, subscription_id, status) "
                            "VALUES (%s, %s, %s)",
                            [(start + timedelta(minutes=i), mid,
                              "failure" if 40 <= i < 60 else "success") for i in range(100)])
        # the failures fall in two overlapping windows (one for it, one for all monitors)
        mw.add(conn, mid, start + timedelta(minutes=40), start + timedelta(minutes=55), "a")
        mw.add(conn, None, start + timedelta(minutes=50), start + timedelta(minutes=60), "b")
    code, out, _ = cli("report", "--days", "1", "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["checks"] == 100 and row["uptime_pct"] == 80.0
    assert row["checks_in_maintenance"] == 20  # minutes 40-59 once, not 25
    assert row["uptime_excluding_maintenance_pct"] == 100.0
    code, out, _ = cli("report", "--days", "1")
    assert "UPTIME*" in out and "100.0%" in out


def test_typed_monitors_are_validated_on_add_and_listed_by_target(cli, tmp_path):
    code, _, err = cli("monitors", "add", "rpc", "balance", "--settings",
                       '{"url": "https://rpc.example/v2/KEY", "address": "0x12"}')
    assert code == 2 and "balance monitor: address:" in err
    code, _, err = cli("monitors", "add", "gql", "graphql", "--settings", '{"url": "https://x/"}')
    assert code == 2 and "query" in err
    code, _, err = cli("monitors", "add", "ws", "websocket")
    assert code == 2 and "--settings" in err
    code, _, err = cli("monitors", "add", "ns", "dns", "--settings", '{"name": "a.test",'
                       ' "server": "10.1.2.3"}')
    assert code == 2 and "ssrf" not in err and "10.1.2.3" in err  # private server, not allowed
    settings = tmp_path / "rpc.json"
    settings.write_text('{"url": "https://rpc.example/v2/SECRETKEY", "chain": "base",'
                        ' "address": "0x' + "ab" * 20 + '", "min_balance": 5}')
    assert cli("monitors", "add", "rpc", "balance", "--settings", f"@{settings}")[0] == 0
    code, out, _ = cli("monitors", "list")
    assert code == 0 and "balance" in out and "via rpc.example" in out
    assert "SECRETKEY" not in out  # RPC URLs hold API keys: the list shows the host only


def test_one_off_check_of_a_typed_target(cli):
    from tests.support.dnsserver import DnsServer

    server = DnsServer({("app.test", "A"): ["192.0.2.7"]}).start()
    try:
        settings = json.dumps({"name": "app.test", "server": "127.0.0.1", "port": server.port,
                               "expected": ["192.0.2.7"]})
        code, out, _ = cli("check", "dns", "--settings", settings, "--allow", "127.0.0.1/32")
        assert code == 0 and "status:        success" in out and "A app.test @127.0.0.1" in out
        assert "dns:" in out
        code, out, _ = cli("check", "dns", "--settings", settings)  # loopback not allowed
        assert code == 1 and "(ssrf)" in out
    finally:
        server.stop()


def test_monitor_locations_and_quorum(cli, lh_dsn):
    code, out, _ = cli("monitors", "add", "edge", "https://edge.example/", "--locations",
                       "us-east-1, eu-west-1,eu-west-1", "--quorum", "2")
    assert code == 0
    mid = out.strip()
    code, out, _ = cli("monitors", "list", "--json")
    (row,) = json.loads(out)
    assert (row["locations"], row["quorum"]) == (["eu-west-1", "us-east-1"], 2)
    code, out, _ = cli("monitors", "locations", "edge")
    assert code == 0 and "checked from eu-west-1, us-east-1; quorum 2" in out
    assert cli("monitors", "locations", "edge", "--quorum", "1")[0] == 0  # keeps the list
    assert scalar(lh_dsn, "SELECT array_to_string(locations, ',') || '/' || quorum "
                          "FROM subscriptions WHERE id = %s", (mid,)) == "eu-west-1,us-east-1/1"
    code, out, _ = cli("monitors", "locations", "edge", "--all")
    assert code == 0 and "every location; quorum a majority" in out
    # refused with a reason, and nothing changed
    code, _, err = cli("monitors", "locations", "edge", "--set", "a,b", "--quorum", "3")
    assert code == 2 and "--quorum 3: more than the 2 locations given" in err
    code, _, err = cli("monitors", "add", "x", "https://x.example/", "--locations", "EU West")
    assert code == 2 and "'EU West' is not a location name" in err
    assert scalar(lh_dsn, "SELECT locations IS NULL AND quorum IS NULL FROM subscriptions "
                          "WHERE id = %s", (mid,)) is True
