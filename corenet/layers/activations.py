"""ReLU and SoftMax."""

from __future__ import annotations

import numpy as np

from corenet.base import BaseLayer
from corenet.shapes import check_error, check_input


class ReLU(BaseLayer):
    """max(0, x), any shape; backward passes the error where x > 0."""

    transient = ("_positive",)

    def __init__(self) -> None:
        super().__init__()
        self._positive = None

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (1, 2, 3, 4, 5), "an array with a batch axis")
        self._positive = x > 0
        # np.maximum and the multiply below vectorise (SIMD); np.where with a mask is ~6x slower
        return np.maximum(x, 0)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        expected = None if self._positive is None else self._positive.shape
        error = check_error(self, error_tensor, expected)
        return error * self._positive  # the bool mask multiplies as 0/1 and keeps the error's dtype


class SoftMax(BaseLayer):
    """Row-wise softmax of (batch, classes), shifted by the row max for stability.

    Probabilities that would underflow to 0 (or a subnormal) are raised to the
    dtype's smallest normal number, so ``-label / y`` from CrossEntropyLoss stays
    finite and backward's ``y * E`` still recovers ``-label``: the error reaching the
    logits is y - label even for a logit gap of 1e4.

    backward: y * (E - sum_j E_j y_j).
    """

    transient = ("_output",)
    #: rows of probabilities: what CrossEntropyLoss takes (see corenet.network.check_probabilities)
    outputs_probabilities = True

    def __init__(self) -> None:
        super().__init__()
        self._output = None

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (2,), "(batch, classes)")
        exponentials = np.exp(x - x.max(axis=1, keepdims=True))
        exponentials /= exponentials.sum(axis=1, keepdims=True)
        np.maximum(exponentials, np.finfo(exponentials.dtype).tiny, out=exponentials)
        self._output = exponentials
        return self._output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        expected = None if self._output is None else self._output.shape
        error = check_error(self, error_tensor, expected)
        y = self._output
        return y * (error - np.sum(error * y, axis=1, keepdims=True))
