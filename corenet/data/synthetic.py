"""RandomData: uniform random inputs with random one-hot labels, for smoke tests."""

from __future__ import annotations

import numpy as np

from corenet.data.base import check_batch_size, one_hot
from corenet.dtype import get_default_dtype
from corenet.shapes import positive_int


class RandomData:
    """Every call draws fresh data from ``np.random``: input U[0, 1) and uniform random classes.

    ``input_size`` is an int (inputs (b, input_size)) or a shape tuple (inputs
    (b, *input_size)); labels are (b, categories) one-hot. ``get_test_set()`` draws
    a fresh batch of ``batch_size`` the same way.
    """

    def __init__(self, input_size, batch_size: int, categories: int) -> None:
        shape = (input_size,) if isinstance(input_size, (int, np.integer)) else tuple(input_size)
        try:
            self.input_size = tuple(positive_int("input_size", d) for d in shape)
        except ValueError:
            self.input_size = ()
        if not self.input_size:
            raise ValueError(f"input_size must be a positive int or a tuple of them, got {input_size!r}")
        self.batch_size = check_batch_size(batch_size)
        self.categories = positive_int("categories", categories)
        self.last_input: np.ndarray | None = None

    def _draw(self) -> tuple[np.ndarray, np.ndarray]:
        inputs = np.random.random((self.batch_size, *self.input_size)).astype(get_default_dtype(), copy=False)
        labels = one_hot(np.random.randint(0, self.categories, self.batch_size), self.categories)
        return inputs, labels

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """A fresh batch: (batch_size, *input_size) input, (batch_size, categories) one-hot labels."""
        inputs, labels = self._draw()
        self.last_input = inputs
        return inputs, labels

    def get_test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """A fresh batch drawn like :meth:`next` (random data has no fixed test set)."""
        return self._draw()

    def __repr__(self) -> str:
        return f"RandomData({self.input_size}, {self.batch_size}, {self.categories})"
