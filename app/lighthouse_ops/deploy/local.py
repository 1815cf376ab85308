"""The main job: the whole stack on local sandbox hosts, and its removal.

deploy_local(): sandbox up -> release (wheel + wheelhouse) -> loop data volumes -> site.yml
(migrations run by the prober role) -> demo target + monitors -> report (URLs, uptime).
A second run finds everything in place: cached release, same hosts, site.yml changed=0.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lighthouse_ops.aws.runbook import Plan, Step
from lighthouse_ops.deploy import demo, s3
from lighthouse_ops.deploy.ansible_run import PlaybookResult, changed_tasks, run_playbook
from lighthouse_ops.deploy.inventory import prepare_inventory
from lighthouse_ops.deploy.release import Release, build_release
from lighthouse_ops.sandbox import Sandbox, SandboxError, disks

log = logging.getLogger(__name__)

PROBER_HTTP_PORT = 8080
# The EBS stand-in: a loop device the sandbox attaches (Sandbox.attach_disk) under this name.
DATA_DEVICE = "/dev/xvdf"
DATA_VOLUME_MB = 2048
PGBACKREST_ROLE = Path(__file__).resolve().parents[3] / "roles" / "pgbackrest"


@dataclass
class LocalDeployment:
    sandbox: Sandbox
    inventory: Path
    release: Release
    extra_vars: dict[str, Any]
    results: list[PlaybookResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def secrets_dir(self) -> Path:
        return self.sandbox.dir / "secrets"

    def prober_urls(self) -> dict[str, str]:
        return {h.name: f"http://{h.ip}:{PROBER_HTTP_PORT}/"
                for h in self.sandbox.hosts() if h.role == "prober"}

    def playbook(self, name: str, extra: dict[str, Any] | None = None,
                 echo: bool = True, check: bool = True,
                 options: tuple[str, ...] = ()) -> PlaybookResult:
        res = run_playbook(name, self.inventory, {**self.extra_vars, **(extra or {})},
                           secrets_dir=self.secrets_dir, echo=echo, check=check,
                           options=options)
        self.results.append(res)
        return res


def prepare(name: str = "local", db: int = 1, prober: int = 1,
            volume_mb: int = DATA_VOLUME_MB) -> LocalDeployment:
    """Sandbox hosts up, release built, data volumes attached, inventory written."""
    t = time.monotonic()
    sb = Sandbox(name)
    sb.up(db=db, prober=prober)
    dep = prepare_sandbox(sb, volume_mb)
    dep.timings = {"sandbox_up_s": time.monotonic() - t, **dep.timings}
    return dep


def prepare_sandbox(sb: Sandbox, volume_mb: int = DATA_VOLUME_MB,
                    backups: bool | None = None) -> LocalDeployment:
    """Release, data volumes, the S3 for pgBackRest and the inventory for an already running
    sandbox (tests use this). backups=None: on when the pgbackrest role is in the tree."""
    timings: dict[str, float] = {}
    t = time.monotonic()
    release = build_release()
    timings["release_s"] = time.monotonic() - t
    if backups is None:
        backups = PGBACKREST_ROLE.is_dir()
    s3_state = s3.ensure_s3(sb) if backups else None
    host_vars: dict[str, dict[str, Any]] = {}
    for h in sb.hosts():
        if h.role == "db":
            # Containers have no udev: the role re-makes the node from these numbers if the
            # host lost it (reboot) or the loop device changed.
            major, minor = disks.major_minor(sb.attach_disk(h.name, DATA_DEVICE, volume_mb))
            host_vars[h.name] = {"data_volume_device": DATA_DEVICE,
                                 "data_volume_create_node": {"major": major, "minor": minor}}
            if s3_state:
                host_vars[h.name].update(s3.pgbackrest_host_vars(s3_state, h.controller_ip))
                host_vars[h.name].update(s3.db_timer_host_vars(s3_state, h.controller_ip))
    inventory = prepare_inventory(sb.dir, sb.inventory_path, host_vars)
    return LocalDeployment(sandbox=sb, inventory=inventory, release=release,
                           extra_vars=release.ansible_vars(), timings=timings)


def converge(dep: LocalDeployment, echo: bool = True, check: bool = True) -> PlaybookResult:
    """site.yml on the sandbox."""
    return dep.playbook("site.yml", echo=echo, check=check)


def deploy_local(name: str = "local", db: int = 1, prober: int = 1,
                 echo: bool = True) -> tuple[LocalDeployment, str]:
    """Converge everything and return (deployment, printable report)."""
    dep = prepare(name, db=db, prober=prober)
    t = time.monotonic()
    site = converge(dep, echo=echo)
    dep.timings["site_s"] = time.monotonic() - t
    t = time.monotonic()
    demo.ensure_demo(dep, echo=echo)
    demo.wait_for_first_checks(dep.sandbox)
    dep.timings["demo_s"] = time.monotonic() - t
    report = demo.report(dep, site)
    return dep, report


def status_report(name: str = "local") -> str:
    """URLs and uptime of a running deployment (nothing is changed)."""
    sb = Sandbox(name)
    if not sb.is_up():
        raise SandboxError(f"sandbox {name!r} is not running (invoke local.up)")
    lines = [f"sandbox {name}: " + ", ".join(f"{k}={v}" for k, v in sb.status().items())]
    for h in sb.hosts():
        if h.role == "prober":
            url = f"http://{h.ip}:{PROBER_HTTP_PORT}/"
            lines.append(f"  {h.name}: status page {url}  metrics {url}metrics")
    lines.append("Uptime, last 24 h (monitor | checks | uptime % | avg ms):")
    lines += ["  " + " | ".join(r) for r in demo.uptime_rows_for(sb)]
    return "\n".join(lines)


def plan_local(name: str = "local", echo: bool = True) -> tuple[PlaybookResult, str]:
    """site.yml --check --diff against a running deployment: what a converge would change.
    Nothing on the hosts changes (read-only probes run, every change is only reported)."""
    sb = Sandbox(name)
    if not sb.is_up():
        raise SandboxError(f"sandbox {name!r} is not running (invoke local.up)")
    dep = prepare_sandbox(sb)
    res = dep.playbook("site.yml", echo=echo, options=("--check", "--diff"))
    changes = changed_tasks(res.output)
    lines = [f"site.yml --check --diff on {name!r}: "
             + (f"{len(changes)} change(s) would be made" if changes else "nothing would change")]
    lines += [f"  {host}: {task}" for task, host in changes]
    return res, "\n".join(lines)


def teardown_local(name: str = "local") -> None:
    """Stop the sandbox's S3, then the hosts (down also detaches their loop devices)."""
    sb = Sandbox(name)
    s3.stop_s3(sb)
    sb.down()


