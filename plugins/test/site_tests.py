"""Tests of the site playbooks: promptops.cluster.any_part_runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def any_part_runs(parts: Sequence[str], runs: Mapping[str, bool]) -> bool:
    """Does this run execute one of ``parts`` (names of the site's parts, see preflight.yml)?"""
    return any(runs.get(part, False) for part in parts)


class TestModule:
    def tests(self) -> dict[str, Any]:
        return {"any_part_runs": any_part_runs}
