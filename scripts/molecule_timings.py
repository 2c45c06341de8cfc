#!/usr/bin/env python3
"""Print the wall time of each Molecule action's playbook runs from a `make test` log.

`make test` enables Ansible's timer callback, so every ansible-playbook run ends with a line
"Playbook run took 0 days, 0 hours, 0 minutes, 41 seconds". Molecule announces each action as
"<scenario> ➜ <action>: Executing". This pairs the two:

    make test 2>&1 | tee test.log
    scripts/molecule_timings.py test.log

The `idempotence` row of a scenario is its no-op re-run. Runs that a scenario's verify step
starts itself (the tagged runs of `site`, say) count under `verify`.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ACTION = re.compile(r"(?P<scenario>[\w.-]+) ➜ (?P<action>[\w-]+): Executing")
TOOK = re.compile(r"Playbook run took (\d+) days?, (\d+) hours?, (\d+) minutes?, (\d+) seconds?")


def timings(lines: list[str]) -> dict[tuple[str, str], list[int]]:
    current: tuple[str, str] | None = None
    runs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for raw in lines:
        line = ANSI.sub("", raw)
        if match := ACTION.search(line):
            current = (match["scenario"], match["action"])
        elif (match := TOOK.search(line)) and current is not None:
            days, hours, minutes, seconds = (int(g) for g in match.groups())
            runs[current].append(((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    return runs


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} LOG", file=sys.stderr)
        return 2
    runs = timings(Path(argv[1]).read_text(errors="replace").splitlines())
    if not runs:
        print("no timed playbook runs found (was the log written by `make test`?)", file=sys.stderr)
        return 1
    print(f"{'scenario':<16} {'action':<12} {'runs':>4} {'seconds':>8}")
    for (scenario, action), seconds in runs.items():
        print(f"{scenario:<16} {action:<12} {len(seconds):>4} {sum(seconds):>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
