"""Checks of values that end up in Kubernetes objects, for the prompt_service role's preflight:
promptops.cluster.cron_errors, promptops.cluster.quantity_errors, promptops.cluster.timezone_errors.

Each returns a list of problems (empty when the value is fine), so a task can name them all.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

# A CronJob's schedule: five fields, each a list of *, numbers, ranges and steps; months and
# weekdays also by name. Ranges are those of cron(8), which Kubernetes follows.
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i
            for i, m in enumerate(
                ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
            )
        },
    ),
    ("day of week", 0, 7, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
)
_CRON_ITEM = re.compile(r"^(\*|(?P<lo>\w+)(-(?P<hi>\w+))?)(/(?P<step>\d+))?$")
# Kubernetes resource.Quantity: a number with an optional binary or decimal suffix.
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")


def cron_errors(expression: Any) -> list[str]:
    if not isinstance(expression, str) or len(expression.split()) != 5:
        return [f"cron {expression!r} must have 5 fields (minute hour day-of-month month day-of-week)"]
    problems = []
    for text, (field, low, high, names) in zip(expression.split(), _CRON_FIELDS, strict=True):
        for item in text.split(","):
            match = _CRON_ITEM.match(item.lower())
            values = [] if not match else [v for v in (match["lo"], match["hi"]) if v is not None]
            numbers = [names.get(v, int(v) if v.isdigit() else None) for v in values]
            if not match or None in numbers or any(not low <= n <= high for n in numbers if n is not None):
                problems.append(f"cron {expression!r}: {field} {item!r} is not in {low}-{high}")
            elif match["step"] is not None and int(match["step"]) == 0:
                problems.append(f"cron {expression!r}: {field} {item!r} has a step of 0")
    return problems


def quantity_errors(resources: Any) -> list[str]:
    """Problems of a container's requests/limits: each cpu and memory must be a Quantity."""
    if not isinstance(resources, Mapping):
        return ["resources must be a mapping with requests and limits"]
    problems = []
    for section in ("requests", "limits"):
        values = resources.get(section)
        if not isinstance(values, Mapping):
            problems.append(f"resources.{section} must be a mapping with cpu and memory")
            continue
        for name in ("cpu", "memory"):
            if name not in values:
                problems.append(f"resources.{section}.{name} is missing")
            elif not _QUANTITY.match(str(values[name])):
                problems.append(
                    f"resources.{section}.{name} {values[name]!r} is not a Kubernetes quantity (e.g. 500m, 256Mi)"
                )
    return problems


def timezone_errors(name: Any) -> list[str]:
    if isinstance(name, str) and name in zoneinfo.available_timezones():
        return []
    return [f"timezone {name!r} is not an IANA time zone (e.g. Europe/Berlin, Etc/UTC)"]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cron_errors": cron_errors, "quantity_errors": quantity_errors, "timezone_errors": timezone_errors}
