"""scripts/molecule_timings.py pairs Molecule's action lines with the timer callback's lines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("molecule_timings", ROOT / "scripts" / "molecule_timings.py")
assert spec is not None
assert spec.loader is not None
molecule_timings = importlib.util.module_from_spec(spec)
sys.modules["molecule_timings"] = molecule_timings
spec.loader.exec_module(molecule_timings)

LOG = """\
\x1b[36mINFO    \x1b[0m \x1b[32mdocker\x1b[0m ➜ \x1b[33mconverge\x1b[0m: Executing
  │ Playbook run took 0 days, 0 hours, 1 minutes, 5 seconds
INFO     docker ➜ idempotence: Executing
  │ Playbook run took 0 days, 0 hours, 0 minutes, 12 seconds
INFO     site ➜ verify: Executing
Playbook run took 0 days, 0 hours, 0 minutes, 30 seconds
Playbook run took 0 days, 0 hours, 0 minutes, 4 seconds
Playbook run took 1 day, 1 hour, 1 minute, 1 second
"""


def test_runs_are_counted_under_the_action_that_started_them() -> None:
    runs = molecule_timings.timings(LOG.splitlines())
    assert runs == {
        ("docker", "converge"): [65],
        ("docker", "idempotence"): [12],
        ("site", "verify"): [30, 4, 90061],
    }


def test_a_log_without_timer_lines_is_reported(tmp_path: Path) -> None:
    log = tmp_path / "test.log"
    log.write_text("INFO     docker ➜ converge: Executing\n")
    assert molecule_timings.main(["molecule_timings.py", str(log)]) == 1
