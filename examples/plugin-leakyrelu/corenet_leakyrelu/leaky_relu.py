"""LeakyReLU: x for x > 0, slope * x otherwise."""

import numpy as np

from corenet.base import BaseLayer
from corenet.shapes import check_error, check_input


class LeakyReLU(BaseLayer):
    """Elementwise, any shape with a batch axis; backward scales the error by 1 or ``slope``."""

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = float(slope)
        self._scale = None

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (1, 2, 3, 4), "an array with a batch axis")
        self._scale = np.where(x > 0, 1.0, self.slope).astype(x.dtype)
        return x * self._scale

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        expected = None if self._scale is None else self._scale.shape
        return check_error(self, error_tensor, expected) * self._scale

    def __repr__(self) -> str:
        return f"LeakyReLU({self.slope})"
