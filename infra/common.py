"""Helpers shared by the components: tags, child options, protection."""

from __future__ import annotations

import pulumi

from infra.config import StackConfig

COMPONENT_PREFIX = "lighthouse:infra"


def tags(cfg: StackConfig, name: str, **extra: str) -> dict[str, str]:
    """Tags every resource carries: Name, project, stack, plus the stack's own tags."""
    return {"Name": f"{cfg.name_prefix}-{name}", "project": "lighthouse", "stack": cfg.stack,
            **dict(cfg.tags), **extra}


def child(parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def stateful(parent: pulumi.Resource, cfg: StackConfig, **kwargs) -> pulumi.ResourceOptions:
    """Options for resources holding data: protected and retained on delete when the stack
    asks for deletion protection (prod), so `pulumi destroy` cannot lose them."""
    protect = cfg.deletion_protection
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect,
                                  **kwargs)
