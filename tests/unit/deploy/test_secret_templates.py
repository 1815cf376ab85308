"""Templates that render secrets must never show them in Ansible's output (`--diff`, -v)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
JINJA_BLOCK = re.compile(r"\{[{%](.*?)[%}]\}", re.S)
# A variable whose name says it holds a secret (password_encryption is a setting, not one).
SECRET_NAME = re.compile(r"\b\w*(password(?!_encryption)|secret|cipher_pass|_s3_key)\w*\b")


def renders_secret(text: str) -> bool:
    return any(SECRET_NAME.search(block) for block in JINJA_BLOCK.findall(text))


# Rendered from free-form dictionaries an operator may fill with tokens.
ALWAYS_SECRET = {"prober.env.j2"}


def template_tasks():
    for tasks in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        for task in yaml.safe_load(tasks.read_text()) or []:
            args = task.get("ansible.builtin.template")
            if not args:
                continue
            sources = [args["src"]]
            if args["src"] == "{{ item.src }}":  # a loop over literal {src, dest} items
                sources = [item["src"] for item in task["loop"]]
            for src in sources:
                yield tasks, task, tasks.parents[1] / "templates" / src


def test_secret_rendering_templates_hide_their_diff() -> None:
    checked = []
    for tasks, task, source in template_tasks():
        text = source.read_text()
        if source.name in ALWAYS_SECRET or renders_secret(text):
            checked.append(source.name)
            hidden = task.get("no_log") is True or task.get("diff") is False
            assert hidden, (f"{tasks.relative_to(ROOT)}: task {task['name']!r} renders "
                            f"secrets from {source.name} without no_log or diff: false")
    # The guard found the known secret-holding templates (so the regex still matches them).
    assert {"prober.yaml.j2", "prober.env.j2", "pgbackrest.conf.j2", "aws.env.j2"} <= set(checked)


def test_the_pattern_ignores_settings_named_like_secrets() -> None:
    assert not renders_secret("password_encryption = 'scram'")  # outside Jinja: plain text
    assert not renders_secret("x = '{{ timescaledb_password_encryption }}'")
    assert renders_secret("x={{ pgbackrest_repo_s3_key }}")
    assert renders_secret("{% set d = {\n 'dsn': (prober_db_password | urlencode),\n} %}")
