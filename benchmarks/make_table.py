"""Turn a benchmark JSON file (from `corenet bench --json` or run.py) into the README's markdown table.

    python benchmarks/make_table.py results.json              # print the markdown
    python benchmarks/make_table.py results.json -o table.md  # write it to a file
    python benchmarks/make_table.py run1.json run2.json run3.json   # also issue 12's worst-of-N table
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from corenet_bench.report import markdown_report, worst_of_table
from corenet_bench.runner import SCHEMA


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="JSON written by `corenet bench --json FILE`")
    parser.add_argument("-o", "--output", type=Path, help="write the markdown here instead of printing it")
    args = parser.parse_args(argv)
    runs = []
    for path in args.results:
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            parser.error(f"cannot read {path}: {exc}")
        if not isinstance(results, dict) or results.get("schema") != SCHEMA:
            parser.error(f"{path} is not a corenet benchmark result (schema {SCHEMA})")
        runs.append(results)
    table = "\n".join(markdown_report(results) for results in runs)
    if len(runs) > 1:
        table += "\n" + worst_of_table(runs)
    if args.output is None:
        sys.stdout.write(table)
    else:
        args.output.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
