"""The status page in headless Chromium: 90-day uptime bars, latency sparklines, states.

LIGHTHOUSE_UPDATE_SCREENSHOTS=1 copies the screenshot to docs/status-page.png (committed; look
at it when the page changes).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from lighthouse.db.maintenance import run_maintenance
from lighthouse.metrics import Metrics
from lighthouse.web.server import WebApp
from psycopg_pool import ConnectionPool

from tests.integration.prober.conftest import add_monitor, serve_web

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars"]


def chromium(tmp_path: Path, *args: str) -> str:
    out = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          *args], capture_output=True, text=True, timeout=120,
                         env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def seed_history(dsn: str, now: datetime) -> dict[str, str]:
    """90 days of hourly checks plus the last hour per minute, with a few bad days."""
    rnd = random.Random(7)  # noqa: S311 - repeatable test data, not crypto
    monitors = {
        "Marketing website": (add_monitor(dsn, "Marketing website",
                                          {"url": "https://www.example.com/"}), 80, set()),
        "Public API": (add_monitor(dsn, "Public API", {"url": "https://api.example.com/health"}),
                       140, {12, 13, 47, 88}),
        "Payments gateway": (add_monitor(dsn, "Payments gateway",
                                         {"host": "pay.example.com", "port": 443},
                                         type_="tcp"), 35, {60}),
    }
    rows = []
    start = (now - timedelta(days=89)).replace(hour=0, minute=0, second=0, microsecond=0)
    for name, (sid, base, bad_days) in monitors.items():
        for day in range(90):
            if name == "Marketing website" and day < 20:
                continue  # added later: grey "no data" bars
            for hour in range(24):
                t = start + timedelta(days=day, hours=hour, minutes=7)
                if t > now - timedelta(hours=1):
                    break
                bad = day in bad_days and hour % 3 == 0
                rows.append((t, sid, "failure" if bad else "success",
                             int(base * rnd.uniform(0.7, 1.6))))
        for minute in range(60, 0, -1):
            t = now - timedelta(minutes=minute)
            down = name == "Payments gateway" and minute <= 6
            wave = 1 + 0.5 * ((60 - minute) % 15) / 15
            rows.append((t, sid, "timeout" if down else "success",
                         None if down else int(base * wave * rnd.uniform(0.9, 1.1))))
    copy_sql = "COPY check_history (time, subscription_id, status, latency_ms) FROM STDIN"
    with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for r in rows:
            copy.write_row(r)
    run_maintenance(dsn)  # partitions + rollups, as the prober's maintenance task does
    return {name: str(v[0]) for name, v in monitors.items()}


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="chromium not installed "
                    "(scripts/apt-packages.txt lists it; run ./scripts/bootstrap)")
def test_status_page_in_headless_chromium(lh_dsn, tmp_path):
    now = datetime.now(UTC)
    ids = seed_history(lh_dsn, now)
    with serve_web(lh_dsn, title="Lighthouse status", days=90,
                   live_states=lambda: {ids["Payments gateway"]: "down"}) as base:
        url = f"{base}/"
        dom = chromium(tmp_path, "--dump-dom", url)
        shot = tmp_path / "status-page.png"
        chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", url)

    sections = re.findall(r'<section class="monitor" id="monitor-([0-9a-f-]+)" '
                          r'data-state="(\w+)">(.*?)</section>', dom, re.S)
    assert [s[0] for s in sections] == [ids["Marketing website"], ids["Payments gateway"],
                                        ids["Public API"]]  # sorted by name
    states = {s[0]: s[1] for s in sections}
    assert states[ids["Payments gateway"]] == "down" and states[ids["Public API"]] == "up"
    assert 'id="overall" data-state="down"' in dom
    for _, _, body in sections:
        assert body.count("h6v34h-6z") == 90  # one rectangle a day
        assert re.search(r'<polyline points="[\d., ]{200,}"', body)  # a real sparkline
    website = dict((s[0], s[2]) for s in sections)[ids["Marketing website"]]
    def days_in(body: str, color: str) -> int:
        m = re.search(rf'<path fill="{color}" d="([^"]+)"', body)
        return m[1].count("z") if m else 0

    assert days_in(website, "#d0d7de") == 20  # the 20 days before it existed
    api = dict((s[0], s[2]) for s in sections)[ids["Public API"]]
    assert days_in(api, "#d93025") == 4  # its four bad days are red
    assert "4 days under 99.9%" in api  # said to screen readers
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    if os.environ.get("LIGHTHOUSE_UPDATE_SCREENSHOTS") == "1":  # refresh the committed one
        shutil.copyfile(shot, ROOT / "docs" / "status-page.png")


def test_status_page_is_gzipped_for_clients_that_ask(lh_dsn):
    import gzip
    import urllib.request

    seed_history(lh_dsn, datetime.now(UTC))
    with serve_web(lh_dsn) as base:
        url = f"{base}/"
        with urllib.request.urlopen(url, timeout=30) as plain:  # noqa: S310 - no Accept-Encoding
            assert plain.headers.get("Content-Encoding") is None
            html = plain.read()
        req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})  # noqa: S310
        with urllib.request.urlopen(req, timeout=30) as zipped:  # noqa: S310 - local http URL
            assert zipped.headers["Content-Encoding"] == "gzip"
            assert zipped.headers["Vary"] == "Accept-Encoding"
            body = zipped.read()
    assert gzip.decompress(body) == html  # the same cached page, both ways
    assert html.count(b"h6v34h-6z") == 3 * 90
    assert len(body) * 3 < len(html)


def test_pages_of_monitors_and_a_banner_for_the_whole_fleet(lh_dsn):
    import urllib.error
    import urllib.request

    ids = [add_monitor(lh_dsn, f"m{i}", {"url": f"https://m{i}.example.com/"})
           for i in range(1, 6)]
    # m5 (page 3) is down by its last check; m4 (page 2) is down by the live state machine.
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO check_history (time, subscription_id, status, latency_ms) "
                     "VALUES (now() - interval '1 minute', %s, 'failure', 5), "
                     "(now() - interval '1 minute', %s, 'success', 5)", (ids[4], ids[0]))
    pool = ConnectionPool(lh_dsn, min_size=1, max_size=2, open=True)
    app = WebApp(metrics=Metrics(), health=lambda: {"status": "ok"}, pool=pool,
                 max_monitors=2, live_states=lambda: {str(ids[3]): "down"})
    port = app.start("127.0.0.1", 0)

    def get(query: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{query}", timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    try:
        pages = {n: get(f"?page={n}") for n in (1, 2, 3)}
        first, beyond, zero, word = get(""), get("?page=4"), get("?page=0"), get("?page=two")
    finally:
        app.stop()
        pool.close()

    shown = {n: re.findall(r'<section class="monitor" id="monitor-([0-9a-f-]+)"', html)
             for n, (_, html) in pages.items()}
    assert shown == {1: [str(ids[0]), str(ids[1])], 2: [str(ids[2]), str(ids[3])],
                     3: [str(ids[4])]}
    assert first == pages[1]
    for _, html in pages.values():  # every page tells of both down monitors
        assert 'id="overall" data-state="down"' in html and "2 of 5 monitors down" in html
    assert "Monitors 3–4 of 5" in pages[2][1] and 'href="?page=3"' in pages[2][1]
    assert f'id="monitor-{ids[4]}" data-state="down"' in pages[3][1]
    assert beyond[0] == 404 and zero[0] == 404 and word[0] == 400


def test_visitors_see_names_and_only_targets_marked_public_without_credentials(lh_dsn):
    from lighthouse.web import statuspage

    public = add_monitor(lh_dsn, "public api", {"url": "https://svc:t0psecret@api.example/health"})
    add_monitor(lh_dsn, "internal db", {"host": "10.213.7.7", "port": 5432}, type_="tcp")
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        conn.execute("UPDATE subscriptions SET metadata = metadata || '{\"public_target\": true}'"
                     " WHERE id = %s", (public,))
        html = statuspage.render(statuspage.collect(conn, days=7), "status", days=7)
    assert "public api" in html and "https://***@api.example/health" in html
    assert "t0psecret" not in html and "svc:" not in html
    assert "internal db" in html and "10.213.7.7" not in html  # not marked: name only
    assert "uptime (7 days)" in html  # the caption names the bars' window
