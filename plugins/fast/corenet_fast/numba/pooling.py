"""Compiled 2×2 max pooling with stride 2 (LeNet's), one pass over the input in each direction.

Arrays: input x (b, c, H, W), output and ``argmax`` (b, c, H // 2, W // 2). ``argmax``
holds the row-major offset (0 top left, 1 top right, 2 bottom left, 3 bottom right)
of each window's first maximum, as the reference layer's does; a window holding a
NaN gives NaN and offset 0 (the reference sends that error to the first position too).
Written out for the four positions: loops over a window's offsets with run-time
bounds ran 3–4× slower than the reference NumPy code here.
"""

from __future__ import annotations

import numpy as np

from corenet_fast.numba import compiled


@compiled()
def forward(x, out, argmax):
    """Fill ``out`` with each window's maximum and ``argmax`` with its first offset."""
    b, c, out_y, out_x = out.shape
    for image in range(b):
        for channel in range(c):
            for y in range(out_y):
                top, bottom = x[image, channel, 2 * y], x[image, channel, 2 * y + 1]
                maxima, offsets = out[image, channel, y], argmax[image, channel, y]
                for i in range(out_x):
                    a, b_, c_, d = top[2 * i], top[2 * i + 1], bottom[2 * i], bottom[2 * i + 1]
                    best, offset = a, 0
                    if b_ > best:
                        best, offset = b_, 1
                    if c_ > best:
                        best, offset = c_, 2
                    if d > best:
                        best, offset = d, 3
                    if a != a or b_ != b_ or c_ != c_ or d != d:
                        best, offset = np.nan, 0
                    maxima[i] = best
                    offsets[i] = offset


@compiled()
def backward(error, argmax, gradient):
    """Write each window's error at its maximum and zero at its other three positions of ``gradient``."""
    b, c, out_y, out_x = error.shape
    for image in range(b):
        for channel in range(c):
            for y in range(out_y):
                top, bottom = gradient[image, channel, 2 * y], gradient[image, channel, 2 * y + 1]
                errors, offsets = error[image, channel, y], argmax[image, channel, y]
                for i in range(out_x):
                    e, offset = errors[i], offsets[i]
                    top[2 * i] = e if offset == 0 else 0.0
                    top[2 * i + 1] = e if offset == 1 else 0.0
                    bottom[2 * i] = e if offset == 2 else 0.0
                    bottom[2 * i + 1] = e if offset == 3 else 0.0
