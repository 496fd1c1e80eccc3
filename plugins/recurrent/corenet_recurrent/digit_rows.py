"""Digits read row by row: an RNN or LSTM classifies scikit-learn's 8x8 digits from their rows.

Each image is one sequence of 8 time steps of 8 features (its pixel rows, scaled to
[0, 1]). The network is ``RNN/LSTM(8, hidden, hidden) -> FullyConnected(hidden, 10) ->
SoftMax`` with cross-entropy against the image's label at every step, so every step
learns to guess from the rows read so far; the prediction is the last step's. The
course's recurrent layers treat the batch axis as time, so each update sees one image.
Adam's learning rate follows a cosine from ``learning_rate`` to a twentieth of it.
The train/test split is DigitData's (1198 / 599 images, stratified, fixed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from corenet.data.digits import DigitData
from corenet.initializers import Constant, He
from corenet.layers.activations import SoftMax
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Adam
from corenet.shapes import positive_int, real_number
from corenet_recurrent.lstm import LSTM
from corenet_recurrent.rnn import RNN
from corenet_recurrent.schedule import cosine_decay

CELLS = {"rnn": RNN, "lstm": LSTM}
ROWS = COLUMNS = 8
CLASSES = 10


@dataclass
class RowsConfig:
    """Which cell, its size and the training budget (one epoch = every training image once)."""

    cell: str = "lstm"
    hidden_size: int = 32
    epochs: int = 20
    learning_rate: float = 0.003
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        self.hidden_size = positive_int("hidden_size", self.hidden_size)
        self.epochs = positive_int("epochs", self.epochs)
        self.learning_rate = real_number("learning_rate", self.learning_rate, low=0.0, low_inclusive=False)


@dataclass
class RowsResult:
    """Per-epoch mean loss per row and held-out accuracy, the trained network and the run time."""

    config: RowsConfig
    network: NeuralNetwork | None = None
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    train_seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        """Held-out accuracy after the last epoch."""
        return self.accuracies[-1] if self.accuracies else float("nan")


class DigitRows:
    """Data layer: ``next()`` gives one training image as (8, 8) rows and its (8, 10) one-hot label
    repeated for every row. The order is DigitData's (batch size 1): a fresh ``np.random``
    permutation each epoch, every image once per epoch."""

    def __init__(self) -> None:
        self._digits = DigitData(1)
        images, self.train_label = self._digits.get_train_set()
        self.train_input = images.reshape(-1, ROWS, COLUMNS)
        images, self.test_label = self._digits.get_test_set()
        self.test_input = images.reshape(-1, ROWS, COLUMNS)

    @property
    def train_size(self) -> int:
        return self._digits.train_size

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        image, label = self._digits.next()  # (1, 1, 8, 8), (1, 10)
        return image.reshape(ROWS, COLUMNS), np.repeat(label, ROWS, axis=0)


def training_steps(config: RowsConfig, data: DigitRows | None = None) -> int:
    """Updates a run makes: one per training image and epoch."""
    return config.epochs * (data or DigitRows()).train_size


def build_network(config: RowsConfig) -> NeuralNetwork:
    """RNN/LSTM(8, hidden, hidden) -> FullyConnected(hidden, 10) -> SoftMax, Adam, cross-entropy."""
    network = NeuralNetwork(Adam(config.learning_rate, 0.9, 0.999), He(), Constant(0.0))
    network.append_layer(CELLS[config.cell](COLUMNS, config.hidden_size, config.hidden_size))
    network.append_layer(FullyConnected(config.hidden_size, CLASSES))
    network.append_layer(SoftMax())
    network.loss_layer = CrossEntropyLoss()
    return network


def accuracy(network: NeuralNetwork, sequences: np.ndarray, labels: np.ndarray) -> float:
    """Share of (n, 8, 8) sequences whose last step's prediction matches the (n, 10) one-hot label."""
    hits = sum(int(np.argmax(network.test(rows)[-1]) == np.argmax(label)) for rows, label in zip(sequences, labels))
    return hits / len(sequences)


def learning_rate_at(config: RowsConfig, epoch: int) -> float:
    """Cosine decay from ``learning_rate`` to a twentieth of it over the epochs."""
    return cosine_decay(config.learning_rate, epoch, config.epochs)


def train_digit_rows(
    config: RowsConfig,
    on_epoch: Callable[[int, float, float], None] | None = None,
    on_step: Callable[[], None] | None = None,
    data: DigitRows | None = None,
) -> RowsResult:
    """Seed NumPy's generator, train, and measure held-out accuracy after every epoch.

    ``on_epoch(epoch, mean loss per row, held-out accuracy)`` runs after each epoch,
    ``on_step()`` after every update (progress bars). ``train_seconds`` covers the
    training and the per-epoch test passes. ``data`` defaults to a fresh :class:`DigitRows`.
    """
    np.random.seed(config.seed)
    data = data or DigitRows()  # its order is drawn from np.random during training, after the seed
    network = build_network(config)
    network.data_layer = data
    result = RowsResult(config, network=network)
    callback = None if on_step is None else (lambda iteration, loss: on_step())
    started = time.perf_counter()
    for epoch in range(config.epochs):
        rate = learning_rate_at(config, epoch)
        for layer in network.layers:
            if layer.trainable:
                for name in layer.parameter_names:
                    layer.parameter_optimizer(name).learning_rate = rate
        network.train(data.train_size, callback)
        result.losses.append(float(np.mean(network.loss[-data.train_size:])) / ROWS)
        result.accuracies.append(accuracy(network, data.test_input, data.test_label))
        if on_epoch is not None:
            on_epoch(epoch, result.losses[-1], result.accuracies[-1])
    result.train_seconds = time.perf_counter() - started
    return result
