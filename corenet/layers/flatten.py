"""Flatten: (batch, ...) -> (batch, -1) and back."""

from __future__ import annotations

import numpy as np

from corenet.base import BaseLayer
from corenet.shapes import check_error, check_input


class Flatten(BaseLayer):
    """Reshape (batch, d1, d2, ...) to (batch, d1*d2*...); backward restores the shape."""

    transient = ("_input_shape",)

    def __init__(self) -> None:
        super().__init__()
        self._input_shape = None

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (1, 2, 3, 4, 5), "(batch, ...)")
        self._input_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        if self._input_shape is None:
            expected = None
        else:
            expected = (self._input_shape[0], int(np.prod(self._input_shape[1:], dtype=np.int64)))
        error = check_error(self, error_tensor, expected)
        return error.reshape(self._input_shape)
