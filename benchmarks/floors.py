"""How close can plain NumPy get? Time the unavoidable NumPy work of W1, W4 and W6 beside PyTorch.

    python benchmarks/floors.py                    # W1, W4, W6 in float64 and float32
    python benchmarks/floors.py -w W4 --dtype float64 --repeats 60 --json floors.json

A *floor* is the NumPy work a step cannot do without, run on preallocated
buffers with nothing else: no checks, no allocation, no optimizer, no layout
copies between layers. If the floor alone is slower than the target allows, no
plain-NumPy implementation of that computation meets the target on this machine;
the report says so per workload. Each floor is timed interleaved with corenet's
and PyTorch's step of the same workload (see ``corenet_bench.measure``).

- **W4 BatchNormalization** (training mode, (64, 16, 14, 14) viewed as (b, c, y·x)):
  forward needs per-channel Σx and Σx² and the output x·a + b (two ufunc calls:
  NumPy has no fused multiply-add); backward needs per-channel ΣE and ΣE·x and the
  input gradient f·(E − (a'·x + b')) (four ufunc calls). Sums use ``np.einsum`` (the
  fastest per-channel reduction we found, with ``x @ ones`` and ``np.vecdot`` no
  faster); the elementwise chains run in cache-sized row blocks. With numba installed,
  "kernels" times corenet-fast's two compiled BatchNormalization kernels alone on
  preallocated buffers: the floor of a one-thread compiled step.
- **W6 Conv** (im2col method): the three matrix products (output, weight gradient,
  input gradient) alone ("GEMMs"), and with the im2col copy and the col2im
  additions they need ("GEMMs + im2col").
- **W1 LeNet**: the matrix products of every Conv and FullyConnected layer (forward,
  weight gradient, and input gradient except for the first layer), alone and with
  both layers' im2col copies and the second Conv's col2im ("floor"). "floor+" adds
  the elementwise work with the fewest NumPy calls we know — both ReLUs (maximum,
  mask, masked error), both 2x2 poolings (maxima of column pairs, then of row pairs;
  error routed back through equality masks) and an in-place Adam step per parameter
  tensor — timed as a step of its own, so its arrays stay warm in the cache (a lower
  bound: inside a network they are not). Not included: SoftMax, loss, L2, layout copies.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import numpy as np
from corenet_bench import corenet_cases, torch_cases
from corenet_bench import workloads as wl
from corenet_bench.environment import blas_threads, machine_info
from corenet_bench.measure import interleaved, summarize
from corenet_bench.runner import load_torch
from numpy.lib.stride_tricks import sliding_window_view

from corenet.plugins import get_registry

Step = Callable[[], object]
BLOCK_ELEMENTS = 1 << 15  # as corenet_fast.batchnorm_sums: a block's arrays stay in the L2 cache


def _random(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def batchnorm_floor(dtype: np.dtype, rng: np.random.Generator) -> dict[str, Step]:
    """W4: the reductions and elementwise chains of one training step (see the module docstring)."""
    b, c, y, x = wl.BATCHNORM_SHAPE
    data, error = _random((b, c, y * x), dtype, rng), _random((b, c, y * x), dtype, rng)
    slope, offset, factor = (_random((c, y * x), dtype, rng) for _ in range(3))  # per channel, expanded
    out, gradient = np.empty_like(data), np.empty_like(data)
    rows = max(1, BLOCK_ELEMENTS // (c * y * x))
    blocks = [slice(start, start + rows) for start in range(0, b, rows)]

    def step() -> None:
        np.einsum("bcn->c", data)
        np.einsum("bcn,bcn->c", data, data)
        for part in blocks:
            np.multiply(data[part], slope, out=out[part])
            out[part] += offset
        np.einsum("bcn->c", error)
        np.einsum("bcn,bcn->c", error, data)
        for part in blocks:
            block = gradient[part]
            np.multiply(data[part], slope, out=block)
            block += offset
            np.subtract(error[part], block, out=block)
            block *= factor

    steps = {"floor": step}
    compiled = _compiled_batchnorm(data, error)
    if compiled is not None:
        steps["kernels"] = compiled
    return steps


def _compiled_batchnorm(data: np.ndarray, error: np.ndarray) -> Step | None:
    """corenet-fast's compiled forward and backward kernels on preallocated buffers, or None without numba."""
    try:
        from corenet_fast.numba import kernels
    except ImportError:
        return None
    compiled = kernels("batchnorm")
    if compiled is None:
        return None
    c = data.shape[1]
    gamma, beta = np.ones(c), np.zeros(c)
    out, gradient = np.empty_like(data), np.empty_like(data)
    mean, variance, d_gamma, d_beta = (np.empty(c) for _ in range(4))

    def step() -> None:
        compiled.train_forward(data, gamma, beta, 1e-11, out, mean, variance)
        compiled.backward(error, data, mean, 1.0 / np.sqrt(variance + 1e-11), gamma, True, gradient, d_gamma, d_beta)

    return step


