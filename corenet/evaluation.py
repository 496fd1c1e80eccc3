"""Accuracy and confusion matrix of a network on a labelled set, predicted in batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Evaluation:
    """``confusion[i, j]``: samples of true class i predicted as class j."""

    confusion: np.ndarray

    @property
    def accuracy(self) -> float:
        """Fraction of samples predicted correctly (the confusion matrix's trace over its sum)."""
        return float(np.trace(self.confusion) / self.confusion.sum())

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    def per_class(self) -> np.ndarray:
        """Recall of each class (NaN for a class absent from the set)."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / totals


def predict(net, inputs: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """``net.test`` over ``inputs`` in chunks of ``batch_size``; (n, classes) predictions."""
    chunks = [net.test(inputs[start:start + batch_size]) for start in range(0, inputs.shape[0], batch_size)]
    return np.concatenate(chunks)


def evaluate(net, inputs: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> Evaluation:
    """Accuracy and confusion matrix of ``net`` on ``inputs`` with one-hot ``labels`` (n, classes)."""
    if inputs.shape[0] == 0:
        raise ValueError("evaluate: the test set is empty")
    return evaluate_prediction(predict(net, inputs, batch_size), labels)


def evaluate_prediction(prediction: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Accuracy and confusion matrix of (n, classes) ``prediction`` against one-hot ``labels``."""
    if prediction.shape != labels.shape:
        raise ValueError(
            f"evaluate: the network predicts shape {prediction.shape[1:]} per sample but the labels "
            f"have {labels.shape[1:]}; the checkpoint does not fit this data set"
        )
    classes = labels.shape[1]
    truth = np.argmax(labels, axis=1)
    guess = np.argmax(prediction, axis=1)
    confusion = np.bincount(truth * classes + guess, minlength=classes * classes).reshape(classes, classes)
    return Evaluation(confusion)
