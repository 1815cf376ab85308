"""http.listen binds each address given (same port) and nothing else; a failed bind leaves none."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from lighthouse import config
from lighthouse.metrics import Metrics
from lighthouse.web.server import BindError, WebApp

pytestmark = pytest.mark.unit


def _app() -> WebApp:
    return WebApp(metrics=Metrics(), health=lambda: {"status": "ok"}, pool=None)


def _get(addr: str, port: int) -> int:
    with urllib.request.urlopen(f"http://{addr}:{port}/health", timeout=5) as resp:
        return int(resp.status)


def _listening(addr: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((addr, port)) == 0


def test_each_listed_address_serves_on_one_port_and_no_other_address_does():
    app = _app()
    port = app.start(["127.0.0.1", "127.0.0.2"], 0)
    try:
        assert _get("127.0.0.1", port) == 200 and _get("127.0.0.2", port) == 200
        assert not _listening("127.0.0.3", port)  # not 0.0.0.0
    finally:
        app.stop()
    assert not _listening("127.0.0.1", port)


def test_a_failed_bind_names_the_address_and_releases_the_others():
    with socket.socket() as busy:
        busy.bind(("127.0.0.2", 0))
        busy.listen()
        port = busy.getsockname()[1]
        app = _app()
        with pytest.raises(BindError, match=rf"cannot listen on 127\.0\.0\.2:{port}"):
            app.start(["127.0.0.1", "127.0.0.2"], port)
        assert not _listening("127.0.0.1", port)


def test_listen_takes_one_address_a_list_or_a_comma_list_and_refuses_names():
    env = {"LIGHTHOUSE_DATABASE__DSN": "postgresql:///x"}
    assert config.load(None, env=env).http.listen == ["127.0.0.1"]
    one = config.load(None, env={**env, "LIGHTHOUSE_HTTP__LISTEN": "10.0.0.5"})
    assert one.http.listen == ["10.0.0.5"]
    two = config.load(None, env={**env, "LIGHTHOUSE_HTTP__LISTEN": "127.0.0.1, 10.0.0.5"})
    assert two.http.listen == ["127.0.0.1", "10.0.0.5"]
    with pytest.raises(config.ConfigError, match=r"http\.listen\[1\].*'db\.internal'"):
        config.load(None, env={**env, "LIGHTHOUSE_HTTP__LISTEN": "127.0.0.1,db.internal"})


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "TRACE", "QUERY", "BREW"])
def test_any_method_but_get_and_head_is_405_with_allow(method):
    app = _app()
    port = app.start("127.0.0.1", 0)
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/health", method=method)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)  # noqa: S310 - loopback
        assert err.value.code == 405 and err.value.headers["Allow"] == "GET, HEAD"
    finally:
        app.stop()
