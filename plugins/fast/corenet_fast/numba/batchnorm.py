"""Compiled BatchNormalization: one pass per channel in each direction, on one thread.

Arrays are channel views (b, c, n) (see :func:`corenet_batchnorm.functional.channel_view`;
(b, c) inputs come as (b, c, 1)). Each channel's numbers are read while they sit in
the cache: forward sums them, sums their centred squares and writes the output;
backward sums E and E·(x − μ), then writes the input gradient. Sums run in float64
whatever the data's dtype.

With x̂ = (x − μ)·s, s = 1/√(σ² + ε), m values per channel:
  forward          y  = γ·x̂ + β
  γ, β gradients   ∂γ = Σ E·x̂,  ∂β = Σ E
  input gradient   ∂x = γs·(E − ∂β/m − x̂·∂γ/m)   (training; testing: ∂x = γs·E)

One thread: a kernel takes about 0.2 ms for LeNet-sized batches, less than it costs
numba's sleeping worker threads to wake up (0.1–0.2 ms per parallel call measured on
a 2-core VM, benchmarks/README.md); its spinning OpenMP workers slowed the BLAS calls
of the next layers instead.
"""

from __future__ import annotations

import numpy as np

from corenet_fast.numba import compiled


@compiled()
def train_forward(x, gamma, beta, epsilon, out, mean, variance):
    """Batch statistics and output: fills ``out`` (b, c, n), ``mean`` and biased ``variance`` (c,) float64."""
    b, c, n = x.shape
    count = b * n
    for channel in range(c):
        total = 0.0
        for i in range(b):
            for j in range(n):
                total += x[i, channel, j]
        mu = total / count
        squares = 0.0
        for i in range(b):
            for j in range(n):
                d = x[i, channel, j] - mu
                squares += d * d
        var = squares / count
        slope = gamma[channel] / np.sqrt(var + epsilon)
        offset = beta[channel] - mu * slope
        for i in range(b):
            for j in range(n):
                out[i, channel, j] = x[i, channel, j] * slope + offset
        mean[channel] = mu
        variance[channel] = var


@compiled()
def apply(x, mean, scale, gamma, beta, out):
    """Normalise with given statistics (the testing phase): out = γ·(x − μ)·s + β."""
    b, c, n = x.shape
    for channel in range(c):
        slope = gamma[channel] * scale[channel]
        offset = beta[channel] - mean[channel] * slope
        for i in range(b):
            for j in range(n):
                out[i, channel, j] = x[i, channel, j] * slope + offset


@compiled()
def backward(error, x, mean, scale, gamma, training, gradient, gradient_weights, gradient_bias):
    """Fills ``gradient`` (b, c, n) with ∂x and ``gradient_weights``/``gradient_bias`` (c,) float64 with ∂γ, ∂β.

    ``training``: the statistics came from this batch (the full formula); else they were fixed.
    """
    b, c, n = x.shape
    count = b * n
    for channel in range(c):
        mu = mean[channel]
        total = 0.0
        weighted = 0.0
        for i in range(b):
            for j in range(n):
                e = error[i, channel, j]
                total += e
                weighted += e * (x[i, channel, j] - mu)
        s = scale[channel]
        d_gamma = weighted * s
        factor = gamma[channel] * s
        slope = s * d_gamma / count if training else 0.0
        offset = total / count if training else 0.0
        for i in range(b):
            for j in range(n):
                gradient[i, channel, j] = factor * (error[i, channel, j] - offset - (x[i, channel, j] - mu) * slope)
        gradient_weights[channel] = d_gamma
        gradient_bias[channel] = total