class _ConvParts:
    """Preallocated im2col-method pieces of one 'same' Conv with stride 1 (batch-last images, as corenet)."""

    def __init__(self, batch: int, channels: int, kernels: int, size: int, m: int,
                 dtype: np.dtype, rng: np.random.Generator) -> None:
        padded = size + m - 1
        self.columns = size * size * batch
        rows = channels * m * m
        self.image = _random((channels, padded, padded, batch), dtype, rng)
        self.windows = sliding_window_view(self.image, (m, m), axis=(1, 2)).transpose(0, 4, 5, 1, 2, 3)
        self.cols = np.empty((rows, self.columns), dtype)
        self.cols_view = self.cols.reshape(channels, m, m, size, size, batch)
        self.weights = _random((kernels, rows), dtype, rng)
        self.error = _random((kernels, self.columns), dtype, rng)
        self.output = np.empty((kernels, self.columns), dtype)
        self.contributions = np.empty((rows, self.columns), dtype)
        self.contributions_view = self.contributions.reshape(m, m, channels, size, size, batch)
        self.gradient = np.zeros_like(self.image)
        self.m, self.size = m, size
        self.im2col()  # real numbers in every operand: garbage could hold NaNs or subnormals, which time differently
        self.gemms(True)

    def gemms(self, input_gradient: bool) -> None:
        np.matmul(self.weights, self.cols, out=self.output)
        self.weight_gradient = (self.cols @ self.error.T).T  # corenet's faster orientation
        if input_gradient:
            np.matmul(self.weights.T, self.error, out=self.contributions)

    def im2col(self) -> None:
        self.cols_view[...] = self.windows

    def col2im(self) -> None:
        self.gradient.fill(0)
        for i in range(self.m):
            for j in range(self.m):
                self.gradient[:, i:i + self.size, j:j + self.size] += self.contributions_view[i, j]


def conv_floor(dtype: np.dtype, rng: np.random.Generator) -> dict[str, Step]:
    """W6: one Conv's GEMMs, alone and with im2col and col2im."""
    batch, channels, size, _ = wl.CONV_INPUT
    kernels, m, _ = wl.CONV_KERNELS
    conv = _ConvParts(batch, channels, kernels, size, m, dtype, rng)

    def with_copies() -> None:
        conv.im2col()
        conv.gemms(True)
        conv.col2im()

    return {"GEMMs": lambda: conv.gemms(True), "floor": with_copies}


def lenet_floor(dtype: np.dtype, rng: np.random.Generator) -> dict[str, Step]:
    """W1: every layer's GEMMs, alone and with the Convs' im2col and the second Conv's col2im."""
    batch = wl.LENET_BATCH
    conv1 = _ConvParts(batch, 1, 6, 28, 5, dtype, rng)
    conv2 = _ConvParts(batch, 6, 16, 14, 5, dtype, rng)
    dense = []
    for fan_in, fan_out in ((784, 120), (120, 84), (84, 10)):
        dense.append((_random((batch, fan_in), dtype, rng), _random((fan_in, fan_out), dtype, rng),
                      _random((batch, fan_out), dtype, rng)))

    def gemms() -> None:
        conv1.gemms(False)  # the first layer's input gradient is not needed
        conv2.gemms(True)
        for x, w, e in dense:
            x @ w
            x.T @ e
            e @ w.T

    def with_copies() -> None:
        conv1.im2col()
        conv2.im2col()
        gemms()
        conv2.col2im()

    relus = [_Relu((batch, 6, 28, 28), dtype, rng), _Relu((batch, 16, 14, 14), dtype, rng)]
    pools = [_Pool((batch, 6, 28, 28), dtype, rng), _Pool((batch, 16, 14, 14), dtype, rng)]
    shapes = [(6, 25), (6,), (16, 150), (16,), (785, 120), (121, 84), (85, 10)]
    adams = [_Adam(shape, dtype, rng) for shape in shapes]

    def elementwise() -> None:
        for part in (*relus, *pools, *adams):
            part()

    return {"GEMMs": gemms, "floor": with_copies, "elementwise": elementwise}


