"""The per-monitor page, rendered by the real server from 90 days of rolled-up history in
PostgreSQL 15 and loaded in headless Chromium at desktop and phone widths.
LIGHTHOUSE_UPDATE_SCREENSHOTS=1 copies the screenshots to docs/ (committed)."""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lighthouse.web.monitorpage import nice_max

from tests.integration.prober.conftest import serve_web
from tests.integration.prober.test_prober_status_page import CHROMIUM, chromium, seed_history

ROOT = Path(__file__).resolve().parents[3]


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def site(lh_dsn):
    ids = seed_history(lh_dsn, datetime.now(UTC))
    with serve_web(lh_dsn, title="Lighthouse status", days=90,
                   live_states=lambda: {ids["Payments gateway"]: "down"}) as base:
        yield base, ids


def test_the_page_shows_the_window_a_chart_with_axes_and_paged_checks(site):
    base, ids = site
    code, html = fetch(f"{base}/monitors/{ids['Public API']}")
    assert code == 200
    assert html.count("<rect x=") == 90
    day = r"(\d{4}-\d\d-\d\d)"
    caption = re.search(rf"one bar per UTC day, {day} – {day} \(today\)", html)
    assert caption and caption[2] == datetime.now(UTC).date().isoformat()
    # the chart: p50 and p95 lines, y axis from 0 in ms, dated x axis
    assert re.search(r'class="p50" points="[\d., ]{500,}"', html)
    assert re.search(r'class="p95" points="[\d., ]{500,}"', html)
    ticks = re.findall(r'text-anchor="end">([\d.]+) ms</text>', html)
    assert ticks[0] == "0" and len(ticks) >= 3
    assert caption[1] in html.split('id="latency"')[1]  # first day labels the x axis
    rows = html.split('id="checks"')[1].count("<tr><td>")
    assert rows == 50
    older = re.search(r'id="older" href="([^"]+)"', html)
    code2, html2 = fetch(base + older[1].replace("&amp;", "&"))
    assert code2 == 200 and html2.split('id="checks"')[1].count("<tr><td>") == 50
    first_times = re.findall(r"<tr><td>([^<]+)</td>", html.split('id="checks"')[1])
    second_times = re.findall(r"<tr><td>([^<]+)</td>", html2.split('id="checks"')[1])
    assert min(first_times) > max(second_times)  # strictly older, no overlap
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", first_times[0])
    # the front page links each name here
    assert f'href="/monitors/{ids["Public API"]}"' in fetch(base + "/")[1]


def test_a_monitor_that_started_later_has_a_gap_not_a_zero_line(site):
    base, ids = site
    _, html = fetch(f"{base}/monitors/{ids['Marketing website']}")
    first_x = float(re.search(r'class="p50" points="([\d.]+),', html)[1])
    assert first_x > 56 + 0.2 * (900 - 56 - 12)  # its line starts ~20 days in


@pytest.mark.parametrize(("path", "code"), [("not-a-uuid", 400), (str(uuid.UUID(int=3)), 404),
                                             ("{id}?limit=0", 400), ("{id}?before=x", 400)])
def test_bad_monitor_urls_are_clear_errors(site, path, code):
    base, ids = site
    got, body = fetch(f"{base}/monitors/{path.format(id=ids['Public API'])}")
    assert got == code and body.strip()


def test_nice_axis_tops_start_from_zero_with_round_steps():
    assert nice_max(0.8) == (1.0, 0.2)  # sub-millisecond jitter stays small
    assert nice_max(137) == (150, 50)
    assert nice_max(1000) == (1000, 200)
    top, step = nice_max(8730)
    assert top >= 8730 and top / step <= 5


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="chromium not installed "
                    "(scripts/apt-packages.txt lists it; run ./scripts/bootstrap)")
def test_the_page_in_headless_chromium_at_desktop_and_phone_widths(site, tmp_path):
    base, ids = site
    url = f"{base}/monitors/{ids['Payments gateway']}"
    dom = chromium(tmp_path, "--dump-dom", url)
    assert 'id="state">down<' in dom and "Response time per day" in dom
    shots = {}
    for name, size, extra in (("monitor-page.png", "1200,1100", ()),
                              ("monitor-page-phone.png", "390,1400", ()),
                              ("monitor-page-dark.png", "1200,1100",
                               ("--blink-settings=preferredColorScheme=0",))):
        shots[name] = tmp_path / name
        chromium(tmp_path, f"--screenshot={shots[name]}", f"--window-size={size}", *extra, url)
        png = shots[name].read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 15_000
    if os.environ.get("LIGHTHOUSE_UPDATE_SCREENSHOTS") == "1":
        for name, shot in shots.items():
            shutil.copyfile(shot, ROOT / "docs" / name)
