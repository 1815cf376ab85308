"""A moto server (moto[server], a real HTTP endpoint) for the AWS runbook tests.

One server per session on a free 127.0.0.1 port; every test starts from a reset state.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pytest
from lighthouse_ops.aws.context import AwsRun
from lighthouse_ops.aws.waiters import Backoff

from tests.integration.aws.builders import REGION
from tests.integration.aws.fakes import (
    Events,
    FakeClock,
    RecordingConsole,
    RecordingEc2,
    RecordingHostOps,
    ScriptedVerifier,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url():
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    port = _free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto_server did not start on {url}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def ec2_raw(moto_url):
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10)
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto_url,
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106 (moto)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def ec2(ec2_raw, events):
    return RecordingEc2(ec2_raw, events)


@pytest.fixture
def console() -> RecordingConsole:
    return RecordingConsole()


@pytest.fixture
def run(ec2, events, console) -> AwsRun:
    return AwsRun(ec2=ec2, host_ops=RecordingHostOps(events), verifier=ScriptedVerifier(events),
                  console=console, backoff=Backoff(timeout_s=60, initial_s=0.01, max_s=0.05),
                  clock=FakeClock())
