"""L1 and L2 weight constraints.

A regularizer gives an optimizer the (sub-)gradient of its penalty,
``calculate_gradient(weights)``, and the network the penalty itself,
``norm(weights)``. Both accept an array of any shape (or a scalar); the gradient
has the weights' shape and floating dtype, the norm is a Python float.

- ``L2_Regularizer(alpha)``: gradient ``alpha * w``, norm ``alpha * sum(w**2)`` (the
  course's convention, kept as API.md states it: the gradient is half the norm's derivative).
- ``L1_Regularizer(alpha)``: gradient ``alpha * sign(w)``, norm ``alpha * sum(|w|)``
  (sign(0) = 0, the sub-gradient that leaves exact zeros alone).
"""

from __future__ import annotations

import numpy as np

from corenet.dtype import as_float_array
from corenet.shapes import real_number


class _Regularizer:
    """Shared constructor and repr: one regularization weight ``alpha``."""

    def __init__(self, alpha: float) -> None:
        self.alpha = real_number("alpha", alpha, type(self).__name__, low=0.0)

    def _weights(self, weights) -> np.ndarray:
        return as_float_array(weights, repr(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha!r})"


class L2_Regularizer(_Regularizer):  # noqa: N801 (the course's name)
    """Weight decay: penalty ``alpha * sum(w**2)``, gradient ``alpha * w``."""

    def calculate_gradient(self, weights) -> np.ndarray:
        w = self._weights(weights)
        return w * w.dtype.type(self.alpha)

    def norm(self, weights) -> float:
        w = self._weights(weights).reshape(-1)
        return self.alpha * float(np.dot(w, w))


class L1_Regularizer(_Regularizer):  # noqa: N801 (the course's name)
    """Sparsity: penalty ``alpha * sum(|w|)``, sub-gradient ``alpha * sign(w)``."""

    def calculate_gradient(self, weights) -> np.ndarray:
        w = self._weights(weights)
        return np.sign(w) * w.dtype.type(self.alpha)

    def norm(self, weights) -> float:
        return self.alpha * float(np.sum(np.abs(self._weights(weights))))