def teardown_plan(name: str, *, with_s3: bool) -> Plan:
    """What `local.down` / `sandbox.down` would remove, as a runbook plan to show and confirm.

    Everything on the hosts goes with them (the database, its backups in the sandbox's S3)."""
    sb = Sandbox(name)
    hosts = sb.hosts()
    plan = Plan(f"{'local' if with_s3 else 'sandbox'}.down {name}")
    if not hosts:
        plan.facts.append(f"sandbox {name!r} has no hosts recorded (down still clears what a "
                          "crashed run may have left)")
    plan.facts += [f"host {h.name} ({h.role}, {h.ip}): stopped, its root filesystem, data "
                   "volumes and network namespace removed" for h in hosts]
    if with_s3:
        def stop_s3() -> str:
            s3.stop_s3(sb)
            return "stopped"

        plan.steps.append(Step("stop the sandbox's S3 (its buckets, with every backup in them, "
                               "are removed)", stop_s3,
                               "hosts still up", "run local.down again"))
    def remove_hosts() -> str:
        sb.down()
        return f"{len(hosts)} host(s) removed"

    plan.steps.append(Step(f"remove every host and the state under {sb.dir}", remove_hosts,
                           "partly removed", "run the same down again (safe to repeat)"))
    plan.notes.append("the root filesystem and apt caches stay, so the next up is fast")
    return plan
