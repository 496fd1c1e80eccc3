"""What do corenet-fast's compiled kernels buy? Time each workload's fast-tier step with and without them.

    python benchmarks/numba_kernels.py                   # W1, W3, W4 in float64 and float32
    python benchmarks/numba_kernels.py -w W4 --dtype float32 --repeats 40 --json numba.json

For every workload it builds two fast-tier cases (``corenet bench``'s, from
:mod:`corenet_bench.corenet_cases`) and PyTorch's, and times them interleaved in
blocks in one process (``corenet_bench.measure.interleaved``): "numba" runs with the
compiled kernels, "numpy" with ``CORENET_FAST_NUMBA=0`` (the NumPy fast path),
switched around each step. The table gives each median and numba/numpy; a kernel is
worth keeping where that ratio is clearly below 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from corenet_bench import corenet_cases, torch_cases
from corenet_bench.environment import blas_threads, machine_info
from corenet_bench.measure import interleaved, summarize
from corenet_bench.runner import load_torch
from corenet_bench.tiers import TierRegistry

from corenet.plugins import get_registry

ENV = "CORENET_FAST_NUMBA"
WORKLOADS = ("W1", "W3", "W4")


def _switched(step, value: str):
    def run():
        os.environ[ENV] = value
        return step()

    return run


def measure(key: str, dtype: str, repeats: int, warmup: int, torch) -> dict:
    """Medians (ms) of the fast tier with and without the compiled kernels, and of PyTorch, interleaved."""
    fast = TierRegistry(get_registry(), "fast")
    steps = {}
    for name, value in (("numba", "1"), ("numpy", "0")):
        os.environ[ENV] = value  # the layers choose their path in forward: build and first step on that path
        steps[name] = _switched(corenet_cases.build(key, dtype, fast).step, value)
    if torch is not None:
        steps["torch"] = torch_cases.build(key, dtype, torch).step
    times = interleaved(steps, repeats, warmup)
    medians = {name: summarize(values)["median_ms"] for name, values in times.items()}
    fastest = {name: summarize(values)["min_ms"] for name, values in times.items()}
    row = {"workload": key, "dtype": dtype, "median_ms": medians, "min_ms": fastest,
           "numba_over_numpy": round(medians["numba"] / medians["numpy"], 3),
           "numba_over_numpy_fastest": round(fastest["numba"] / fastest["numpy"], 3)}
    if torch is not None:
        row["ratio_to_torch"] = {name: round(medians[name] / medians["torch"], 3) for name in ("numba", "numpy")}
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workload", action="append", choices=WORKLOADS, help="repeatable; default: all")
    parser.add_argument("--dtype", default="both", choices=["float64", "float32", "both"])
    parser.add_argument("-r", "--repeats", type=int, default=30, help="timed steps per side (median)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    torch, _ = load_torch(not args.no_torch)
    if torch is not None:
        torch.set_num_threads(blas_threads()[0])
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    previous = os.environ.get(ENV)
    rows = []
    try:
        for key in args.workload or WORKLOADS:
            for dtype in dtypes:
                print(f"{key} {dtype} ...", file=sys.stderr, flush=True)
                rows.append(measure(key, dtype, args.repeats, args.warmup, torch))
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
    print("| workload | dtype | numba ms | numpy ms | PyTorch ms | numba / numpy | (fastest steps) | numba / PyTorch "
          "| numpy / PyTorch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        m, to_torch = row["median_ms"], row.get("ratio_to_torch", {})
        print(f"| {row['workload']} | {row['dtype']} | {m['numba']:.3g} | {m['numpy']:.3g} | "
              f"{m.get('torch', float('nan')):.3g} | {row['numba_over_numpy']:.2f} | "
              f"{row['numba_over_numpy_fastest']:.2f} | "
              f"{to_torch.get('numba', float('nan')):.2f} | {to_torch.get('numpy', float('nan')):.2f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine_info(torch), "rows": rows}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
