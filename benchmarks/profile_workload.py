"""Profile corenet's step of one workload with cProfile and print where the time goes.

    python benchmarks/profile_workload.py W6                    # float64, 20 steps
    python benchmarks/profile_workload.py W1 --dtype float32 --steps 10 --top 25
    python benchmarks/profile_workload.py W1 --layers     # median forward/backward time per layer

Only corenet's side runs (no PyTorch). The table lists functions by their own
time (tottime) with their share of the total, then by cumulative time. With
--layers (W1 only) each layer's forward and backward are timed instead, without cProfile.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import statistics
import sys
import time

from corenet_bench import corenet_cases
from corenet_bench.suite import parse_workloads

from corenet.network import _without_input_gradient
from corenet.plugins import get_registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", help="W1 ... W6")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--steps", type=int, default=20, help="profiled steps (after 2 warm-up steps)")
    parser.add_argument("--top", type=int, default=15, help="rows per table")
    parser.add_argument("--layers", action="store_true", help="time each layer of the network (W1)")
    args = parser.parse_args(argv)
    (key,) = parse_workloads([args.workload])
    if key == "W7":
        parser.error("W7 is process start-up; profile it with `python -X importtime -m corenet --help`")
    case = corenet_cases.build(key, args.dtype, get_registry())
    if args.layers:
        if not hasattr(case.subject, "layers"):
            parser.error("--layers needs a network workload (W1)")
        return _per_layer(case.subject, args.steps)
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


def _per_layer(net, steps: int) -> int:
    """Median forward and backward milliseconds of every layer over ``steps`` training steps."""
    forward = [[] for _ in net.layers]
    backward = [[] for _ in net.layers]
    for _ in range(steps + 2):
        tensor, labels = net.data_layer.next()
        for position, layer in enumerate(net.layers):
            start = time.perf_counter()
            tensor = layer.forward(tensor)
            forward[position].append(time.perf_counter() - start)
        net.loss_layer.forward(tensor, labels)
        error = net.loss_layer.backward(labels)
        for position in range(len(net.layers) - 1, -1, -1):
            # as NeuralNetwork.backward: the first layer may skip its unused input gradient
            skip = _without_input_gradient if position == 0 else contextlib.nullcontext
            with skip(net.layers[position]):
                start = time.perf_counter()
                error = net.layers[position].backward(error)
                backward[position].append(time.perf_counter() - start)
    rows = [(repr(layer), statistics.median(f[2:]) * 1e3, statistics.median(b[2:]) * 1e3)
            for layer, f, b in zip(net.layers, forward, backward)]
    total = sum(f + b for _, f, b in rows)
    print(f"{'layer':<34} {'forward ms':>10} {'backward ms':>11} {'share':>6}")
    for name, f, b in rows:
        print(f"{name:<34} {f:10.3f} {b:11.3f} {(f + b) / total:6.1%}")
    print(f"{'sum of medians':<34} {sum(r[1] for r in rows):10.3f} {sum(r[2] for r in rows):11.3f}")
    return 0


def _short(filename: str) -> str:
    parts = filename.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


if __name__ == "__main__":
    sys.exit(main())
