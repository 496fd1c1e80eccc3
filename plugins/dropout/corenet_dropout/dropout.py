"""Dropout: inverted dropout with a keep probability p.

Training phase: ``forward`` draws a fresh mask per call, keeping each unit with
probability p (``np.random.random(shape) < p``, from NumPy's global generator, so
``np.random.seed`` reproduces it), and scales the kept units by 1/p so the expected
output equals the input; ``backward`` multiplies the error by the same scaled mask.
Testing phase: identity both ways. Any shape with a batch axis; the output keeps
the input's floating dtype.
"""

from __future__ import annotations

import numpy as np

from corenet.base import BaseLayer
from corenet.shapes import check_error, check_input, real_number


class Dropout(BaseLayer):
    """Inverted dropout; ``probability`` in (0, 1] is the fraction of units KEPT.

    forward/backward: (batch, ...) -> same shape.
    """

    transient = ("_mask", "_shape")

    def __init__(self, probability: float) -> None:
        super().__init__()
        self.probability = real_number("probability (fraction kept)", probability, "Dropout",
                                       low=0.0, high=1.0, low_inclusive=False)
        self._mask = None  # scaled keep-mask (1/p or 0) of the last training forward; None after a testing one
        self._shape = None  # shape of the last forward input (None before any forward)

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (1, 2, 3, 4, 5), "an array with a batch axis")
        self._shape = x.shape
        if self.testing_phase:
            self._mask = None
            return x
        keep = np.random.random(x.shape) < self.probability
        self._mask = keep.astype(x.dtype) / x.dtype.type(self.probability)
        return x * self._mask

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        error = check_error(self, error_tensor, self._shape)
        if self._mask is None:  # testing phase
            return error
        return error * self._mask.astype(error.dtype, copy=False)

    def __repr__(self) -> str:
        return f"Dropout({self.probability!r})"
