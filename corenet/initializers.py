"""Initializers: ``initialize(weights_shape, fan_in, fan_out) -> ndarray``.

Random draws use NumPy's global generator, so ``np.random.seed`` reproduces them;
arrays come out in :func:`corenet.get_default_dtype`.
"""

from __future__ import annotations

import numpy as np

from corenet.dtype import get_default_dtype


class Constant:
    """Every entry equal to ``value`` (0.1 by default)."""

    def __init__(self, value: float = 0.1) -> None:
        self.value = float(value)

    def initialize(self, weights_shape, fan_in=None, fan_out=None) -> np.ndarray:
        return np.full(weights_shape, self.value, dtype=get_default_dtype())

    def __repr__(self) -> str:
        return f"Constant({self.value})"


class UniformRandom:
    """Uniform on [0, 1)."""

    def initialize(self, weights_shape, fan_in=None, fan_out=None) -> np.ndarray:
        return np.random.uniform(0.0, 1.0, weights_shape).astype(get_default_dtype(), copy=False)

    def __repr__(self) -> str:
        return "UniformRandom()"


class Xavier:
    """Normal with sigma = sqrt(2 / (fan_in + fan_out)) (Glorot)."""

    def initialize(self, weights_shape, fan_in, fan_out) -> np.ndarray:
        sigma = np.sqrt(2.0 / (fan_in + fan_out))
        return np.random.normal(0.0, sigma, weights_shape).astype(get_default_dtype(), copy=False)

    def __repr__(self) -> str:
        return "Xavier()"


class He:
    """Normal with sigma = sqrt(2 / fan_in) (for ReLU networks)."""

    def initialize(self, weights_shape, fan_in, fan_out=None) -> np.ndarray:
        sigma = np.sqrt(2.0 / fan_in)
        return np.random.normal(0.0, sigma, weights_shape).astype(get_default_dtype(), copy=False)

    def __repr__(self) -> str:
        return "He()"