class _Relu:
    """ReLU forward (output and mask) and backward (error times mask) on preallocated arrays."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> None:
        self.x, self.error = _random(shape, dtype, rng), _random(shape, dtype, rng)
        self.out, self.mask = np.empty(shape, dtype), np.empty(shape, bool)

    def __call__(self) -> None:
        np.maximum(self.x, 0, out=self.out)
        np.greater(self.x, 0, out=self.mask)
        np.multiply(self.error, self.mask, out=self.out)


class _Pool:
    """2x2/2 max pooling: maxima of column pairs then of row pairs (the cheapest order we found), and the
    error routed back to each of the four strided sub-images through an equality mask (ties not broken)."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> None:
        b, c, y, x = shape
        self.x = _random(shape, dtype, rng)
        self.views = [self.x[:, :, u::2, v::2] for u in range(2) for v in range(2)]
        self.pairs = np.empty((b, c, y, x // 2), dtype)
        self.out, self.error = np.empty((b, c, y // 2, x // 2), dtype), _random((b, c, y // 2, x // 2), dtype, rng)
        self.hit = np.empty(self.out.shape, bool)
        self.gradient = np.empty(shape, dtype)
        self.targets = [self.gradient[:, :, u::2, v::2] for u in range(2) for v in range(2)]

    def __call__(self) -> None:
        np.maximum(self.x[..., ::2], self.x[..., 1::2], out=self.pairs)
        np.maximum(self.pairs[:, :, ::2], self.pairs[:, :, 1::2], out=self.out)
        for view, target in zip(self.views, self.targets):
            np.multiply(self.error, np.equal(view, self.out, out=self.hit), out=target)


class _Adam:
    """One Adam step with L2 shrinkage in place: the eight ufunc calls of the formulas."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> None:
        self.w, self.g = _random(shape, dtype, rng), _random(shape, dtype, rng)
        self.m, self.r = np.zeros(shape, dtype), np.ones(shape, dtype)
        self.a, self.b = np.empty(shape, dtype), np.empty(shape, dtype)

    def __call__(self) -> None:
        self.m *= 0.9
        self.m += np.multiply(self.g, 0.1, out=self.a)
        self.r *= 0.999
        self.r += np.multiply(np.square(self.g, out=self.b), 0.001, out=self.b)
        np.sqrt(self.r, out=self.b)
        self.b += 1e-8
        np.divide(self.m, self.b, out=self.a)
        self.w -= self.a


FLOORS = {"W1": lenet_floor, "W4": batchnorm_floor, "W6": conv_floor}


def measure(key: str, dtype: str, repeats: int, warmup: int, torch) -> dict:
    """Medians of corenet's step, PyTorch's step and the floor(s), interleaved; ratios to PyTorch."""
    steps: dict[str, Step] = {"corenet": corenet_cases.build(key, dtype, get_registry()).step}
    steps["torch"] = torch_cases.build(key, dtype, torch).step
    steps.update(FLOORS[key](np.dtype(dtype), np.random.default_rng(0)))
    times = interleaved(steps, repeats, warmup)
    medians = {name: summarize(values)["median_ms"] for name, values in times.items()}
    if "elementwise" in medians:  # timed as a step of its own: its arrays stay warm, a lower bound
        medians["floor+"] = medians["floor"] + medians["elementwise"]
    target = wl.WORKLOADS[key].targets.get(dtype)
    row = {"workload": key, "dtype": dtype, "target": target, "median_ms": medians,
           "ratio_to_torch": {name: round(value / medians["torch"], 3) for name, value in medians.items()}}
    floor = medians.get("floor+", medians["floor"])  # the most complete floor measured
    if target is not None:
        budget = target * medians["torch"]
        row["budget_ms"] = round(budget, 3)
        row["floor_fits_target"] = floor <= budget
        row["left_under_target_ms"] = round(budget - floor, 3)
    return row


def markdown(rows: list[dict], machine: dict) -> str:
    lines = [
        f"Measured on {machine['cpu']}, {machine['logical_cores']} logical cores, {machine['date']}; "
        f"NumPy {machine['numpy']} ({machine['blas']}, {machine['numpy_blas_threads']} BLAS threads); "
        f"PyTorch {machine['torch']} ({machine['torch_threads']} threads).",
        "",
        "| workload | dtype | PyTorch ms | corenet ms | GEMMs ms | floor ms | floor+ ms | floor / PyTorch "
        "| compiled kernels ms | target | floor within target? | ms left for the rest |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for row in rows:
        ms, ratios = row["median_ms"], row["ratio_to_torch"]
        target = row["target"]
        fits = "-" if target is None else ("yes" if row["floor_fits_target"] else "**no**")
        left = "-" if target is None else f"{row['left_under_target_ms']:.2f}"
        lines.append(
            f"| {row['workload']} | {row['dtype']} | {ms['torch']:.2f} | {ms['corenet']:.2f} | {_ms(ms, 'GEMMs')} | "
            f"{ms['floor']:.2f} | {_ms(ms, 'floor+')} | {ratios.get('floor+', ratios['floor']):.2f} | "
            f"{_ms(ms, 'kernels')} | {'-' if target is None else f'<= {target:g}'} | {fits} | {left} |")
    return "\n".join(lines)


def _ms(medians: dict, name: str) -> str:
    return f"{medians[name]:.2f}" if name in medians else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workload", action="append", choices=sorted(FLOORS),
                        help="W1, W4 or W6 (repeatable; default: all three)")
    parser.add_argument("--dtype", default="both", choices=["float64", "float32", "both"])
    parser.add_argument("-r", "--repeats", type=int, default=40, help="timed steps per side (median)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    torch, missing = load_torch()
    if torch is None:
        parser.exit(2, f"floors.py compares against PyTorch: {missing}\n")
    torch.set_num_threads(blas_threads()[0])  # as corenet bench: PyTorch gets NumPy's BLAS threads
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    rows = []
    for key in args.workload or sorted(FLOORS):
        for dtype in dtypes:
            print(f"{key} {dtype} ...", file=sys.stderr, flush=True)
            rows.append(measure(key, dtype, args.repeats, args.warmup, torch))
    machine = machine_info(torch)
    print(markdown(rows, machine))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine, "rows": rows}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
