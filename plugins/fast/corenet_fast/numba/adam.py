"""Compiled Adam step: one pass over the weights instead of eleven NumPy passes.

Element by element, with every scalar given in the weights' dtype:
  m ← μ·m + (1 − μ)·g,   r ← ρ·r + (1 − ρ)·g²           (in place)
  out = w − lr·(m / (1 − μᵏ)) / (√(r / (1 − ρᵏ)) + ε)
The same operations in the same order as :class:`corenet.optimizers.Adam`, and
compiled without fast-math, so the results are the reference's bits.
"""

from __future__ import annotations

import numpy as np

from corenet_fast.numba import compiled


@compiled(exact=True)
def step(weights, gradient, m, r, mu, one_minus_mu, rho, one_minus_rho, m_correction, r_correction,
         learning_rate, eps, out):
    """All arrays 1-D of one length and dtype; ``m`` and ``r`` are updated, ``out`` gets the new weights."""
    for i in range(weights.size):
        g = gradient[i]
        first = mu * m[i] + one_minus_mu * g
        second = rho * r[i] + one_minus_rho * (g * g)
        m[i] = first
        r[i] = second
        out[i] = weights[i] - learning_rate * (first / m_correction) / (np.sqrt(second / r_correction) + eps)
