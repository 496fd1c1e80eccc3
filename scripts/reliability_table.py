"""Print (or --write, or --check) the error table of docs/reference/errors.md from tests/test_reliability_table.py.

Every row is produced by running its case and capturing the message a user sees,
so the table always shows the framework's real errors:

    python scripts/reliability_table.py            # print the markdown
    python scripts/reliability_table.py --write    # update the table in docs/reference/errors.md
    python scripts/reliability_table.py --check    # exit 1 if that section is stale
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES_FILE = ROOT / "tests" / "test_reliability_table.py"


def load_cases_module():
    """Import the test module by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("corenet_reliability_cases", CASES_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the table in docs/reference/errors.md")
    group.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    module = load_cases_module()
    table = module.render_table()
    if args.write:
        page = module.ERRORS_PAGE.read_text()
        temporary = module.ERRORS_PAGE.with_suffix(".md.tmp")
        temporary.write_text(module.with_section(page, table))
        os.replace(temporary, module.ERRORS_PAGE)  # never leave a half-written page
        print(f"wrote {module.ERRORS_PAGE} ({len(module.CASES)} cases)")
        return 0
    if args.check:
        if module.table_section(module.ERRORS_PAGE.read_text()) != table:
            print("docs/reference/errors.md is out of date: run python scripts/reliability_table.py "
                  "--write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
