"""The sandbox's S3 for pgBackRest: moto behind TLS (lighthouse_ops.moto_s3) on the controller.

One per sandbox, started detached on first deploy and reused afterwards (same port, same CA, so
a second deploy changes nothing); `local.down` stops it. Each database host reaches it at its
own controller-side veth address, which the server certificate names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from lighthouse_ops import moto_s3
from lighthouse_ops.sandbox import Sandbox, paths

log = logging.getLogger(__name__)

BUCKET = "lighthouse-backups"
DUMPS_PREFIX = "dumps/"  # = infra.config.DUMPS_PREFIX (tests/unit/infra/test_outputs.py)


def _state_path(sb: Sandbox) -> Path:
    # Outside the sandbox's own directory: `Sandbox.down` removes that, and the S3 must still
    # be found (and stopped) afterwards.
    return paths.STATE_ROOT / "s3" / sb.name / "state.json"


def _alive(pid: int, marker: str) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _running(state: dict[str, Any]) -> bool:
    return bool(state) and all(_alive(p, m) for p, m in state.get("pids", []))


def ensure_s3(sb: Sandbox) -> dict[str, Any]:
    """Start (or find) the sandbox's S3; returns {port, ca_file, bucket}."""
    path = _state_path(sb)
    state = json.loads(path.read_text()) if path.exists() else {}
    if _running(state):
        return state
    stop_s3(sb)
    controller_ips = sorted({h.controller_ip for h in sb.hosts()})
    workdir = path.parent
    workdir.mkdir(parents=True, exist_ok=True)
    s3 = moto_s3.MotoS3.start(workdir, bind="0.0.0.0", port=state.get("port"),  # noqa: S104
                              buckets=[BUCKET], extra_names=controller_ips)
    markers = ["moto_server", "stunnel"]
    state = {"port": s3.port, "ca_file": str(s3.ca_file), "bucket": BUCKET,
             "pids": [[p.pid, m] for p, m in zip(s3.procs, markers, strict=True)]}
    path.write_text(json.dumps(state))
    log.info("event=sandbox_s3_started sandbox=%s port=%s", sb.name, s3.port)
    return state


def stop_s3(sb: Sandbox) -> None:
    path = _state_path(sb)
    if not path.exists():
        return
    for pid, marker in json.loads(path.read_text()).get("pids", []):
        if _alive(pid, marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    shutil.rmtree(path.parent, ignore_errors=True)  # state, certificates, logs


def pgbackrest_host_vars(state: dict[str, Any], controller_ip: str) -> dict[str, Any]:
    """pgbackrest role variables for one database host (keys are moto's fake ones)."""
    return {
        "lighthouse_pgbackrest_enabled": True,
        "pgbackrest_repo_s3_bucket": state["bucket"],
        "pgbackrest_repo_s3_endpoint": controller_ip,
        "pgbackrest_repo_s3_port": state["port"],
        "pgbackrest_repo_s3_region": moto_s3.REGION,
        "pgbackrest_repo_s3_uri_style": "path",
        "pgbackrest_repo_s3_key_type": "shared",
        "pgbackrest_repo_s3_key": moto_s3.ACCESS_KEY,
        "pgbackrest_repo_s3_key_secret": moto_s3.SECRET_KEY,
        "pgbackrest_repo_ca_content": Path(state["ca_file"]).read_text(),
    }


def db_timer_host_vars(state: dict[str, Any], controller_ip: str) -> dict[str, Any]:
    """The db host's own timers against the sandbox's moto (it serves S3 and CloudWatch at
    one endpoint): the weekly dump into the same bucket under dumps/, host metrics every
    minute, and the boto3 environment (ops_runtime) both use."""
    return {
        "lighthouse_logical_dump_enabled": True,
        "lighthouse_host_metrics_enabled": True,
        "logical_dump_s3_url": f"s3://{state['bucket']}/{DUMPS_PREFIX}",
        "logical_dump_s3_path_style": True,
        "ops_runtime_aws_region": moto_s3.REGION,
        "ops_runtime_aws_endpoint_url": f"https://{controller_ip}:{state['port']}",
        "ops_runtime_aws_ca_content": Path(state["ca_file"]).read_text(),
        "ops_runtime_aws_access_key": moto_s3.ACCESS_KEY,
        "ops_runtime_aws_secret_key": moto_s3.SECRET_KEY,
    }
