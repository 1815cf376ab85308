"""Push (heartbeat) monitors end to end: CLI token → /push/<token> on a prober → push check
read by another prober, over real PostgreSQL 15."""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
import uuid

import pytest
from lighthouse.checks import CheckContext, run_check
from lighthouse.cli import main
from lighthouse.models import Monitor, Status
from lighthouse.push import PushStore
from psycopg_pool import AsyncConnectionPool

from tests.integration.prober.conftest import scalar, serve_web
from tests.unit.checks.aio import run_async


@pytest.fixture
def push_monitor(lh_dsn, monkeypatch, capsys):
    """A push monitor added the way an operator does: (id, token, push path)."""
    monkeypatch.setenv("LIGHTHOUSE_DATABASE__DSN", lh_dsn)
    assert main(["monitors", "add", "nightly-backup", "push://", "--interval", "300",
                 "--grace", "30"]) == 0
    out = capsys.readouterr().out
    mid = uuid.UUID(out.splitlines()[0])
    token = re.search(r"/push/([A-Za-z0-9_-]{43})", out).group(1)
    return mid, token


def call(url: str, data: bytes | None = None) -> tuple[int, dict]:
    try:
        request = urllib.request.Request(url, data=data)  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310 - loopback
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def check(dsn: str, mid: uuid.UUID) -> object:
    """One push check as a prober runs it (its own pool: a different prober than the web's)."""
    async def go():
        pool = AsyncConnectionPool(dsn, min_size=0, max_size=2, open=False)
        await pool.open()
        ctx = CheckContext.create()
        ctx.push_store = PushStore(pool)
        try:
            config = scalar(dsn, "SELECT target_config FROM subscriptions WHERE id = %s", (mid,))
            return await run_check(Monitor(mid, "nightly-backup", "push", config, 300), ctx)
        finally:
            await ctx.aclose()
            await pool.close()

    return run_async(go())


def age(dsn: str, mid: uuid.UUID, column: str, seconds: int) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE push_heartbeats SET {column} = now() - make_interval(secs => %s) "
                     "WHERE subscription_id = %s", (seconds, mid))


def test_only_the_token_hash_is_stored(lh_dsn, push_monitor):
    mid, token = push_monitor
    row = scalar(lh_dsn, "SELECT s::text FROM subscriptions s WHERE id = %s", (mid,))
    assert token not in row and "token_sha256" in row
    assert scalar(lh_dsn, "SELECT (target_config->>'grace_s')::float FROM subscriptions "
                  "WHERE id = %s", (mid,)) == 30


def test_silence_push_and_reported_failure(lh_dsn, push_monitor, caplog):
    mid, token = push_monitor
    first = check(lh_dsn, mid)  # arms the monitor: the clock starts now
    assert first.status is Status.SUCCESS, first.error_message
    age(lh_dsn, mid, "armed_at", 331)  # interval 300 + grace 30 passed with no push
    silent = check(lh_dsn, mid)
    assert (silent.status, silent.error_code) == (Status.FAILURE, "no_push")
    assert "no push since the monitor was armed" in silent.error_message

    with serve_web(lh_dsn) as base, caplog.at_level(logging.DEBUG, logger="lighthouse"):
        assert call(f"{base}/push/{token}") == (200, {"ok": True})  # GET, as curl from cron
        assert check(lh_dsn, mid).status is Status.SUCCESS
        code, _ = call(f"{base}/push/{token}?status=down&msg=disk%20full%20at%20"
                       "https%3A%2F%2Fu%3Asecret%40backup.example", data=b"log tail")
        assert code == 200  # POST with a body
        down = check(lh_dsn, mid)
        assert (down.status, down.error_code) == (Status.FAILURE, "pushed_down")
        assert "disk full" in down.error_message and "secret" not in down.error_message
        assert call(f"{base}/push/{token}", data=b"")[0] == 200
        assert check(lh_dsn, mid).status is Status.SUCCESS
        age(lh_dsn, mid, "last_push_at", 400)
        late = check(lh_dsn, mid)
        assert late.error_code == "no_push" and "last push 7 min ago" in late.error_message

        assert call(f"{base}/push/{token}?status=maybe")[0] == 400
        assert call(f"{base}/push/{token}?status=down&msg=nul%00byte")[0] == 200
        assert "nulbyte" in check(lh_dsn, mid).error_message
        assert call(f"{base}/push/{token}")[0] == 200
        assert call(f"{base}/push/{'x' * 43}")[0] == 404
        assert call(f"{base}/push/")[0] == 404
        assert call(f"{base}/push/{'y' * 5000}")[0] in (404, 414)
    assert scalar(lh_dsn, "SELECT pushes FROM push_heartbeats WHERE subscription_id = %s",
                  (mid,)) == 5
    assert token not in caplog.text


def test_paused_monitor_refuses_pushes_and_new_token_replaces_the_old(
        lh_dsn, push_monitor, capsys):
    mid, token = push_monitor
    with serve_web(lh_dsn) as base:
        assert main(["monitors", "pause", str(mid)]) == 0
        assert call(f"{base}/push/{token}")[0] == 404
        assert main(["monitors", "resume", str(mid)]) == 0
        assert call(f"{base}/push/{token}")[0] == 200
        capsys.readouterr()
        assert main(["monitors", "new-token", "nightly-backup"]) == 0
        fresh = re.search(r"/push/([A-Za-z0-9_-]{43})", capsys.readouterr().out).group(1)
        assert call(f"{base}/push/{token}")[0] == 404
        assert call(f"{base}/push/{fresh}")[0] == 200


def test_pushes_reach_every_prober(lh_dsn, push_monitor):
    """Prober A receives the push, prober B (its own pool) checks it: state is in the DB."""
    mid, token = push_monitor
    check(lh_dsn, mid)
    age(lh_dsn, mid, "armed_at", 1000)
    with serve_web(lh_dsn) as a, serve_web(lh_dsn) as b:
        assert call(f"{a}/push/{token}")[0] == 200
        assert check(lh_dsn, mid).status is Status.SUCCESS
        assert call(f"{b}/push/{token}?status=down")[0] == 200
        assert check(lh_dsn, mid).error_code == "pushed_down"


def test_database_down_is_an_error_not_a_verdict_on_the_job():
    async def go():
        pool = AsyncConnectionPool("host=127.0.0.1 port=1 dbname=x connect_timeout=1",
                                   min_size=0, max_size=1, open=False)
        await pool.open()
        ctx = CheckContext.create()
        ctx.push_store = PushStore(pool, timeout_s=1.0)
        try:
            return await run_check(Monitor(uuid.uuid4(), "p", "push",
                                           {"token_sha256": "0" * 64}, 60), ctx)
        finally:
            await pool.close()

    r = run_async(go())
    assert (r.status, r.error_code) == (Status.ERROR, "database")


def test_a_client_that_stalls_is_cut_off(lh_dsn, push_monitor):
    """A job that announces a body and never sends it must not hold a server thread."""
    import socket
    import time

    _mid, token = push_monitor
    with serve_web(lh_dsn, request_timeout_s=0.5) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(f"POST /push/{token} HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 100\r\n\r\npartial".encode())
            started = time.monotonic()
            assert sock.recv(1024) == b""  # closed by the server, not answered
            assert time.monotonic() - started < 3
        assert call(f"{base}/push/{token}")[0] == 200  # and it still serves
