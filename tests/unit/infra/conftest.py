"""Build each committed stack once per session under Pulumi mocks (pulumi_aws imports
slowly; every test then asserts on the recorded resources)."""

from __future__ import annotations

import warnings

import pytest

from infra.config import load_stack_file, repo_stack_file


@pytest.fixture(scope="session")
def stacks():
    # pulumi_aws warns about its own deprecated S3 classes at import time: not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from tests.unit.infra.mocks import run_stack

        return {name: run_stack(load_stack_file(repo_stack_file(name)))
                for name in ("dev", "prod")}


@pytest.fixture(params=["dev", "prod"])
def run(request, stacks):
    return stacks[request.param]


@pytest.fixture
def dev(stacks):
    return stacks["dev"]


@pytest.fixture
def prod(stacks):
    return stacks["prod"]
