"""The JSON API against real PostgreSQL 15 through the real HTTP server: its documents, keyset
paging, privacy (targets and error texts only for public-target monitors), clear 4xx for bad
input, and schemathesis fuzzing every operation against the served OpenAPI document."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from lighthouse.web import api

from tests.integration.prober.conftest import add_monitor, serve_web

HIDDEN_HOST = "10.213.77.7"  # an internal address visitors must not see


def get(base: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def served(lh_dsn):
    now = datetime.now(UTC)
    public = add_monitor(lh_dsn, "Public site", {"url": "https://www.example.com/"})
    private = add_monitor(lh_dsn, "Internal db", {"host": HIDDEN_HOST, "port": 5432},
                          type_="tcp")
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        conn.execute("UPDATE subscriptions SET metadata = '{\"public_target\": true}' "
                     "WHERE id = %s", (public,))
        rows = []
        for i in range(130):  # one a minute, newest last; every 10th fails
            t = now - timedelta(minutes=130 - i)
            for sid in (public, private):
                bad = i % 10 == 0
                rows.append((t, sid, "failure" if bad else "success", 20 + i % 7,
                             "refused" if bad else None,
                             f"connection to {HIDDEN_HOST}:5432 refused" if bad else None))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO check_history (time, subscription_id, status, "
                            "latency_ms, error_code, error_message) VALUES (%s, %s, %s, %s, %s, "
                            "%s)", rows)
    with serve_web(lh_dsn, title="Status", days=30,
                   live_states=lambda: {str(private): "down"}) as base:
        yield base, public, private


def test_status_document_lists_monitors_with_targets_only_where_public(served):
    base, public, private = served
    code, doc = get(base, "/api/v1/status")
    assert code == 200 and doc["overall"] == "down" and (doc["total"], doc["down"]) == (2, 1)
    by_name = {m["name"]: m for m in doc["monitors"]}
    assert by_name["Public site"]["target"] == "https://www.example.com/"
    assert by_name["Internal db"]["target"] is None and by_name["Internal db"]["state"] == "down"
    assert by_name["Public site"]["uptime_pct"] == pytest.approx(100 * 117 / 130, abs=0.01)
    assert HIDDEN_HOST not in json.dumps(doc)


def test_monitor_document_pages_recent_checks_by_keyset_without_gaps_or_repeats(served):
    base, public, _ = served
    seen, path = [], f"/api/v1/monitors/{public}?limit=50"
    while path:
        code, doc = get(base, path)
        assert code == 200, doc
        seen += [c["time"] for c in doc["recent_checks"]]
        path = doc["next"]
    assert len(seen) == 130 and len(set(seen)) == 130 and seen == sorted(seen, reverse=True)
    assert doc["latency_ms"]["p50"] is not None and len(doc["daily"]) == 30
    assert doc["target"] == "https://www.example.com/"
    failed = [c for c in get(base, f"/api/v1/monitors/{public}?limit=200")[1]["recent_checks"]
              if c["status"] == "failure"]
    assert failed and all(c["error"] for c in failed)  # public: the error text is shown


def test_a_private_monitor_shows_neither_its_target_nor_error_texts(served):
    base, _, private = served
    code, doc = get(base, f"/api/v1/monitors/{private}?limit=200")
    assert code == 200 and doc["target"] is None and doc["state"] == "down"
    assert {c["error_code"] for c in doc["recent_checks"]} == {None, "refused"}
    assert all(c["error"] is None for c in doc["recent_checks"])
    assert HIDDEN_HOST not in json.dumps(doc)


@pytest.mark.parametrize(("path", "code", "says"), [
    ("/api/v1/monitors/not-a-uuid", 400, "UUID"),
    (f"/api/v1/monitors/{uuid.UUID(int=1)}", 404, "no active monitor"),
    ("/api/v1/monitors/{public}?limit=0", 400, "limit"),
    ("/api/v1/monitors/{public}?limit=abc", 400, "limit"),
    ("/api/v1/monitors/{public}?before=yesterday", 400, "before"),
    ("/api/v1/monitors/{public}?before=2026-01-01T00:00:00", 400, "offset"),
    ("/api/v1/status?page=0", 400, "page"),
    ("/api/v1/status?page=9", 404, "no status page"),
    ("/api/v1/nothing", 404, "no such API path"),
])
def test_bad_requests_get_a_clear_json_error(served, path, code, says):
    base, public, _ = served
    got, doc = get(base, path.format(public=public))
    assert got == code and says in doc["error"], doc


def test_the_served_openapi_document_is_the_contract(served):
    base, _, _ = served
    code, doc = get(base, "/api/v1/openapi.json")
    assert code == 200 and doc == json.loads(json.dumps(api.OPENAPI))
    assert doc["openapi"].startswith("3.1")


SCHEMA = schemathesis.openapi.from_dict(api.OPENAPI)


@SCHEMA.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_openapi_document(served, case):
    """Whatever schemathesis sends (valid and invalid ids, times, limits, pages), the server
    answers with a documented status code and a body matching the documented schema; never a
    5xx, never a hang."""
    base, public, _ = served
    if case.path == "/api/v1/monitors/{id}" and case.path_parameters.get("id") == str(
            uuid.UUID(int=0)):
        case.path_parameters["id"] = str(public)  # reach the 200 path too
    case.call_and_validate(base_url=base, timeout=10)


def test_incidents_open_first_with_notes_and_error_texts_only_where_public(served, lh_dsn):
    base, public, private = served
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO incidents (subscription_id, started_at, ended_at, "
                     "first_error_code, first_error, note) VALUES (%s, now() - interval '3 h', "
                     "now() - interval '2 h', 'status', 'HTTP 503 from the origin', "
                     "'CDN purge went wrong')", (public,))
        conn.execute("INSERT INTO incidents (subscription_id, started_at, first_error_code, "
                     "first_error) VALUES (%s, now() - interval '10 minutes', 'refused', %s)",
                     (private, f"connection to {HIDDEN_HOST}:5432 refused"))
    _, doc = get(base, "/api/v1/status")
    opened, closed = doc["incidents"]
    assert (opened["monitor"], opened["open"], opened["first_error_code"]) == (
        "Internal db", True, "refused")
    assert opened["first_error"] is None and 590 <= opened["duration_s"] <= 700
    assert closed["open"] is False and closed["duration_s"] == 3600
    assert closed["first_error"] == "HTTP 503 from the origin"
    assert closed["note"] == "CDN purge went wrong"
    _, mine = get(base, f"/api/v1/monitors/{private}")
    assert [i["id"] for i in mine["incidents"]] == [opened["id"]]
    with urllib.request.urlopen(base + "/", timeout=10) as resp:  # noqa: S310 - loopback
        html = resp.read().decode()
    assert html.index(f'id="incident-{opened["id"]}"') < html.index(
        f'id="incident-{closed["id"]}"') and "ongoing" in html and "CDN purge went wrong" in html
    with urllib.request.urlopen(f"{base}/monitors/{public}", timeout=10) as resp:  # noqa: S310
        page = resp.read().decode()
    assert "down 1 h 0 min" in page and "HTTP 503 from the origin" in page
    assert HIDDEN_HOST not in html and HIDDEN_HOST not in json.dumps(doc)


def test_badges_are_svg_with_the_values_the_page_shows(served):
    import xml.etree.ElementTree as ET

    base, public, private = served

    def badge(mid, kind):
        with urllib.request.urlopen(f"{base}/badge/{mid}/{kind}.svg", timeout=10) as resp:  # noqa: S310
            assert resp.headers["Content-Type"] == "image/svg+xml"
            root = ET.fromstring(resp.read())  # noqa: S314 - our own server
        return [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")], root

    texts, root = badge(private, "status")
    assert texts == ["status", "down"] and root.get("aria-label") == "status: down"
    assert badge(public, "status")[0] == ["status", "up"]
    assert badge(public, "uptime")[0] == ["uptime 30d", f"{100 * 117 / 130:.2f}%"]
    label, value = badge(public, "latency")[0]
    assert label == "p95 30d" and value.endswith(" ms")
    for path, code in ((f"/badge/{public}/nope.svg", 404), ("/badge/xyz/status.svg", 400),
                       (f"/badge/{uuid.UUID(int=5)}/status.svg", 404)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + path, timeout=10)  # noqa: S310 - loopback
        assert err.value.code == code, path


def test_the_atom_feed_lists_incidents_without_targets(served, lh_dsn):
    import xml.etree.ElementTree as ET

    base, public, private = served
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO incidents (subscription_id, started_at, ended_at, "
                     "first_error_code, first_error, note) VALUES (%s, now() - interval '2 h', "
                     "now() - interval '1 h', 'refused', %s, 'failover')",
                     (private, f"to {HIDDEN_HOST}"))
    with urllib.request.urlopen(base + "/feed.atom", timeout=10) as resp:  # noqa: S310
        assert resp.headers["Content-Type"] == "application/atom+xml"
        body = resp.read()
    atom = "{http://www.w3.org/2005/Atom}"
    root = ET.fromstring(body)  # noqa: S314 - our own server on loopback
    (entry,) = root.findall(f"{atom}entry")
    assert entry.find(f"{atom}title").text == "Internal db down (resolved after 1 h 0 min)"
    assert entry.find(f"{atom}link").get("href") == f"/monitors/{private}"
    assert entry.find(f"{atom}id").text.startswith("tag:")
    assert "Note: failover" in entry.find(f"{atom}summary").text
    assert root.find(f"{atom}updated").text == entry.find(f"{atom}updated").text
    assert HIDDEN_HOST.encode() not in body


def test_maintenance_is_shown_to_visitors_and_in_the_api(served, lh_dsn):
    from datetime import UTC, datetime, timedelta

    from lighthouse import maintenance_windows as mw

    base, public, private = served
    now = datetime.now(UTC)
    with psycopg.connect(lh_dsn, autocommit=True) as conn:
        active = mw.add(conn, private, now - timedelta(minutes=5), now + timedelta(hours=1),
                        "storage migration")
        upcoming = mw.add(conn, None, now + timedelta(days=2), now + timedelta(days=2, hours=1),
                          "")
        mw.add(conn, public, now - timedelta(hours=3), now - timedelta(hours=2), "over")
    _, doc = get(base, "/api/v1/status")
    assert [(w["id"], w["active"]) for w in doc["maintenance"]] == [(active, True),
                                                                    (upcoming, False)]
    _, mine = get(base, f"/api/v1/monitors/{public}")
    assert [w["id"] for w in mine["maintenance"]] == [upcoming]  # the all-monitors one only
    with urllib.request.urlopen(base + "/", timeout=10) as resp:  # noqa: S310 - loopback
        html = resp.read().decode()
    assert f'id="maintenance-{active}"' in html and "Maintenance in progress" in html
    assert "storage migration" in html and "Planned maintenance" in html
    with urllib.request.urlopen(f"{base}/monitors/{private}", timeout=10) as resp:  # noqa: S310
        assert "storage migration" in resp.read().decode()
