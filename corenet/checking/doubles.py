"""Test doubles for conformance tests: initializers that hand out known arrays, fixed data layers."""

from __future__ import annotations

import numpy as np


def known_values(shape: tuple[int, ...], seed: int = 0, scale: float = 0.5) -> np.ndarray:
    """Values in [-scale, scale) fixed by each entry's index (and ``seed``), not by ``shape``.

    ``known_values((5, 3))[:4]`` equals ``known_values((4, 3))``: an implementation that asks
    an initializer for (input_size + 1, output_size) and overwrites the last row with the bias
    gets the same weights as one that asks for (input_size, output_size).
    """
    shape = tuple(int(s) for s in shape)
    if not shape:
        return np.asarray(_hash(np.zeros(1), seed, scale)[0])
    index = np.indices(shape, dtype=np.float64)
    primes = (12.9898, 78.233, 37.719, 4.581, 93.989)
    mixed = sum(index[axis] * primes[axis % len(primes)] * (axis + 1) for axis in range(len(shape)))
    return _hash(mixed, seed, scale)


def _hash(mixed: np.ndarray, seed: int, scale: float) -> np.ndarray:
    value = np.sin(mixed + 1.618 * (seed + 1)) * 43758.5453
    return (value - np.floor(value) - 0.5) * 2 * scale


class ArrayInitializer:
    """``initialize(shape, fan_in, fan_out)`` returns :func:`known_values` for the requested shape
    (so two implementations initialized with it start from the same weights) and records each call."""

    def __init__(self, seed: int = 0, scale: float = 0.5) -> None:
        self.seed, self.scale = seed, scale
        self.calls: list[tuple[tuple[int, ...], int, int]] = []

    def initialize(self, weights_shape, fan_in, fan_out) -> np.ndarray:
        self.calls.append((tuple(int(s) for s in weights_shape), fan_in, fan_out))
        return known_values(weights_shape, self.seed, self.scale)

    def __repr__(self) -> str:
        return f"ArrayInitializer(seed={self.seed})"


class RecordingInitializer:
    """Returns ``value`` everywhere and records (shape, fan_in, fan_out) of every call."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.calls: list[tuple[tuple[int, ...], int, int]] = []
        self.returned: np.ndarray | None = None

    def initialize(self, weights_shape, fan_in, fan_out) -> np.ndarray:
        self.calls.append((tuple(int(s) for s in weights_shape), fan_in, fan_out))
        self.returned = np.full(weights_shape, self.value, dtype=np.float64)
        return self.returned


class FixedBatch:
    """A data layer whose ``next()`` returns copies of the same (input, label) batch; counts calls."""

    def __init__(self, input_tensor: np.ndarray, label_tensor: np.ndarray) -> None:
        self.input_tensor, self.label_tensor = input_tensor, label_tensor
        self.calls = 0

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        return self.input_tensor.copy(), self.label_tensor.copy()


def one_hot(indices: np.ndarray, classes: int) -> np.ndarray:
    """(batch,) class indices -> (batch, classes) one-hot rows."""
    indices = np.asarray(indices)
    labels = np.zeros((indices.size, classes))
    labels[np.arange(indices.size), indices] = 1.0
    return labels


def away_from_zero(shape: tuple[int, ...], margin: float = 0.1, rng=np.random) -> np.ndarray:
    """Normal draws with |x| >= margin, so central differences never straddle a kink at 0."""
    values = rng.standard_normal(shape)
    return np.where(values >= 0, values + margin, values - margin)
