"""Running ansible-playbook from the controller's venv and reading its PLAY RECAP."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
PLAYBOOKS = REPO_ROOT / "playbooks"
RECAP_LINE = re.compile(r"^(?P<host>\S+)\s*:\s*(?P<counts>(?:\w+=\d+\s*)+)$")
TASK_LINE = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<task>.+)\] \**$")
CHANGED_LINE = re.compile(r"^changed: \[(?P<host>[^\]]+)\]")


class PlaybookError(RuntimeError):
    """ansible-playbook failed; carries the result (recap and output tail)."""

    def __init__(self, result: PlaybookResult) -> None:
        self.result = result
        failed = {h: c for h, c in result.recap.items() if c.get("failed") or c.get("unreachable")}
        where = failed or ("no host (the inventory matched none)" if not result.recap
                           else "unknown")
        super().__init__(f"{result.playbook} failed (exit {result.rc}) on {where}:"
                         f"\n{result.output[-4000:]}")


@dataclass
class PlaybookResult:
    playbook: str
    rc: int
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    output: str = ""

    @property
    def changed(self) -> int:
        return sum(c.get("changed", 0) for c in self.recap.values())

    @property
    def ok(self) -> bool:
        return self.rc == 0


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """{host: {"ok": n, "changed": n, ...}} from the PLAY RECAP section."""
    recap: dict[str, dict[str, int]] = {}
    _, _, tail = output.rpartition("PLAY RECAP")
    for line in tail.splitlines():
        m = RECAP_LINE.match(line.strip())
        if m:
            recap[m["host"]] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m["counts"])}
    return recap


def changed_tasks(output: str) -> list[tuple[str, str]]:
    """[(task, host)] for every "changed:" line, in order (a loop item counts once per host)."""
    seen: list[tuple[str, str]] = []
    task = ""
    for line in output.splitlines():
        if m := TASK_LINE.match(line):
            task = m["task"]
        elif (m := CHANGED_LINE.match(line)) and (task, m["host"]) not in seen:
            seen.append((task, m["host"]))
    return seen


def ansible_env(secrets_dir: Path | None = None,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
           "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1", **(extra or {})}
    if secrets_dir is not None:
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        env["LIGHTHOUSE_SECRETS_DIR"] = str(secrets_dir)
    return env


def run_playbook(
    playbook: str,
    inventory: Path,
    extra_vars: dict[str, Any] | None = None,
    *,
    secrets_dir: Path | None = None,
    limit: str | None = None,
    echo: bool = True,
    check: bool = True,
    options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> PlaybookResult:
    """Run playbooks/<playbook>; stream its output (echo) and return the parsed recap.
    options: extra ansible-playbook flags, e.g. ("--check", "--diff"); env: added to the
    controller's environment (what lookups, which run there, read: AWS endpoint, keys)."""
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory),
            str(PLAYBOOKS / playbook), *options]
    if limit:
        argv += ["--limit", limit]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        # Extra vars go through a 0600 file: never on a command line (ps) or in logs.
        os.chmod(fh.name, 0o600)
        json.dump(extra_vars or {}, fh)
    argv += ["-e", f"@{fh.name}"]
    log.info("event=ansible_playbook playbook=%s inventory=%s", playbook, inventory)
    lines: list[str] = []
    try:
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=ansible_env(secrets_dir, env), cwd=REPO_ROOT) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            rc = proc.wait()
    finally:
        os.unlink(fh.name)
    output = "".join(lines)
    result = PlaybookResult(playbook=playbook, rc=rc, recap=parse_recap(output), output=output)
    # An inventory that parses to no hosts still exits 0 ("skipping: no hosts matched"):
    # that is a failed run, not a converged one with changed=0.
    if check and (rc != 0 or not result.recap):
        raise PlaybookError(result)
    return result
