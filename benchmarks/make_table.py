"""Turn a benchmark JSON file (from `corenet bench --json` or run.py) into the README's markdown table.

    python benchmarks/make_table.py results.json              # print the markdown
    python benchmarks/make_table.py results.json -o table.md  # write it to a file
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from corenet_bench.report import markdown_report
from corenet_bench.runner import SCHEMA


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON written by `corenet bench --json FILE`")
    parser.add_argument("-o", "--output", type=Path, help="write the markdown here instead of printing it")
    args = parser.parse_args(argv)
    try:
        results = json.loads(args.results.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        parser.error(f"cannot read {args.results}: {exc}")
    if not isinstance(results, dict) or results.get("schema") != SCHEMA:
        parser.error(f"{args.results} is not a corenet benchmark result (schema {SCHEMA})")
    table = markdown_report(results)
    if args.output is None:
        sys.stdout.write(table)
    else:
        args.output.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
