"""Initializers: ``initialize(weights_shape, fan_in, fan_out) -> ndarray``.

Random draws use NumPy's global generator, so ``np.random.seed`` reproduces them;
arrays come out in :func:`corenet.get_default_dtype`.
"""

from __future__ import annotations

import numpy as np

from corenet.dtype import get_default_dtype
from corenet.shapes import real_number


def _shape(owner: str, weights_shape) -> tuple[int, ...]:
    """``weights_shape`` as a tuple of non-negative ints (an int is a 1-D shape)."""
    entries = (weights_shape,) if isinstance(weights_shape, (int, np.integer)) else weights_shape
    try:
        shape = tuple(entries)
    except TypeError:
        shape = None
    if shape is None or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise ValueError(
            f"{owner}: weights_shape must be a tuple of non-negative ints, got {weights_shape!r}"
        )
    return tuple(int(n) for n in shape)


def _fan(owner: str, name: str, value) -> float:
    """A fan-in/fan-out: a finite number > 0."""
    return real_number(name, value, owner, low=0.0, low_inclusive=False)


class Constant:
    """Every entry equal to ``value`` (0.1 by default)."""

    def __init__(self, value: float = 0.1) -> None:
        self.value = real_number("value", value, "Constant")

    def initialize(self, weights_shape, fan_in=None, fan_out=None) -> np.ndarray:
        return np.full(_shape("Constant", weights_shape), self.value, dtype=get_default_dtype())

    def __repr__(self) -> str:
        return f"Constant({self.value})"


class UniformRandom:
    """Uniform on [0, 1)."""

    def initialize(self, weights_shape, fan_in=None, fan_out=None) -> np.ndarray:
        shape = _shape("UniformRandom", weights_shape)
        return np.random.uniform(0.0, 1.0, shape).astype(get_default_dtype(), copy=False)

    def __repr__(self) -> str:
        return "UniformRandom()"


class Xavier:
    """Normal with sigma = sqrt(2 / (fan_in + fan_out)) (Glorot)."""

    def initialize(self, weights_shape, fan_in, fan_out) -> np.ndarray:
        shape = _shape("Xavier", weights_shape)
        sigma = np.sqrt(2.0 / (_fan("Xavier", "fan_in", fan_in) + _fan("Xavier", "fan_out", fan_out)))
        return np.random.normal(0.0, sigma, shape).astype(get_default_dtype(), copy=False)

    def __repr__(self) -> str:
        return "Xavier()"


class He:
    """Normal with sigma = sqrt(2 / fan_in) (for ReLU networks)."""

    def initialize(self, weights_shape, fan_in, fan_out=None) -> np.ndarray:
        shape = _shape("He", weights_shape)
        sigma = np.sqrt(2.0 / _fan("He", "fan_in", fan_in))
        return np.random.normal(0.0, sigma, shape).astype(get_default_dtype(), copy=False)

    def __repr__(self) -> str:
        return "He()"
