"""Errors raised by the sandbox: one for a missing machine capability, one for everything else."""

from __future__ import annotations


class SandboxError(RuntimeError):
    """A sandbox operation failed; the message says which step and why."""


class CapabilityError(SandboxError):
    """This machine cannot run sandbox hosts (not root, no netns, missing tool ...)."""
