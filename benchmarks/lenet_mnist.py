"""LeNet on MNIST from IDX files: test accuracy after every epoch, and wall time.

    python benchmarks/lenet_mnist.py [--data FOLDER] [--epochs N] [--json FILE]

Trains exactly what ``corenet train lenet-mnist --data FOLDER`` trains (same config,
seed and batches) one epoch at a time, evaluating on the test part after each. With
only the official t10k files in FOLDER (the default, ../shared/data/mnist), it trains
on the first 8,000 images and tests on the last 2,000.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from corenet.config import load_config
from corenet.epochs import iterations_per_epoch
from corenet.evaluation import evaluate
from corenet.training import prepare

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the config's)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default: the config's)")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the config's)")
    parser.add_argument("--json", type=Path, default=None, help="write the per-epoch results here")
    options = parser.parse_args()
    started = time.perf_counter()
    overrides = {"data.args.path": str(options.data)}
    if options.batch_size:
        overrides["training.batch_size"] = options.batch_size
    if options.seed is not None:
        overrides["seed"] = options.seed
    config = load_config("lenet-mnist", overrides)
    net, data = prepare(config)
    epochs = options.epochs or int(config.epochs)
    per_epoch = iterations_per_epoch(data, config.batch_size)
    inputs, labels = data.get_test_set()
    print(f"LeNet on {options.data}: {data.train_size} train / {data.test_size} test images, "
          f"batch {config.batch_size}, {per_epoch} iterations per epoch")
    rows, training = [], 0.0
    for epoch in range(1, epochs + 1):
        tick = time.perf_counter()
        net.train(per_epoch)
        training += time.perf_counter() - tick
        accuracy = evaluate(net, inputs, labels).accuracy
        rows.append({"epoch": epoch, "test_accuracy": accuracy, "train_seconds": round(training, 1),
                     "wall_seconds": round(time.perf_counter() - started, 1)})
        print(f"epoch {epoch:2d}: test accuracy {accuracy:.2%}  (training {training:.0f} s, "
              f"wall {time.perf_counter() - started:.0f} s)", flush=True)
    if options.json:
        options.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
