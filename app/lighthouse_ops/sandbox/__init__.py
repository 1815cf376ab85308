"""Local sandbox hosts: real Debian trixie hosts on this machine, reached over SSH like EC2.

Each host is a systemd-nspawn container booting systemd as PID 1 in its own network namespace,
on a private /30 (from 10.213.0.0/16) shared only with this machine, with root SSH by a
per-sandbox ed25519 key. apt inside goes through an apt-cacher-ng proxy on the controller
(Debian's mirror only). Several sandboxes run at once under different names. Details and
limits: docs/sandbox.md.

API::

    from lighthouse_ops.sandbox import Sandbox, Host, SandboxError, CapabilityError

    sb = Sandbox("pytest")              # name: [a-z][a-z0-9-]*, default "local"
    hosts = sb.up(db=1, prober=1)       # -> list[Host]; idempotent, blocks until SSH answers
    h = sb.host("db-1")                 # Host(name, role, index, ip, controller_ip, ssh_key,
                                        #      netns, slot, rootfs, console_log, nspawn_pid, ...)
    sb.ssh("db-1", "systemctl is-system-running --wait")   # CompletedProcess; raises on exit != 0
    sb.ssh_argv("db-1")                 # argv for an interactive ssh
    sb.testinfra_host("db-1")           # testinfra Host over ssh://root@ip
    sb.reboot("db-1")                   # reboot inside; returns when SSH answers again
    sb.attach_disk("db-1", "/dev/xvdf", size_mb=1024)  # loop-backed EBS stand-in -> /dev/loopN
    sb.grow_disk("db-1", "/dev/xvdf", size_mb=2048)    # like EBS ModifyVolume
    sb.inventory_path                   # Ansible inventory (local: inventories/local/hosts.yml,
                                        #   others: .sandbox/<name>/hosts.yml)
    sb.ssh_config_path, sb.ssh_key      # `ssh -F <ssh_config_path> db-1`
    sb.status()                         # {"db-1": "running", ..., "apt-proxy": "running"}
    sb.hosts(), sb.is_up(), sb.timings
    sb.down()                           # removes processes, netns, veths, mounts, state

Errors: CapabilityError (subclass of SandboxError) when the machine cannot run hosts at all
(not root, no netns, missing tool); SandboxError for anything else, with the failing step.
"""

from lighthouse_ops.sandbox.core import Host, Sandbox, check_capabilities
from lighthouse_ops.sandbox.errors import CapabilityError, SandboxError

__all__ = ["CapabilityError", "Host", "Sandbox", "SandboxError", "check_capabilities"]
