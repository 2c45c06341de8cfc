"""The README's generated tables match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.core.config import Settings
from app.core.metrics import METRIC_NAMES

SERVICE_DIR = Path(__file__).parents[1]


def test_readme_tables_are_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/gen_docs.py", "--check"],
        cwd=SERVICE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_names_every_setting_and_metric() -> None:
    readme = (SERVICE_DIR / "README.md").read_text()

    for name in Settings.model_fields:
        assert f"`PROMPT_{name.upper()}`" in readme
    for name in METRIC_NAMES:
        assert f"`{name}`" in readme
