"""Static checks of roles/rancher that a Molecule run on our CI machines cannot make."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "rancher"
# The passwords, the environment (bootstrap password) and the module results that hold a token
# or the registration manifest, except for the attributes that are safe to show.
SAFE_RESULT_FIELDS = "state|cluster_id|server_version|password_changed|settings_changed|project_id|msg"
SECRET = re.compile(
    r"rancher_(admin|bootstrap)_password|_rancher_env\b"
    rf"|_rancher_(session|cluster|project)\b(?!\.({SAFE_RESULT_FIELDS})\b)"
)
# Tasks that only compare facts about secrets, never the secrets themselves.
SECRET_FREE = {"Refuse a missing bootstrap password", "Refuse an admin password Rancher would reject"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def tasks(items: list[dict[str, Any]] | None) -> Iterator[dict[str, Any]]:
    for task in items or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from tasks(task.get(key))


def test_privileged_is_the_default_for_real_hosts() -> None:
    assert load(ROLE / "defaults" / "main.yml")["rancher_privileged"] is True
    spec = load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert spec["rancher_privileged"]["default"] is True


def test_the_container_takes_privileged_from_the_variable_only() -> None:
    container = next(
        t for t in tasks(load(ROLE / "tasks" / "container.yml")) if "community.docker.docker_container" in t
    )
    assert container["community.docker.docker_container"]["privileged"] == "{{ rancher_privileged }}"


def test_the_role_warns_whenever_privileged_is_off() -> None:
    for name in ("preflight.yml", "finish.yml"):
        warnings = [t for t in tasks(load(ROLE / "tasks" / name)) if t.get("when") == "not rancher_privileged"]
        assert warnings, f"{name} has no warning for rancher_privileged=false"
        assert "WARNING" in load(ROLE / "vars" / "main.yml")["_rancher_unprivileged_warning"]


def test_every_task_carrying_a_secret_has_no_log() -> None:
    offenders = []
    for path in sorted((ROLE / "tasks").glob("*.yml")):
        for task in tasks(load(path)):
            if any(k in task for k in ("block", "import_tasks", "ansible.builtin.import_tasks")):
                continue
            body = yaml.safe_dump({k: v for k, v in task.items() if k not in ("name", "when", "failed_when", "until")})
            if SECRET.search(body) and task.get("name") not in SECRET_FREE and task.get("no_log") is not True:
                offenders.append(f"{path.name}: {task.get('name')}")
    assert offenders == []


def test_the_molecule_scenario_turns_privileged_off_only_through_the_variable() -> None:
    """No platform or task of the scenario sets a `privileged:` key of its own."""
    scenario = ROOT / "molecule" / "rancher"
    setters = [
        str(p.relative_to(scenario))
        for p in scenario.rglob("*.yml")
        if re.search(r"^\s*-?\s*privileged:", p.read_text(), re.MULTILINE)
    ]
    assert setters == []
    group_vars = load(scenario / "molecule.yml")["provisioner"]["inventory"]["group_vars"]["all"]
    assert group_vars["rancher_privileged"] is False
