"""Filters of the site playbooks: promptops.cluster.effective_vars, effective_value and image_registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DOCUMENTATION_EFFECTIVE_VARS = """
name: effective_vars
short_description: A role's variables as a host sees them
description:
  - For each key of O(_input) (a role's defaults), the value the first host of O(hosts) has
    for it in the inventory, else the default. Only those keys are read, so no other variable
    of the host is templated. With no hosts, the defaults themselves.
"""

# Docker's own name for Docker Hub: images without a registry part come from there.
DOCKER_HUB = "registry-1.docker.io"


def effective_vars(defaults: Mapping[str, Any], hostvars: Mapping[str, Any], hosts: Sequence[str]) -> dict[str, Any]:
    if not hosts:
        return dict(defaults)
    host_vars = hostvars[hosts[0]]
    return {key: host_vars.get(key, value) for key, value in defaults.items()}


def effective_value(host: str, hostvars: Mapping[str, Any], name: str, default: Any) -> Any:
    """One variable as ``host`` sees it in the inventory, else ``default``."""
    return hostvars[host].get(name, default)


def image_registry(image: str) -> str:
    """The registry host of an image reference, as Docker resolves it."""
    first, slash, _ = image.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        return DOCKER_HUB
    return DOCKER_HUB if first in ("docker.io", "index.docker.io") else first


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"effective_vars": effective_vars, "effective_value": effective_value, "image_registry": image_registry}
