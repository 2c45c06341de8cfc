"""The prompt_service role's value checks (plugins/filter/k8s_filters.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_filters", ROOT / "plugins" / "filter" / "k8s_filters.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


f = load()


@pytest.mark.parametrize(
    "expression", ["0 20 * * 1-5", "*/15 * * * *", "0 7 1,15 * *", "30 6 * jan-mar MON-FRI", "0 0 * * 7"]
)
def test_valid_cron_expressions_pass(expression: str) -> None:
    assert f.cron_errors(expression) == []


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("61 25 * * 8", ["minute '61'", "hour '25'", "day of week '8'"]),
        ("0 0 * *", ["must have 5 fields"]),
        ("*/0 * * * *", ["step of 0"]),
        ("0 0 32 13 *", ["day of month '32'", "month '13'"]),
        ("@daily", ["must have 5 fields"]),
        ("a b c d e", ["minute 'a'", "hour 'b'", "day of month 'c'", "month 'd'", "day of week 'e'"]),
    ],
)
def test_bad_cron_expressions_name_each_bad_field(expression: str, expected: list[str]) -> None:
    problems = f.cron_errors(expression)
    assert len(problems) == len(expected)
    for problem, part in zip(problems, expected, strict=True):
        assert part in problem


def test_quantities() -> None:
    good = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": 1, "memory": "1.5Gi"}}
    assert f.quantity_errors(good) == []
    bad = {"requests": {"cpu": "lots", "memory": "256MB"}, "limits": {"cpu": "1"}}
    assert f.quantity_errors(bad) == [
        "resources.requests.cpu 'lots' is not a Kubernetes quantity (e.g. 500m, 256Mi)",
        "resources.requests.memory '256MB' is not a Kubernetes quantity (e.g. 500m, 256Mi)",
        "resources.limits.memory is missing",
    ]
    assert f.quantity_errors("1 cpu") == ["resources must be a mapping with requests and limits"]


def test_time_zones() -> None:
    assert f.timezone_errors("Europe/Berlin") == []
    assert f.timezone_errors("Mars/Olympus") == [
        "timezone 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Berlin, Etc/UTC)"
    ]
