"""Status page rendering: bar colours, sparkline geometry, escaping."""

from __future__ import annotations

from datetime import date, timedelta

from lighthouse.db.queries import DayUptime
from lighthouse.web import statuspage


def test_bar_colours_by_uptime():
    assert statuspage.bar_color(None) == "#d0d7de"
    assert statuspage.bar_color(100.0) == "#2da44e"
    assert statuspage.bar_color(99.5) == "#8fd19e"
    assert statuspage.bar_color(97.0) == "#f29900"
    assert statuspage.bar_color(50.0) == "#d93025"


def test_sparkline_points_scale_to_the_box():
    pts, top = statuspage.sparkline([10, 20, 40])
    assert top == 40
    xy = [tuple(map(float, p.split(","))) for p in pts.split()]
    assert xy[0][0] == 0 and xy[-1][0] == statuspage.SPARK_W
    assert xy[-1][1] < xy[0][1]  # higher latency is drawn higher up
    assert statuspage.sparkline([5]) == ("", 5)


def test_render_escapes_names_and_draws_one_bar_per_day():
    first = date(2026, 1, 1)
    days = [DayUptime(first + timedelta(days=i), 10 if i % 2 else 0, 10 if i % 3 else 0)
            for i in range(90)]
    view = statuspage.MonitorView(
        id="x", name="<script>alert(1)</script>", target="https://e.com/?a=1&b=2",
        state="down", last_check="never", uptime_30d="99.00%", p95_ms="12 ms",
        bars=statuspage.bars_for(days))
    html = statuspage.render([view], "Status & more")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html and "Status &amp; more" in html
    assert html.count('class="bar"') == 90
    assert 'data-state="down"' in html and "Some monitors are down" in html


def test_render_says_when_monitors_were_left_out():
    view = statuspage.MonitorView(id="a", name="a", target="t", state="up", last_check="never",
                                  uptime_30d="-", p95_ms="-")
    assert "Showing 1 of 5 monitors" in statuspage.render([view], "S", total=5)
    assert 'id="truncated"' not in statuspage.render([view], "S", total=1)


def test_accept_encoding_parsing():
    from lighthouse.web.server import accepts_gzip

    assert accepts_gzip("gzip, deflate, br")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert not accepts_gzip("")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip;q=nonsense")
