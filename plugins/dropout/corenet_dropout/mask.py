"""Cheap Bernoulli keep-masks drawn from NumPy's global generator.

Drawing one float64 per unit is what makes dropout expensive. Here each unit
gets a 16-bit code ``c`` from ``np.random.randint`` (two codes per 32-bit
Mersenne-Twister word): with ``p * 2**16 = level + fraction``, a unit is kept if
``c < level``; the rare units with ``c == level`` (1 in 65536) are kept with
probability ``fraction`` by one extra float draw each. So P(keep) is exactly
``(level + fraction) / 2**16 = p`` (to float64 rounding), for any p in (0, 1],
and ``np.random.seed`` reproduces the mask.
"""

from __future__ import annotations

import numpy as np

_CODES = 1 << 16


def keep_mask(shape: tuple[int, ...], probability: float) -> np.ndarray:
    """Boolean array of ``shape``, each entry True with ``probability`` (independently)."""
    if probability >= 1.0:
        return np.ones(shape, dtype=bool)
    scaled = probability * _CODES
    level = int(scaled)
    fraction = scaled - level
    codes = np.random.randint(0, _CODES, size=shape, dtype=np.uint16)
    keep = codes < level
    if fraction > 0.0:
        tied = np.flatnonzero(codes == level)
        if tied.size:
            keep.reshape(-1)[tied] = np.random.random_sample(tied.size) < fraction
    return keep
