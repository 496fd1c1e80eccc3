"""Run the corenet benchmark suite (W1-W7) against PyTorch CPU; the same as `corenet bench`.

    python benchmarks/run.py                      # everything, float64 and float32
    python benchmarks/run.py -w W1 -w W6 --dtype float64 --repeats 20 --json results.json

To see the effect of OpenBLAS environment variables, run it once as is and once
with them unset for that command alone, e.g.
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py --json unset.json``;
the JSON records the variables each run saw.
"""

from __future__ import annotations

import argparse
import sys

from corenet.bench import WORKLOAD_KEYS, run_and_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workload", action="append",
                        help=f"one of {', '.join(WORKLOAD_KEYS)} (repeatable; default all)")
    parser.add_argument("-r", "--repeats", type=int, default=10, help="timed steps per workload (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--dtype", default="both", help="float64, float32 or both (default)")
    parser.add_argument("--json", dest="json_path", help="write machine-readable results to this file")
    parser.add_argument("--no-torch", action="store_true", help="measure corenet only")
    parser.add_argument("--threads", type=int, help="limit NumPy's BLAS and PyTorch to this many threads")
    args = parser.parse_args(argv)
    try:
        run_and_report(args.workload, args.dtype, args.repeats, args.warmup, args.json_path,
                       use_torch=not args.no_torch, threads=args.threads)
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
