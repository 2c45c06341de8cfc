"""Collection-level checks: role interfaces, generated docs, metadata and the built artifact."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_match_defaults(role: Path) -> None:
    """meta/argument_specs.yml is the role's interface: same keys and defaults as defaults/main.yml."""
    defaults = load(role / "defaults" / "main.yml") or {}
    options = load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults), "argument_specs and defaults list different variables"
    for name, option in options.items():
        assert option.get("description"), f"{name} has no description"
        assert "type" in option, f"{name} has no type"
        assert option.get("default") == defaults[name], f"{name}: spec default differs from defaults/main.yml"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_public_variables_carry_the_role_prefix(role: Path) -> None:
    defaults = load(role / "defaults" / "main.yml") or {}
    prefix = f"{role.name}_"
    # design.md decision 6 names the fleet list itself; it is the one exception.
    exceptions = {"prompt_service": {"prompt_services"}}.get(role.name, set())
    assert [name for name in defaults if not name.startswith(prefix) and name not in exceptions] == []


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_internal_variables_start_with_underscore(role: Path) -> None:
    for path in (role / "vars").glob("*.yml"):
        names = list((load(path) or {}).keys())
        assert [n for n in names if not n.startswith("_")] == [], f"{path} defines public names"


def test_generated_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_role_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_galaxy_dependencies_match_requirements_yml() -> None:
    galaxy = load(ROOT / "galaxy.yml")["dependencies"]
    requirements = {c["name"]: c["version"] for c in load(ROOT / "requirements.yml")["collections"]}
    assert galaxy == requirements
    assert all(re.fullmatch(r">=\d+\.\d+\.\d+", v) for v in galaxy.values()), "dependencies need lower bounds"


def test_pinned_ansible_core_meets_requires_ansible() -> None:
    from ansible.module_utils.compat.version import LooseVersion
    from ansible.release import __version__

    floor = load(ROOT / "meta" / "runtime.yml")["requires_ansible"].removeprefix(">=")
    assert LooseVersion(__version__) >= LooseVersion(floor)
    pinned = re.search(r"^ansible-core==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned is not None
    assert pinned.group(1) == __version__, "the test runs on a different ansible-core than requirements.txt pins"


def test_bundled_collections_meet_galaxy_lower_bounds() -> None:
    """The `ansible` pip package must bring every dependency at a version galaxy.yml accepts."""
    import importlib.util
    import json

    from ansible.module_utils.compat.version import LooseVersion

    spec = importlib.util.find_spec("ansible_collections")
    assert spec is not None
    assert spec.submodule_search_locations
    base = Path(next(iter(spec.submodule_search_locations)))
    for name, bound in load(ROOT / "galaxy.yml")["dependencies"].items():
        manifest = base / name.replace(".", "/") / "MANIFEST.json"
        assert manifest.is_file(), f"{name} is not bundled with the ansible package"
        version = json.loads(manifest.read_text())["collection_info"]["version"]
        assert LooseVersion(version) >= LooseVersion(bound.removeprefix(">=")), f"{name} {version} < {bound}"


def test_collection_build_excludes_local_state(tmp_path: Path) -> None:
    result = subprocess.run(
        ["ansible-galaxy", "collection", "build", str(ROOT), "--output-path", str(tmp_path), "--force"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    (artifact,) = tmp_path.glob("promptops-cluster-*.tar.gz")
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    assert "roles/docker/tasks/main.yml" in names
    assert "galaxy.yml" not in names  # replaced by MANIFEST.json in a built collection
    local_state = r"\.venv|\.git|\.ci|\.cache|\.collections|\.ansible|__pycache__|\.pytest_cache|\.mypy_cache"
    forbidden = re.compile(rf"(^|/)({local_state})(/|$)")
    assert [n for n in names if forbidden.search(n)] == []


def test_backup_role_loops_never_carry_the_job_passwords() -> None:
    """A loop prints every item at -v whatever its label says: only no_log loops may see passwords."""

    def tasks(items: list[dict[str, Any]] | None) -> Any:
        for task in items or []:
            yield task
            for key in ("block", "rescue", "always"):
                yield from tasks(task.get(key))

    role = ROOT / "roles" / "backup"
    offenders = []
    for path in sorted([*(role / "tasks").glob("*.yml"), role / "handlers" / "main.yml"]):
        for task in tasks(load(path)):
            loop = str(task.get("loop", ""))
            if re.search(r"\bbackup_jobs\b|_backup_direct_pg_jobs", loop) and task.get("no_log") is not True:
                offenders.append(f"{path.name}: {task.get('name')}")
    assert offenders == []


@pytest.mark.parametrize("module", sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py")))
def test_module_documentation_loads_in_ansible_doc(module: str) -> None:
    """ansible-doc is how users read a module; a YAML slip in DOCUMENTATION only warns elsewhere."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json", f"promptops.cluster.{module}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)[f"promptops.cluster.{module}"]
    assert doc["doc"]["short_description"]
    assert doc["doc"]["options"]
    assert doc["examples"]
    assert doc["return"] is not None
