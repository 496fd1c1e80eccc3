"""Issue 12's end-to-end row: LeNet on the MNIST 8k/2k split, same recipe and epochs, corenet vs PyTorch.

    python benchmarks/lenet_mnist_vs_torch.py --data FOLDER [--dtype float32] [--epochs N] [--json FILE]

corenet trains the ``lenet-mnist`` config (the tier the registry selects: corenet-fast
when installed, ``CORENET_IMPL=reference`` for the textbook layers); PyTorch trains
the same network (``corenet_bench.torch_cases.lenet_module``) with the same recipe
(Adam 5e-4 with L2 4e-4 as AdamW's weight decay, cross entropy summed over the batch,
He-initialised as PyTorch initialises, batch 16) on the very same batches, drawn by a
second data layer that repeats corenet's seeded order. Each side's wall time covers
its training iterations only; both report the test accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from corenet_bench.environment import blas_threads, machine_info
from corenet_bench.torch_cases import lenet_module

from corenet.config import load_config
from corenet.epochs import iterations_per_epoch
from corenet.evaluation import evaluate
from corenet.training import prepare


def train_corenet(config, iterations: int) -> tuple[float, float]:
    net, data = prepare(config)
    started = time.perf_counter()
    net.train(iterations)
    seconds = time.perf_counter() - started
    inputs, labels = data.get_test_set()
    return seconds, evaluate(net, inputs, labels).accuracy


def train_torch(torch, config, iterations: int, dtype: str) -> tuple[float, float]:
    _, data = prepare(config)  # the same seed: the same batches in the same order as corenet's run
    torch.manual_seed(0)
    model = lenet_module(torch, getattr(torch, dtype))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=4e-4)
    loss_function = torch.nn.CrossEntropyLoss(reduction="sum")
    started = time.perf_counter()
    for _ in range(iterations):
        inputs, labels = data.next()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=dtype))),
                             torch.from_numpy(labels.argmax(axis=1)))
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    test_inputs, test_labels = data.get_test_set()
    with torch.no_grad():
        predicted = model(torch.from_numpy(np.ascontiguousarray(test_inputs, dtype=dtype))).argmax(dim=1).numpy()
    return seconds, float(np.mean(predicted == test_labels.argmax(axis=1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of MNIST IDX files")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--epochs", type=float, default=None, help="epochs (default: the config's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        parser.exit(2, "PyTorch is not installed (pip install './plugins/bench[torch]')\n")
    torch.set_num_threads(blas_threads()[0])
    config = load_config("lenet-mnist", {"data.args.path": str(args.data), "dtype": args.dtype})
    epochs = args.epochs or float(config.epochs)
    _, probe = prepare(config)
    iterations = round(epochs * iterations_per_epoch(probe, config.batch_size))
    print(f"{iterations} iterations of batch {config.batch_size} ({epochs:g} epochs), {args.dtype}", flush=True)
    load = os.getloadavg()
    corenet_seconds, corenet_accuracy = train_corenet(config, iterations)
    print(f"corenet: {corenet_seconds:.1f} s, test accuracy {corenet_accuracy:.2%}", flush=True)
    torch_seconds, torch_accuracy = train_torch(torch, config, iterations, args.dtype)
    print(f"PyTorch: {torch_seconds:.1f} s, test accuracy {torch_accuracy:.2%}")
    ratio = corenet_seconds / torch_seconds
    print(f"corenet / PyTorch wall time: {ratio:.2f} (target <= 0.8); load average at start {load[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine_info(torch), "dtype": args.dtype, "iterations": iterations,
            "implementation": os.environ.get("CORENET_IMPL") or "selected",
            "corenet": {"seconds": round(corenet_seconds, 2), "accuracy": corenet_accuracy},
            "torch": {"seconds": round(torch_seconds, 2), "accuracy": torch_accuracy},
            "ratio": round(ratio, 3)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
