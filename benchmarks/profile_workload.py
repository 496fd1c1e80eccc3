"""Profile corenet's step of one workload with cProfile and print where the time goes.

    python benchmarks/profile_workload.py W6                    # float64, 20 steps
    python benchmarks/profile_workload.py W1 --dtype float32 --steps 10 --top 25

Only corenet's side runs (no PyTorch). The table lists functions by their own
time (tottime) with their share of the total, then by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys

from corenet.bench import corenet_cases, parse_workloads
from corenet.plugins import get_registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", help="W1 ... W6")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--steps", type=int, default=20, help="profiled steps (after 2 warm-up steps)")
    parser.add_argument("--top", type=int, default=15, help="rows per table")
    args = parser.parse_args(argv)
    (key,) = parse_workloads([args.workload])
    if key == "W7":
        parser.error("W7 is process start-up; profile it with `python -X importtime -m corenet --help`")
    case = corenet_cases.build(key, args.dtype, get_registry())
    for _ in range(2):
        case.step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.steps):
        case.step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    per_step = total / args.steps * 1e3
    print(f"{key} {args.dtype}: {per_step:.2f} ms per step under cProfile ({args.steps} steps)")
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[: args.top]
    print(f"\n{'own ms/step':>12} {'share':>6} {'calls/step':>10}  function")
    for (filename, line, name), (_, calls, own, _cumulative, _) in rows:
        print(f"{own / args.steps * 1e3:12.3f} {own / total:6.1%} {calls / args.steps:10.1f}  "
              f"{name} ({_short(filename)}:{line})")
    print()
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


def _short(filename: str) -> str:
    parts = filename.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


if __name__ == "__main__":
    sys.exit(main())
