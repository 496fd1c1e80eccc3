"""Cheap Bernoulli keep-masks drawn from NumPy's global generator.

Drawing one float64 per unit is what makes dropout expensive. Here each unit
gets a ``k``-bit code ``c``, cut from random 64-bit words of ``np.random.randint``
(so ``np.random.seed`` reproduces the mask): with ``p * 2**k = level + fraction``,
a unit is kept if ``c < level``; when ``fraction > 0`` the units with
``c == level`` (1 in ``2**k``) are kept with probability ``fraction`` by one
extra float draw each. So P(keep) is exactly ``(level + fraction) / 2**k = p``
(to float64 rounding) for any p in (0, 1]. ``k`` is the fewest of 1, 2, 4 bits
that represent ``p`` exactly (p = 0.5 needs one bit, 0.25 or 0.75 two), else 8.
"""

from __future__ import annotations

import numpy as np

_WIDEST = 8  # bits per code when no narrower code represents p exactly


def code_bits(probability: float) -> int:
    """Fewest bits k in (1, 2, 4) with ``probability * 2**k`` a whole number, else 8."""
    for bits in (1, 2, 4):
        if (probability * (1 << bits)).is_integer():
            return bits
    return _WIDEST


def random_codes(count: int, bits: int) -> np.ndarray:
    """``count`` independent uniform ``bits``-bit codes (``bits`` in 1, 2, 4, 8) as flat uint8.

    The random bytes come from whole 64-bit words (the fastest bulk draw of the
    legacy generator); each byte is cut into ``8 // bits`` codes.
    """
    per_byte = _WIDEST // bits
    byte_count = -(-count // per_byte)
    words = np.random.randint(0, 1 << 64, size=-(-byte_count // 8), dtype=np.uint64)
    raw = words.view(np.uint8)[:byte_count]
    if bits == _WIDEST:
        return raw[:count]
    # row j holds bit group j of every byte: (per_byte, 1) shifts against (byte_count,) bytes,
    # so each row is one contiguous pass
    shifts = np.arange(_WIDEST - bits, -1, -bits, dtype=np.uint8)[:, None]
    codes = np.right_shift(raw, shifts)
    codes &= np.uint8((1 << bits) - 1)
    return codes.reshape(-1)[:count]


def keep_mask(shape: tuple[int, ...], probability: float) -> np.ndarray:
    """Boolean array of ``shape``, each entry True with ``probability`` (independently)."""
    if probability >= 1.0:
        return np.ones(shape, dtype=bool)
    bits = code_bits(probability)
    scaled = probability * (1 << bits)  # exact: a power-of-two scaling
    level = int(scaled)
    fraction = scaled - level
    codes = random_codes(int(np.prod(shape, dtype=np.int64)), bits)
    keep = codes < level
    if fraction > 0.0:
        tied = np.flatnonzero(codes == level)
        if tied.size:
            keep[tied] = np.random.random_sample(tied.size) < fraction
    return keep.reshape(shape)
