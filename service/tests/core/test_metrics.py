"""The exported metric names are the ones the service exposes."""

from __future__ import annotations

import json
import subprocess
import sys

from app.core.metrics import METRIC_NAMES, Metrics
from tests.conftest import RunningService, user


def test_every_exported_name_is_exposed(service: RunningService) -> None:
    service.chat(model="model-a", messages=user("metrics"))

    text = service.client.get("/metrics").text
    exposed = {
        line.split()[2] for line in text.splitlines() if line.startswith("# TYPE prompt_service_")
    }

    assert exposed == set(METRIC_NAMES)


def test_names_are_prefixed_and_unique() -> None:
    assert len(set(METRIC_NAMES)) == len(METRIC_NAMES)
    assert all(name.startswith("prompt_service_") for name in METRIC_NAMES)
    # Two apps in one process keep separate registries.
    Metrics()
    Metrics()


def test_names_are_available_as_json_for_other_tools() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "app.core.metrics"], capture_output=True, text=True, check=True
    ).stdout

    assert [m["name"] for m in json.loads(out)] == list(METRIC_NAMES)
