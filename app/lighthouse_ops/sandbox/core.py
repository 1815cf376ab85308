"""The Sandbox: named set of hosts brought up and torn down as one (see package docstring)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lighthouse_ops.sandbox import aptproxy, disks, machine, network, paths, rootfs
from lighthouse_ops.sandbox.addressing import SERVICE_IP, Link
from lighthouse_ops.sandbox.commands import run
from lighthouse_ops.sandbox.errors import CapabilityError, SandboxError
from lighthouse_ops.sandbox.inventory import render_inventory, render_ssh_config
from lighthouse_ops.sandbox.process import alive, terminate

log = logging.getLogger("lighthouse_ops.sandbox")

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,15}(-[a-z0-9]+)*$")
TOOLS = ("ip", "iptables", "systemd-nspawn", "ssh", "ssh-keygen", "tar", "zstd", "mount")


@dataclass
class Host:
    """One running sandbox host, as recorded in the sandbox state."""

    name: str  # e.g. "db-1"; also its hostname
    role: str  # "db" | "prober" (its Ansible group)
    index: int
    ip: str  # the host's address (eth0 in its netns)
    controller_ip: str  # this machine's end of the veth pair, reachable from the host
    ssh_key: Path  # private key for root@ip
    netns: str
    slot: int
    rootfs: Path
    console_log: Path
    nspawn_pid: int | None = None  # the reboot loop around systemd-nspawn (machine.boot)
    leader_pid: int | None = None
    leader_cmd: str = ""
    boot_to_ssh_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ssh_target(self) -> str:
        return f"root@{self.ip}"

    @property
    def link(self) -> Link:
        return Link(self.slot)

    def running(self) -> bool:
        return self.nspawn_pid is not None and alive(self.nspawn_pid, machine.NSPAWN)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("ssh_key", "rootfs", "console_log"):
            d[k] = str(d[k])
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Host:
        d = dict(d)
        for k in ("ssh_key", "rootfs", "console_log"):
            d[k] = Path(d[k])
        return cls(**d)


def check_capabilities() -> None:
    """Raise CapabilityError naming what this machine lacks to run sandbox hosts."""
    if os.geteuid() != 0:
        raise CapabilityError("sandbox hosts need root (network namespaces, mounts, nspawn)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise CapabilityError(f"missing tools: {', '.join(missing)} (run scripts/bootstrap)")
    if not Path(aptproxy.BINARY).exists():
        raise CapabilityError(f"{aptproxy.BINARY} is missing (apt-get install apt-cacher-ng)")
    probe = f"lhsb-probe-{os.getpid()}"
    proc = run(["ip", "netns", "add", probe], check=False)
    if proc.returncode != 0:
        raise CapabilityError(f"cannot create network namespaces: {proc.stderr.strip()}")
    run(["ip", "netns", "del", probe], check=False)


class Sandbox:
    """A named group of local hosts (see the package docstring for the API)."""

    def __init__(self, name: str = "local", repo_root: Path = paths.REPO_ROOT) -> None:
        if not NAME_RE.match(name) or len(name) > 24:
            raise SandboxError(
                f"bad sandbox name {name!r}: lowercase letters, digits and dashes, "
                "starting with a letter, at most 24 characters"
            )
        self.name = name
        self.repo_root = repo_root
        self.dir = paths.sandbox_dir(name)
        self.state_path = self.dir / "state.json"
        self.ssh_key = self.dir / "id_ed25519"
        self.inventory_path = paths.inventory_path(name, repo_root)
        self.ssh_config_path = self.dir / "ssh_config"

    # ---- state -------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"name": self.name, "hosts": {}}

    def _save(self, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
        tmp.replace(self.state_path)

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return rootfs.file_lock(paths.STATE_ROOT / "locks" / f"{self.name}.lock")

    def hosts(self) -> list[Host]:
        """Hosts recorded for this sandbox (running or not), sorted by role then index."""
        hosts = [Host.from_json(h) for h in self._load()["hosts"].values()]
        return sorted(hosts, key=lambda h: (h.role, h.index))

    def host(self, name: str) -> Host:
        for h in self.hosts():
            if h.name == name:
                return h
        known = ", ".join(h.name for h in self.hosts()) or "none (run sandbox.up)"
        raise SandboxError(f"sandbox {self.name!r} has no host {name!r}; hosts: {known}")

    def is_up(self) -> bool:
        hosts = self.hosts()
        return bool(hosts) and all(h.running() for h in hosts)

    def status(self) -> dict[str, str]:
        """{host: "running" | "stopped"} plus "apt-proxy"; empty when the sandbox is down."""
        state = self._load()
        out = {h.name: ("running" if h.running() else "stopped") for h in self.hosts()}
        if state["hosts"]:
            out["apt-proxy"] = "running" if aptproxy.running() else "stopped"
        return out

    @property
    def timings(self) -> dict[str, float]:
        """Seconds of the last `up`: rootfs_build_s (cold), host_from_cache_s, boot_to_ssh_s."""
        return self._load().get("timings", {})

    # ---- up ----------------------------------------------------------------------------
    def up(self, db: int = 1, prober: int = 1, timeout: float = 180) -> list[Host]:
        """Bring the sandbox to exactly db-1..db-N and prober-1..prober-M, booted and on SSH.

        Idempotent: running hosts are kept, missing or dead ones (re)made, extra ones removed.
        """
        if db < 0 or prober < 0 or db + prober == 0:
            raise SandboxError(f"need at least one host (db={db}, prober={prober})")
        wanted = [("db", i) for i in range(1, db + 1)] + [
            ("prober", i) for i in range(1, prober + 1)
        ]
        with self._lock():
            state = self._load()
            names = {f"{r}-{i}" for r, i in wanted}
            current = {n: Host.from_json(h) for n, h in state["hosts"].items()}
            healthy = all(h.running() for h in current.values()) and aptproxy.running()
            if set(current) == names and healthy:
                log.info("sandbox up sandbox=%s already_running=%d", self.name, len(names))
                # The inventory lives in the checkout (inventories/local/hosts.yml): another
                # clone that finds the hosts running still needs its own copy.
                self._write_access_files()
                return self.hosts()
            check_capabilities()
            return self._converge(state, wanted, timeout)

    def _converge(self, state: dict[str, Any], wanted: list[tuple[str, int]],
                  timeout: float) -> list[Host]:
        timings: dict[str, float] = {}
        names = [f"{r}-{i}" for r, i in wanted]
        for name in list(state["hosts"]):
            h = Host.from_json(state["hosts"][name])
            if name not in names or not h.running():
                log.info("sandbox remove host sandbox=%s host=%s", self.name, name)
                self._destroy_host(h)
                del state["hosts"][name]
                network.release(self.name, name)
                self._save(state)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.ssh_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                 f"lighthouse-sandbox-{self.name}", "-f", str(self.ssh_key)])
        spec = rootfs.RootfsSpec()
        _, built = rootfs.ensure_tarball(spec)
        if built is not None:
            timings["rootfs_build_s"] = round(built, 1)
        base = rootfs.ensure_base(spec)

        # Network first: the apt proxy binds to the controller ends of every veth.
        new: list[Host] = []
        for role, index in wanted:
            name = f"{role}-{index}"
            if name in state["hosts"]:
                continue
            link = network.allocate(self.name, name)
            hdir = paths.host_dir(self.name, name)
            host = Host(
                name=name, role=role, index=index, ip=link.host_ip,
                controller_ip=link.controller_ip, ssh_key=self.ssh_key,
                netns=network.netns_name(self.name, name), slot=link.slot,
                rootfs=hdir / "rootfs", console_log=hdir / "console.log",
            )
            state["hosts"][name] = host.to_json()
            self._save(state)  # recorded before anything is made, so `down` finds it
            try:
                network.create(host.netns, link)
            except SandboxError as exc:
                if "Operation not permitted" in str(exc):
                    raise CapabilityError(f"network namespace setup not permitted: {exc}") from exc
                raise
            new.append(host)
        network.ensure_forwarding()
        aptproxy.ensure()
        all_hosts = [Host.from_json(h) for h in state["hosts"].values()]
        boot_started: dict[str, float] = {}
        pubkey = self.ssh_key.with_suffix(".pub").read_text()

        def hosts_lines(me: Host) -> list[str]:
            siblings = [f"{h.ip}\t{h.name}" for h in all_hosts if h.name != me.name]
            return [*siblings, f"{me.controller_ip}\tcontroller", f"{SERVICE_IP}\tapt-proxy"]

        for host in new:
            started = time.monotonic()
            hdir = host.rootfs.parent
            hdir.mkdir(parents=True, exist_ok=True)
            rootfs.mount_overlay(base, hdir)
            machine.configure_rootfs(
                host.rootfs,
                hostname=host.name,
                hosts_lines=hosts_lines(host),
                authorized_key=pubkey,
                apt_proxy=aptproxy.URL,
            )
            timings["host_from_cache_s"] = round(time.monotonic() - started, 2)
            host.nspawn_pid = machine.boot(
                host.rootfs, netns=host.netns, machine=f"{self.name}-{host.name}",
                hostname=host.name, console_log=host.console_log,
            )
            boot_started[host.name] = time.monotonic()
            state["hosts"][host.name] = host.to_json()
            self._save(state)
            log.info("host booting sandbox=%s host=%s ip=%s pid=%d", self.name, host.name,
                     host.ip, host.nspawn_pid)
        # Existing hosts learn about new siblings (the overlay is their live root).
        new_names = {h.name for h in new}
        for host in all_hosts:
            if host.name not in new_names:
                machine.write_hosts(host.rootfs, host.name, hosts_lines(host))
        if new:
            wait_start = time.monotonic()
            waited = machine.wait_for_ssh(
                [(h.name, h.ip, h.nspawn_pid or 0, h.console_log) for h in new],
                self.ssh_key, timeout=timeout,
            )
            for host in new:
                host.boot_to_ssh_s = round(
                    wait_start + waited[host.name] - boot_started[host.name], 2
                )
                found = machine.leader(host.nspawn_pid or 0)
                if found:
                    host.leader_pid, host.leader_cmd = found
                state["hosts"][host.name] = host.to_json()
                log.info("host ready sandbox=%s host=%s ip=%s boot_to_ssh_s=%.1f", self.name,
                         host.name, host.ip, host.boot_to_ssh_s)
            timings["boot_to_ssh_s"] = max(h.boot_to_ssh_s or 0.0 for h in new)
        state["timings"] = timings
        self._save(state)
        self._write_access_files()
        return self.hosts()

    def _write_access_files(self) -> None:
        hosts = self.hosts()
        self.inventory_path.parent.mkdir(parents=True, exist_ok=True)
        self.inventory_path.write_text(render_inventory(self.name, hosts, self.ssh_key))
        self.ssh_config_path.write_text(render_ssh_config(hosts, self.ssh_key))

    # ---- down --------------------------------------------------------------------------
    def down(self) -> None:
        """Stop every host and remove all this sandbox made: processes, netns, veths, mounts,
        state, inventory. The rootfs/apt caches under CACHE_ROOT stay. Safe to repeat."""
        with self._lock():
            state = self._load()
            hosts = [Host.from_json(h) for h in state["hosts"].values()]
            known = {h.name for h in hosts}
            # Allocations cover hosts whose state write was lost in a crash.
            for key, slot in network.allocations().items():
                sandbox, _, hname = key.partition("/")
                if sandbox == self.name and hname not in known:
                    hdir = paths.host_dir(self.name, hname)
                    hosts.append(Host(
                        name=hname, role="", index=0, ip="", controller_ip="",
                        ssh_key=self.ssh_key, netns=network.netns_name(self.name, hname),
                        slot=slot, rootfs=hdir / "rootfs", console_log=hdir / "console.log",
                    ))
            for h in hosts:
                self._destroy_host(h)
            for pid in self._stray_nspawns():  # from a crashed `up` that lost its state
                terminate(pid, machine.NSPAWN, grace=10)
            # Sandboxes made before the apt proxy became shared ran their own instance.
            for pid in self._procs_matching(f"-c {self.dir}/apt-cacher-ng"):
                terminate(pid, "apt-cacher-ng", grace=5)
            network.release(self.name)
            disks.detach_under(self.dir)
            rootfs.unmount_all(self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                self.inventory_path.unlink()
            in_use = bool(network.allocations())
            aptproxy.stop_if_unused(in_use)
            if not in_use:
                network.remove_forwarding()
            log.info("sandbox down sandbox=%s hosts=%d", self.name, len(hosts))

    def _destroy_host(self, h: Host) -> None:
        machine.stop(h.nspawn_pid, h.leader_pid, h.leader_cmd)
        network.destroy(h.netns, h.link)
        hdir = h.rootfs.parent
        disks.detach_under(hdir)
        rootfs.unmount_all(hdir)
        shutil.rmtree(hdir, ignore_errors=True)

    def _procs_matching(self, needle: str) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if needle in cmd:
                    found.append(int(entry.name))
        return found

    def _stray_nspawns(self) -> list[int]:
        return [p for p in self._procs_matching(f"--directory={self.dir}/hosts/")
                if alive(p, machine.NSPAWN)]

    def reboot(self, host: str, timeout: float = 120) -> float:
        """`systemctl reboot` inside host; wait for a new systemd, SSH and the end of boot
        (`is-system-running --wait`); return seconds.

        The host comes back on its own (the reboot loop in machine.boot), as an EC2 instance
        does, so Ansible's `reboot` module works too.
        """
        h = self.host(host)
        before = machine.leader(h.nspawn_pid or 0)
        started = time.monotonic()
        self.ssh(host, "systemctl reboot", check=False, timeout=30)
        # PID 1 first execs systemd-shutdown in place: wait for a new init PID.
        while (now := machine.leader(h.nspawn_pid or 0)) is None or (
            before is not None and now[0] == before[0]
        ):
            if time.monotonic() - started > timeout:
                raise SandboxError(f"{host} did not restart within {timeout:.0f}s "
                                   f"(console: {h.console_log})")
            time.sleep(0.1)
        machine.wait_for_ssh([(h.name, h.ip, h.nspawn_pid or 0, h.console_log)], self.ssh_key,
                             timeout=max(1.0, timeout - (time.monotonic() - started)))
        # like waiting for an instance's status checks: services started, not just sshd
        self.ssh(host, "systemctl is-system-running --wait", check=False, timeout=timeout)
        with self._lock():
            state = self._load()
            state["hosts"][host]["leader_pid"], state["hosts"][host]["leader_cmd"] = now
            self._save(state)
        return time.monotonic() - started

    # ---- disks -------------------------------------------------------------------------
    def attach_disk(self, host: str, device: str = "/dev/xvdf", size_mb: int = 1024) -> str:
        """Give host a block device at `device` backed by a sparse file (an EBS stand-in).

        Idempotent; returns the controller-side loop device. Removed by `down`.
        """
        if not re.fullmatch(r"/dev/[a-z][a-z0-9]*", device):
            raise SandboxError(f"bad device path {device!r}: want /dev/<name>, e.g. /dev/xvdf")
        with self._lock():
            h = self.host(host)
            image = h.rootfs.parent / "disks" / f"{Path(device).name}.img"
            loop = disks.attach(image, size_mb)
            major, minor = disks.major_minor(loop)
            self.ssh(host, f"test -b {device} || mknod -m 0660 {device} b {major} {minor}")
            state = self._load()
            recorded = state["hosts"][host].setdefault("extra", {}).setdefault("disks", {})
            recorded[device] = {"image": str(image), "loop": loop}
            self._save(state)
            log.info("disk attached sandbox=%s host=%s device=%s loop=%s size_mb=%d",
                     self.name, host, device, loop, size_mb)
            return loop

    def grow_disk(self, host: str, device: str, size_mb: int) -> None:
        """Enlarge an attached disk (like EBS ModifyVolume); the filesystem is not touched."""
        info = self.host(host).extra.get("disks", {}).get(device)
        if not info:
            raise SandboxError(f"{host} has no disk {device} (attach_disk first)")
        disks.grow(Path(info["image"]), info["loop"], size_mb)

    # ---- access ------------------------------------------------------------------------
    def ssh_argv(self, host: str, *command: str) -> list[str]:
        """argv for `ssh` into host as root (interactive when no command is given)."""
        h = self.host(host)
        return ["ssh", *machine.ssh_options(self.ssh_key), h.ssh_target, *command]

    def ssh(self, host: str, command: str, *, check: bool = True, timeout: float = 600,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a shell command on host as root; raise SandboxError on failure when check."""
        argv = self.ssh_argv(host, command)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              input=input_text, check=False)
        if check and proc.returncode != 0:
            output = (proc.stderr or proc.stdout)[-2000:]
            raise SandboxError(f"{host}: `{command}` exited {proc.returncode}:\n{output}")
        return proc

    def testinfra_host(self, host: str) -> Any:
        """A testinfra Host connected over SSH (same key and options as Ansible)."""
        import testinfra  # test dependency; imported only when asked for

        h = self.host(host)
        return testinfra.get_host(
            f"ssh://{h.ssh_target}",
            ssh_identity_file=str(self.ssh_key),
            ssh_extra_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            "-o LogLevel=ERROR -o IdentitiesOnly=yes",
        )
