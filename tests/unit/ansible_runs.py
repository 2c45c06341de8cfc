"""ansible-playbook runs for the unit tests, from the checkout, as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def ansible_playbook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """ansible-playbook of this venv with the collection's ansible.cfg and a minimal environment."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "PATH": "/usr/bin:/bin",
            **(env or {}),
        },
    )


def run_task(tmp_path: Path, task: dict[str, Any], *flags: str, connection: str = "local") -> dict[str, Any]:
    """One task in one play on localhost; its result, read through the JSON callback."""
    playbook = tmp_path / "play.yml"
    play = {"hosts": "localhost", "connection": connection, "gather_facts": False, "tasks": [task]}
    playbook.write_text(yaml.safe_dump([play]))
    result = ansible_playbook(
        "-i",
        "localhost,",
        str(playbook),
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        *flags,
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
    )
    outcome = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert isinstance(outcome, dict)
    return outcome
