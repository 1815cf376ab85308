"""Deploying the stack with Ansible: the release the hosts install, and the main job.

API::

    from lighthouse_ops.deploy import build_release, run_playbook, deploy_local, teardown_local

    rel = build_release()                      # wheel + wheelhouse for the hosts' Python (cached)
    res = run_playbook("site.yml", inventory, extra_vars={...})   # PlaybookResult(rc, changed, ...)
    report = deploy_local("local")             # sandbox up -> site.yml -> demo monitors -> report
    teardown_local("local")                    # loop devices detached, sandbox removed

Details: docs/ansible.md.
"""

from lighthouse_ops.deploy.ansible_run import PlaybookResult, run_playbook
from lighthouse_ops.deploy.local import LocalDeployment, deploy_local, teardown_local
from lighthouse_ops.deploy.release import Release, build_release

__all__ = [
    "LocalDeployment",
    "PlaybookResult",
    "Release",
    "build_release",
    "deploy_local",
    "run_playbook",
    "teardown_local",
]
