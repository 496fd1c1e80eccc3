"""TanH and Sigmoid: element-wise activations that keep their output for backward."""

from __future__ import annotations

import numpy as np

from corenet.base import BaseLayer
from corenet.shapes import check_error, check_input

_ANY_RANK = (1, 2, 3, 4, 5)
_LAYOUT = "an array with a batch axis"


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-x)) without overflow for large |x|; keeps x's dtype."""
    decay = np.exp(-np.abs(x))
    ratio = 1.0 / (1.0 + decay)
    return np.where(x >= 0, ratio, decay * ratio)


class TanH(BaseLayer):
    """y = tanh(x), any shape; backward uses the stored activation: E * (1 - y^2)."""

    transient = ("activations",)

    def __init__(self) -> None:
        super().__init__()
        self.activations = None

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, _ANY_RANK, _LAYOUT)
        self.activations = np.tanh(x)
        return self.activations

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        y = self.activations
        error = check_error(self, error_tensor, None if y is None else y.shape)
        return error * (1.0 - y * y)


class Sigmoid(BaseLayer):
    """y = 1 / (1 + exp(-x)), any shape; backward uses the stored activation: E * y * (1 - y)."""

    transient = ("activations",)

    def __init__(self) -> None:
        super().__init__()
        self.activations = None

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, _ANY_RANK, _LAYOUT)
        self.activations = sigmoid(x)
        return self.activations

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        y = self.activations
        error = check_error(self, error_tensor, None if y is None else y.shape)
        return error * y * (1.0 - y)
