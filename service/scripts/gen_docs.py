"""Regenerate the README's configuration and metrics tables from the code.

python scripts/gen_docs.py          # rewrite README.md
python scripts/gen_docs.py --check  # exit 1 if README.md is out of date (CI, tests)
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from pathlib import Path

SERVICE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SERVICE_DIR))

from app.core.config import settings_markdown_table  # noqa: E402
from app.core.metrics import metrics_markdown_table  # noqa: E402

README = SERVICE_DIR / "README.md"
BLOCKS = {"settings": settings_markdown_table, "metrics": metrics_markdown_table}


def _between_markers(match: re.Match[str], table: str) -> str:
    return match.group(1) + table + match.group(2)


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(
            rf"(<!-- generated:{name} start -->\n).*?(<!-- generated:{name} end -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise SystemExit(f"README.md lacks the generated:{name} markers")
        text = pattern.sub(functools.partial(_between_markers, table=make()), text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    current = README.read_text(encoding="utf-8")
    wanted = render(current)
    if args.check:
        if current != wanted:
            print("README.md is out of date: run python scripts/gen_docs.py")
            return 1
        return 0
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
