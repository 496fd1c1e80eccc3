"""The first thing a newcomer runs: a small Conv network trained on scikit-learn's digits."""

from __future__ import annotations

import time

import numpy as np


def build_digits_network(learning_rate: float = 2e-3):
    """Conv(8 @ 3x3) -> ReLU -> Pooling 2x2 -> Flatten -> FC 128->64 -> ReLU -> FC 64->10 -> SoftMax, Adam, He."""
    from corenet.initializers import Constant, He
    from corenet.layers.activations import ReLU, SoftMax
    from corenet.layers.conv import Conv
    from corenet.layers.flatten import Flatten
    from corenet.layers.fully_connected import FullyConnected
    from corenet.layers.pooling import Pooling
    from corenet.losses import CrossEntropyLoss
    from corenet.network import NeuralNetwork
    from corenet.optimizers import Adam

    net = NeuralNetwork(Adam(learning_rate, 0.9, 0.999), He(), Constant(0.0))
    net.loss_layer = CrossEntropyLoss()
    for layer in (
        Conv((1, 1), (1, 3, 3), 8),
        ReLU(),
        Pooling((2, 2), (2, 2)),
        Flatten(),
        FullyConnected(8 * 4 * 4, 64),
        ReLU(),
        FullyConnected(64, 10),
        SoftMax(),
    ):
        net.append_layer(layer)
    return net


def train_digits(iterations: int = 600, batch_size: int = 64, learning_rate: float = 2e-3, seed: int = 0) -> float:
    """Train on DigitData with a progress bar; print and return the test accuracy."""
    from corenet.data.digits import DigitData
    from corenet.progress import training_progress
    from corenet.testing import calculate_accuracy

    np.random.seed(seed)
    net = build_digits_network(learning_rate)
    net.data_layer = DigitData(batch_size)
    started = time.perf_counter()
    with training_progress(iterations, "digits") as callback:
        net.train(iterations, callback=callback)
    images, labels = net.data_layer.get_test_set()
    accuracy = calculate_accuracy(net.test(images), labels)
    print(f"test accuracy: {accuracy:.2%} on {len(labels)} held-out digits "
          f"({iterations} iterations, {time.perf_counter() - started:.1f} s)")
    return accuracy
