"""Alert state machine: thresholds, flap damping, latency and certificate alerts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lighthouse.alerting.state import AlertPolicy, Health
from lighthouse.config import AlertingConfig
from lighthouse.models import CheckResult, Monitor, Status


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def setup(**kw):
    clock = Clock()
    policy = AlertPolicy(AlertingConfig(**kw), clock=clock)
    mon = Monitor(uuid.uuid4(), "api", "http", {"url": "https://api.example.com/"}, 60)
    return policy, mon, clock


def feed(policy, mon, clock, statuses, **extra):
    out = []
    for st in statuses:
        clock.t += 60
        r = CheckResult(mon.id, datetime.now(UTC), Status(st), **extra)
        if st != "success":
            r.error_code = r.error_code or "status"
        out.extend(a.alert_type for a in policy.observe(mon, r))
    return out


def test_one_blip_pages_nobody_three_failures_do():
    policy, mon, clock = setup()
    assert feed(policy, mon, clock, ["success"] * 2) == []  # unknown -> up is silent
    assert feed(policy, mon, clock, ["failure", "success", "failure", "failure"]) == []
    assert feed(policy, mon, clock, ["failure"]) == ["downtime"]
    assert policy.health(mon.id) is Health.DOWN
    assert feed(policy, mon, clock, ["failure"] * 5) == []  # no repeats while down
    assert feed(policy, mon, clock, ["success"]) == []  # 1 of 2 successes
    assert feed(policy, mon, clock, ["success"]) == ["recovery"]


def test_starting_down_alerts_and_thresholds_are_configurable():
    policy, mon, clock = setup(failure_threshold=1, success_threshold=1)
    assert feed(policy, mon, clock, ["timeout"]) == ["downtime"]
    assert feed(policy, mon, clock, ["success"]) == ["recovery"]


def test_flapping_is_damped_then_final_state_sent_once():
    policy, mon, clock = setup(failure_threshold=1, success_threshold=1,
                               flap_window_s=600, flap_max_transitions=2)
    sent = feed(policy, mon, clock, ["success", "failure", "success", "failure", "success",
                                     "failure", "success", "failure"])
    # unknown->up silent; down, up alerted; then flapping: everything held back
    assert sent == ["downtime", "recovery"]
    assert policy.states[mon.id].flapping
    clock.t += 3600  # quiet for longer than the window; monitor still down
    assert feed(policy, mon, clock, ["failure"]) == ["downtime"]
    assert not policy.states[mon.id].flapping


def test_high_latency_alerts_once_and_rearms():
    policy, mon, clock = setup(high_latency_ms=500)
    assert feed(policy, mon, clock, ["success"] * 2, latency_ms=900) == []
    assert feed(policy, mon, clock, ["success"], latency_ms=900) == ["high_latency"]
    assert feed(policy, mon, clock, ["success"] * 5, latency_ms=900) == []
    assert feed(policy, mon, clock, ["success"] * 2, latency_ms=100) == []
    assert feed(policy, mon, clock, ["success"] * 3, latency_ms=900) == ["high_latency"]


def test_monitor_latency_limit_overrides_global():
    policy, mon, clock = setup(high_latency_ms=0)
    mon.config["alert_latency_ms"] = 50
    assert feed(policy, mon, clock, ["success"] * 3, latency_ms=60) == ["high_latency"]


def test_certificate_expiry_milestones_and_not_downtime():
    policy, mon, clock = setup(cert_warn_days=14)
    mon.type, mon.config = "tls", {"host": "example.com", "port": 443}

    def cert(days):
        clock.t += 60
        st = Status.SUCCESS if days >= 14 else Status.FAILURE
        r = CheckResult(mon.id, datetime.now(UTC), st, cert_days_left=days,
                        error_code=None if days >= 14 else "cert_expiring")
        return [(a.alert_type, a.severity) for a in policy.observe(mon, r)]

    assert cert(30) == []
    assert cert(13) == [("certificate_expiry", "warning")]
    assert cert(12) == [] and cert(8) == []
    assert cert(6) == [("certificate_expiry", "warning")]
    assert cert(2) == [("certificate_expiry", "critical")]
    assert cert(2) == []
    assert policy.health(mon.id) is Health.UP  # expiring soon is not downtime
    assert cert(90) == []  # renewed: re-armed
    assert cert(10) == [("certificate_expiry", "warning")]


def test_alert_text_names_monitor_target_and_error():
    policy, mon, clock = setup(failure_threshold=1)
    r = CheckResult(mon.id, datetime.now(UTC), Status.FAILURE, http_status=503,
                    error_code="status", error_message="expected 200, got 503")
    (alert,) = policy.observe(mon, r)
    assert alert.severity == "critical"
    assert "api" in alert.title and "https://api.example.com/" in alert.message
    assert "HTTP 503" in alert.message and "expected 200" in alert.message


def test_health_changes_are_reported_for_incidents_with_the_first_bad_check():
    """down: dated at the first failing check of the streak, carrying it; up: at the check that
    completed the recovery. Flapping holds alerts back, not incidents."""
    policy, mon, clock = setup(failure_threshold=3, success_threshold=2,
                               flap_window_s=600, flap_max_transitions=1)
    changes = []
    policy.on_change = changes.append
    results = []
    for st in ["success", "success", "failure", "failure", "failure", "success", "success",
               "failure", "failure", "failure"]:
        clock.t += 60
        r = CheckResult(mon.id, datetime.now(UTC), Status(st),
                        error_code=None if st == "success" else f"e{len(results)}")
        results.append(r)
        policy.observe(mon, r)
    assert [(c.health, c.at) for c in changes] == [
        (Health.UP, results[1].time),  # unknown -> up (closes what a restart left open)
        (Health.DOWN, results[2].time), (Health.UP, results[6].time),
        (Health.DOWN, results[7].time)]
    assert changes[1].first_bad is results[2] and changes[1].first_bad.error_code == "e2"
    assert changes[3].first_bad.error_code == "e7"
    assert policy.states[mon.id].flapping  # the second outage was not alerted, but recorded


def test_a_maintenance_window_holds_alerts_then_sends_the_state_once():
    policy, mon, clock = setup(failure_threshold=2, success_threshold=2)
    window = {"on": False}
    policy.muted = lambda mid, at: window["on"] and mid == mon.id
    changes = []
    policy.on_change = changes.append
    assert feed(policy, mon, clock, ["success", "success"]) == []
    window["on"] = True
    assert feed(policy, mon, clock, ["failure"] * 3) == []  # down during the window: held
    assert policy.health(mon.id) is Health.DOWN and changes[-1].health is Health.DOWN
    window["on"] = False
    assert feed(policy, mon, clock, ["failure"]) == ["downtime"]  # still down after: sent once
    assert feed(policy, mon, clock, ["failure"]) == []
    window["on"] = True
    assert feed(policy, mon, clock, ["success"] * 2) == []  # recovered inside the next window
    window["on"] = False
    assert feed(policy, mon, clock, ["success"]) == ["recovery"]  # told once it is over


def test_low_balance_alerts_once_rearms_above_hysteresis_and_is_not_downtime():
    policy, mon, clock = setup()
    mon.type = "balance"
    mon.config = {"url": "http://127.0.0.1:9/", "address": "0x" + "ab" * 20,
                  "min_balance": 10, "hysteresis": 5}

    def balance(value, code=None):
        clock.t += 60
        low = value is not None and value < 10
        st = Status.FAILURE if low or code else Status.SUCCESS
        r = CheckResult(mon.id, datetime.now(UTC), st,
                        timings={} if value is None else {"balance": value},
                        error_code="low_balance" if low else code,
                        error_message=f"balance {value} is below min_balance 10" if low else None)
        return [a.alert_type for a in policy.observe(mon, r)]

    assert balance(50) == [] and balance(40) == []
    assert balance(9) == ["low_balance"]
    assert balance(8) == [] and balance(3) == []  # once per drop
    assert policy.health(mon.id) is Health.UP  # the endpoint answers: not downtime
    assert balance(12) == []  # above min, inside the hysteresis band: still armed off
    assert balance(9.5) == []
    assert balance(15) == []  # at min + hysteresis: re-armed
    assert balance(7) == ["low_balance"]
    assert balance(None, "connect") == []  # endpoint down: no balance, no balance alert


def test_push_monitor_is_looked_at_every_minute_and_alerts_on_the_first_verdict():
    policy, mon, clock = setup()  # failure_threshold 3, success_threshold 2 for the others
    mon.type, mon.interval_s = "push", 86400  # a nightly job
    mon.config = {"token_sha256": "ab" * 32, "grace_s": 1800}
    assert mon.cadence_s == 60  # not once a day: a missed push is seen within a minute
    assert feed(policy, mon, clock, ["success"]) == []
    assert feed(policy, mon, clock, ["failure"], error_code="no_push") == ["downtime"]
    assert feed(policy, mon, clock, ["failure"], error_code="no_push") == []
    assert feed(policy, mon, clock, ["success"]) == ["recovery"]  # one push proves the job ran
    http = Monitor(uuid.uuid4(), "api", "http", {"url": "https://x/"}, 300)
    assert http.cadence_s == 300
