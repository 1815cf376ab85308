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


def test_sub_millisecond_jitter_stays_near_the_bottom():
    pts, top = statuspage.sparkline([0, 1, 0, 1, 1, 0])
    ys = [float(p.split(",")[1]) for p in pts.split()]
    assert top == 1 and max(ys) - min(ys) < 2  # of a 34 px box, not all of it


def test_render_escapes_names_and_draws_one_bar_per_day():
    first = date(2026, 1, 1)
    days = [DayUptime(first + timedelta(days=i), 10 if i % 2 else 0, 10 if i % 3 else 0)
            for i in range(90)]
    view = statuspage.MonitorView(
        id="x", name="<script>alert(1)</script>", target="https://e.com/?a=1&b=2",
        state="down", last_check="never", uptime="99.00%", p95_ms="12 ms",
        bar_paths=statuspage.bar_paths(statuspage.bars_for(days)))
    html = statuspage.render(statuspage.Page([view], total=1, down=1), "Status & more")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html and "Status &amp; more" in html
    assert html.count("h6v34h-6z") == 90  # one rectangle a day, in a path per colour
    assert html.count("<path ") == len({statuspage.bar_color(d.uptime_pct) for d in days})
    assert 'data-state="down"' in html and "1 of 1 monitor down" in html


def view(name: str, state: str = "up") -> statuspage.MonitorView:
    return statuspage.MonitorView(id=name, name=name, target="t", state=state,
                                  last_check="never", uptime="-", p95_ms="-")


def test_banner_counts_down_monitors_on_every_page():
    # Nothing down on this page, but 3 of the 450 are down elsewhere: the banner says so.
    page = statuspage.Page([view("a")], total=450, down=3, number=2, per_page=200)
    html = statuspage.render(page, "S")
    assert 'id="overall" data-state="down"' in html and "3 of 450 monitors down" in html
    up = statuspage.render(statuspage.Page([view("a")], total=1, down=0), "S")
    assert "All systems operational" in up
    assert "No monitors yet" in statuspage.render(statuspage.Page([], total=0, down=0), "S")


def test_pagination_links():
    assert statuspage.Page([], total=0, down=0).pages == 1
    assert statuspage.Page([], total=400, down=0, per_page=200).pages == 2
    assert statuspage.Page([], total=401, down=0, per_page=200).pages == 3
    middle = statuspage.render(statuspage.Page([view("a"), view("b")], total=5, down=0,
                                               number=2, per_page=2), "S")
    assert "Monitors 3–4 of 5" in middle and "page 2 of 3" in middle
    assert 'href="?page=1"' in middle and 'href="?page=3"' in middle
    last = statuspage.render(statuspage.Page([view("e")], total=5, down=0, number=3,
                                             per_page=2), "S")
    assert "Monitors 5–5 of 5" in last and 'rel="next"' not in last
    assert 'id="pages"' not in statuspage.render(statuspage.Page([view("a")], total=1, down=0),
                                                 "S")


def test_accept_encoding_parsing():
    from lighthouse.web.server import accepts_gzip

    assert accepts_gzip("gzip, deflate, br")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert not accepts_gzip("")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip;q=nonsense")
    assert accepts_gzip("*;q=0, gzip")  # named beats the wildcard
    assert not accepts_gzip("gzip;q=0, *")


def test_state_prefers_the_state_machine_then_the_last_check():
    import uuid
    from datetime import UTC, datetime

    from lighthouse.models import CheckResult, Status

    failed = CheckResult(uuid.uuid4(), datetime.now(UTC), Status.FAILURE)
    ok = CheckResult(uuid.uuid4(), datetime.now(UTC), Status.SUCCESS)
    assert statuspage.state_of("up", failed) == "up"  # one failed check is not an outage yet
    assert statuspage.state_of("unknown", failed) == "down"  # no verdict yet: the last check
    assert statuspage.state_of(None, ok) == "up"
    assert statuspage.state_of(None, None) == "unknown"


def test_logo_and_links_from_config_reach_the_page_escaped():
    from lighthouse import config

    env = {"LIGHTHOUSE_DATABASE__DSN": "postgresql:///x",
           "LIGHTHOUSE_HTTP__LOGO_URL": "https://example.com/logo.svg",
           "LIGHTHOUSE_HTTP__LINKS": "Home=https://example.com,Support <24/7>=/support"}
    cfg = config.load(None, env=env)
    branding = statuspage.Branding.from_config(cfg.http.logo_url, cfg.http.links)
    html = statuspage.render(statuspage.Page([], total=0, down=0), "Status", 90,
                             branding=branding)
    assert '<img class="logo" src="https://example.com/logo.svg"' in html
    assert '<a href="https://example.com" rel="noopener">Home</a>' in html
    assert "Support &lt;24/7&gt;" in html  # autoescaped


def test_bad_logo_or_link_is_a_config_error_naming_the_key():
    import pytest
    from lighthouse import config

    env = {"LIGHTHOUSE_DATABASE__DSN": "postgresql:///x"}
    with pytest.raises(config.ConfigError, match=r"http\.logo_url"):
        config.load(None, env={**env, "LIGHTHOUSE_HTTP__LOGO_URL": "javascript:alert(1)"})
    with pytest.raises(config.ConfigError, match=r"http\.links\[0\]"):
        config.load(None, env={**env, "LIGHTHOUSE_HTTP__LINKS": "no equals sign"})
    with pytest.raises(config.ConfigError, match=r"http\.links\[0\]"):
        config.load(None, env={**env, "LIGHTHOUSE_HTTP__LINKS": "x=javascript:alert(1)"})
