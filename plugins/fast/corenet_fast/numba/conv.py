"""Compiled 2-D convolution, stride 1, 'same' padding: direct loops over a padded, flattened image.

Geometry: input (b, c, H, W), kernels (k, c, m, n), m//2 zeros before and (m-1)//2 after
the rows (n likewise for columns), so the padded image is (H + m - 1, Wp) with
Wp = W + n - 1. Each padded channel is stored flat, ``padded`` (b, c, L) with
L = (H + m - 1)·Wp + n - 1 (the tail stays zero). The output is computed on a *wide*
grid of H rows of Wp columns, flattened to ``span`` = H·Wp: the output at (r, x) is at
r·Wp + x, and kernel tap (i, j) reads the padded image at that index plus i·Wp + j.
So every tap adds one weight times a contiguous shifted window of ``span`` numbers,
a loop that vectorises; the n - 1 extra columns of each wide row are discarded
(forward) or held at zero (the ``wide`` error of backward), so they add nothing.

forward      out[k, r, x] = bias[k] + Σ_c,i,j W[k, c, i, j]·P[c, r + i, x + j]
weights      ∂W[k, c, i, j] = Σ_b,p E_wide[b, k, p]·P[b, c, p + i·Wp + j]
input        ∂x = the same sliding sum over the error, with the kernels mirrored: the error sits
             in ``spread`` (b, k, S) behind (m - 1)·Wp + n - 1 zeros, so every tap reads a
             contiguous window again, and only the interior rows are computed.

Five taps of a kernel row go through the window in one pass (``_add5``/``_dot5``), so
the running sums are loaded and stored once per five multiply-adds; other widths take
the remaining taps one by one.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from corenet_fast.numba import compiled, helper


@helper
def _add5(total, window, w0, w1, w2, w3, w4):
    """total[p] += w0·window[p] + ... + w4·window[p + 4] for every p of ``total``."""
    for p in range(total.size):
        total[p] += w0 * window[p] + w1 * window[p + 1] + w2 * window[p + 2] + w3 * window[p + 3] + w4 * window[p + 4]


@helper
def _add1(total, window, w):
    for p in range(total.size):
        total[p] += w * window[p]


@helper
def _dot5(error, window, taps, i, j):
    """taps[i, j + t] += Σ_p error[p]·window[p + t] for t = 0..4 (sums in the data's dtype)."""
    t0 = error[0] * window[0]
    t1 = error[0] * window[1]
    t2 = error[0] * window[2]
    t3 = error[0] * window[3]
    t4 = error[0] * window[4]
    for p in range(1, error.size):
        e = error[p]
        t0 += e * window[p]
        t1 += e * window[p + 1]
        t2 += e * window[p + 2]
        t3 += e * window[p + 3]
        t4 += e * window[p + 4]
    taps[i, j] += t0
    taps[i, j + 1] += t1
    taps[i, j + 2] += t2
    taps[i, j + 3] += t3
    taps[i, j + 4] += t4


@helper
def _dot1(error, window):
    total = error[0] * window[0]
    for p in range(1, error.size):
        total += error[p] * window[p]
    return total


@compiled(parallel=True)
def pad(x, top, left, padded_width, padded):
    """Copy x (b, c, H, W) into the interior of ``padded`` (b, c, L), whose border is already zero."""
    b, c, height, width = x.shape
    for image in prange(b):
        for channel in range(c):
            for r in range(height):
                start = (r + top) * padded_width + left
                for col in range(width):
                    padded[image, channel, start + col] = x[image, channel, r, col]


@compiled(parallel=True)
def forward(padded, weights, bias, height, width, out):
    """Fill ``out`` (b, k, H, W) with the convolution of ``padded`` (b, c, L) by ``weights`` (k, c, m, n) plus bias."""
    b, c, _ = padded.shape
    k, _, m, n = weights.shape
    padded_width = width + n - 1
    span = height * padded_width
    for image in prange(b):
        total = np.empty(span, dtype=out.dtype)
        for kernel in range(k):
            total[:] = bias[kernel]
            for channel in range(c):
                for i in range(m):
                    row = padded[image, channel, i * padded_width :]
                    w = weights[kernel, channel, i]
                    j = 0
                    while j + 5 <= n:
                        _add5(total, row[j : j + span + 4], w[j], w[j + 1], w[j + 2], w[j + 3], w[j + 4])
                        j += 5
                    while j < n:
                        _add1(total, row[j : j + span], w[j])
                        j += 1
            for r in range(height):
                for col in range(width):
                    out[image, kernel, r, col] = total[r * padded_width + col]


@compiled(parallel=True)
def spread(error, lead, padded_width, spread_error):
    """Copy ``error`` (b, k, H, W) to ``spread_error`` (b, k, S) at lead + r·Wp + x; the rest is already zero."""
    b, k, height, width = error.shape
    for image in prange(b):
        for kernel in range(k):
            for r in range(height):
                start = lead + r * padded_width
                for col in range(width):
                    spread_error[image, kernel, start + col] = error[image, kernel, r, col]


@compiled(parallel=True)
def weight_gradient(spread_error, padded, lead, padded_width, span, gradient):
    """Fill ``gradient`` (k, c, m, n) with Σ over images and wide positions of E·shifted P.

    Each image's sums run in the data's dtype; the sum over images in float64.
    """
    b, k, _ = spread_error.shape
    c = padded.shape[1]
    m, n = gradient.shape[2], gradient.shape[3]
    for pair in prange(k * c):
        kernel = pair // c
        channel = pair % c
        taps = np.zeros((m, n), dtype=np.float64)
        for image in range(b):
            error = spread_error[image, kernel, lead : lead + span]
            for i in range(m):
                row = padded[image, channel, i * padded_width :]
                j = 0
                while j + 5 <= n:
                    _dot5(error, row[j : j + span + 4], taps, i, j)
                    j += 5
                while j < n:
                    taps[i, j] += _dot1(error, row[j : j + span])
                    j += 1
        for i in range(m):
            for j in range(n):
                gradient[kernel, channel, i, j] = taps[i, j]


@compiled(parallel=True)
def input_gradient(spread_error, weights, lead, top, left, padded_width, out):
    """Fill ``out`` (b, c, H, W) with the input gradient for ``spread_error`` (see :func:`spread`)."""
    b, k, _ = spread_error.shape
    _, c, m, n = weights.shape
    height, width = out.shape[2], out.shape[3]
    span = height * padded_width
    first = lead + top * padded_width  # where row ``top`` of the padded gradient reads the error, tap (0, 0)
    for image in prange(b):
        total = np.empty(span, dtype=out.dtype)
        for channel in range(c):
            total[:] = 0.0
            for kernel in range(k):
                error = spread_error[image, kernel]
                for i in range(m):
                    w = weights[kernel, channel, i]
                    j = 0
                    while j + 5 <= n:  # tap j + t reads at start + 4 - t: mirrored weights
                        start = first - i * padded_width - j - 4
                        _add5(total, error[start : start + span + 4], w[j + 4], w[j + 3], w[j + 2], w[j + 1], w[j])
                        j += 5
                    while j < n:
                        start = first - i * padded_width - j
                        _add1(total, error[start : start + span], w[j])
                        j += 1
            for r in range(height):
                for col in range(width):
                    out[image, channel, r, col] = total[r * padded_width + left + col]
