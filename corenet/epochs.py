"""Training in epochs: run :meth:`NeuralNetwork.train` one epoch at a time and record a History.

Used by :meth:`NeuralNetwork.fit <corenet.network.NeuralNetwork.fit>` and by
``corenet train`` (:mod:`corenet.training`). An epoch is a number of iterations
(batches); the last epoch of a run whose length is not a multiple of it is shorter.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from corenet.evaluation import Evaluation, evaluate_prediction, predict
from corenet.history import EpochMeter, EpochRecord, History

#: iterations per "epoch" for data layers without a fixed training set size
DEFAULT_EPOCH_ITERATIONS = 100


def iterations_per_epoch(data_layer, batch_size: int | None = None) -> int:
    """Batches in one pass over ``data_layer``'s training set (rounded up), else 100."""
    size = getattr(data_layer, "train_size", None)
    batch = batch_size or getattr(data_layer, "batch_size", None)
    if not size or not batch:
        return DEFAULT_EPOCH_ITERATIONS
    return max(1, -(-int(size) // int(batch)))


class EpochLoop:
    """Trains ``net`` epoch by epoch and measures each epoch (see :class:`~corenet.history.EpochRecord`).

    ``on_step(iteration, loss)`` runs after every iteration (``iteration`` counts from
    0 over the whole run, ``loss`` is the batch's loss as ``net.loss`` records it);
    ``on_epoch(record)`` after every epoch, once the test set is measured.
    ``evaluation`` is the test set's :class:`~corenet.evaluation.Evaluation` after the
    last finished epoch.
    """

    def __init__(self, net, per_epoch: int, *, test_set: tuple[np.ndarray, np.ndarray] | None = None,
                 on_step: Callable[[int, float], None] | None = None,
                 on_epoch: Callable[[EpochRecord], None] | None = None) -> None:
        if isinstance(per_epoch, bool) or not isinstance(per_epoch, (int, np.integer)) or per_epoch < 1:
            raise ValueError(f"iterations per epoch must be a positive integer, got {per_epoch!r}")
        self.net = net
        self.per_epoch = int(per_epoch)
        self.test_set = test_set
        self.on_step = on_step
        self.on_epoch = on_epoch
        self.history = History()
        self.evaluation: Evaluation | None = None
        self.completed = 0

    @staticmethod
    def test_set_of(data_layer) -> tuple[np.ndarray, np.ndarray] | None:
        """``data_layer.get_test_set()`` when it has one, else None."""
        getter = getattr(data_layer, "get_test_set", None)
        return getter() if callable(getter) else None

    def run(self, iterations: int) -> History:
        """Train ``iterations`` more iterations in epochs; return the history (also ``self.history``)."""
        target = self.completed + int(iterations)
        while self.completed < target:
            count = min(self.per_epoch, target - self.completed)
            started = time.perf_counter()
            meter = EpochMeter()
            offset = self.completed

            def step(iteration: int, loss: float, meter=meter, offset=offset) -> None:
                self.completed = offset + iteration + 1
                if self.net.last_step is not None:
                    meter.add(self.net.last_step)
                if self.on_step is not None:
                    self.on_step(offset + iteration, loss)

            self.net.train(count, callback=step)
            test_accuracy, test_loss = self._measure_test()
            record = meter.record(len(self.history) + 1, self.completed, time.perf_counter() - started,
                                  test_accuracy, test_loss)
            self.history.append(record)
            if self.on_epoch is not None:
                self.on_epoch(record)
        return self.history

    def _measure_test(self) -> tuple[float | None, float | None]:
        """(accuracy, data loss per sample) on the test set in the testing phase; None where not measurable."""
        if self.test_set is None:
            return None, None
        inputs, labels = self.test_set
        if np.shape(inputs)[0] == 0:
            return None, None
        prediction = predict(self.net, inputs)
        try:
            self.evaluation = evaluate_prediction(prediction, labels)
            accuracy = self.evaluation.accuracy
        except (ValueError, IndexError):  # labels that are not one-hot class rows
            self.evaluation, accuracy = None, None
        try:
            loss = float(self.net.loss_layer.forward(prediction, labels)) / prediction.shape[0]
        except (ValueError, TypeError, ArithmeticError):
            loss = None
        return accuracy, loss
