"""`lighthouse run` as a real process: reload via NOTIFY, checks stored, /health, /metrics,
graceful SIGTERM with a check in flight."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lighthouse.cli import main as cli

from tests.integration.prober.conftest import scalar
from tests.support.pgserver import free_port, wait_for


@pytest.fixture
def target():
    """Local HTTP target: /ok answers at once, /slow after 2 s."""
    started: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            return

        def do_GET(self):  # noqa: N802
            started.append(self.path)
            if self.path == "/slow":
                time.sleep(2)
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", started
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - local test server
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def test_run_reload_store_metrics_and_graceful_sigterm(lh_dsn, target, tmp_path, monkeypatch):
    base, started = target
    port = free_port()
    conf = tmp_path / "prober.yaml"
    conf.write_text(f"""
database:
  dsn: {lh_dsn}
  maintenance_interval_s: 0
checks:
  ssrf_allow: [127.0.0.1/32]
scheduler:
  shutdown_grace_s: 8
storage:
  spool_dir: {tmp_path / 'spool'}
  flush_interval_s: 0.2
http:
  port: {port}
""")
    log = (tmp_path / "prober.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "lighthouse.cli", "-c", str(conf), "run"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: get(f"http://127.0.0.1:{port}/health")[0] == 200, 30)
        health = json.loads(get(f"http://127.0.0.1:{port}/health")[1])
        assert health["status"] == "ok" and health["database"]["reachable"]
        assert health["scheduler"]["running"] and health["scheduler"]["monitors"] == 0

        monkeypatch.setenv("LIGHTHOUSE_DATABASE__DSN", lh_dsn)
        assert cli(["monitors", "add", "web", f"{base}/ok"]) == 0
        count = "SELECT count(*) FROM check_history WHERE status = 'success'"
        assert wait_for(lambda: scalar(lh_dsn, count) >= 1, 20)  # NOTIFY -> checked at once

        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'lighthouse_checks_total{status="success"} 1.0' in metrics
        assert "lighthouse_monitors 1.0" in metrics
        assert "lighthouse_schedule_lateness_seconds_bucket" in metrics
        assert "lighthouse_spool_bytes 0.0" in metrics
        assert "lighthouse_queue_depth" in metrics

        assert cli(["monitors", "add", "slow", f"{base}/slow"]) == 0
        assert wait_for(lambda: "/slow" in started, 20)
        proc.send_signal(signal.SIGTERM)  # the /slow check is in flight
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    slow = scalar(lh_dsn, "SELECT count(*) FROM check_history c JOIN subscriptions s "
                          "ON s.id = c.subscription_id WHERE s.name = 'slow' "
                          "AND c.status = 'success' AND c.latency_ms >= 1500")
    assert slow == 1  # finished during the grace period and was flushed before exit
    log.seek(0)
    text = log.read()
    assert "shutdown requested" in text and "prober stopped" in text
    assert "aborted=0" in text
    assert not list(Path(tmp_path / "spool").iterdir())
