"""Pooling: 2-D max pooling without padding.

Input (batch, c, y, x); window (p, q); strides (sy, sx); output
(batch, c, (y - p) // sy + 1, (x - q) // sx + 1). backward sends each error to the
first maximum of its window (row-major order), summing where overlapping windows
share a maximum.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from corenet.base import BaseLayer
from corenet.errors import ShapeError
from corenet.shapes import check_error, check_input, describe, positive_ints


class Pooling(BaseLayer):
    """Max pooling; ``stride_shape`` and ``pooling_shape`` are an int or a list/tuple of 1 or 2."""

    transient = ("_input_shape", "_dtype", "_argmax")

    def __init__(self, stride_shape, pooling_shape) -> None:
        super().__init__()
        self.stride_shape = positive_ints("stride_shape", stride_shape, 2)
        self.pooling_shape = positive_ints("pooling_shape", pooling_shape, 2)
        self._input_shape = None
        self._dtype = None
        self._argmax = None  # (batch, c, out_y, out_x): row-major offset of each window's maximum

    @property
    def _tiles(self) -> bool:
        """Whether the windows tile the input (stride equals window): no overlaps, no gaps."""
        return self.stride_shape == self.pooling_shape

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (4,), "(batch, channels, y, x)")
        (p, q), (sy, sx) = self.pooling_shape, self.stride_shape
        batch, channels, height, width = x.shape
        if p > height or q > width:
            raise ShapeError(
                f"{describe(self)}: the {p}x{q} window is larger than the {height}x{width} input "
                f"(input shape {x.shape})"
            )
        out_y, out_x = (height - p) // sy + 1, (width - q) // sx + 1
        if self._tiles:  # cut off the remainder and split each axis into (window, offset)
            tiles = x[:, :, : out_y * p, : out_x * q].reshape(batch, channels, out_y, p, out_x, q)
            windows = tiles.transpose(0, 1, 2, 4, 3, 5)
        else:  # (batch, c, y - p + 1, x - q + 1, p, q) view of every window, subsampled
            windows = sliding_window_view(x, (p, q), axis=(2, 3))[:, :, ::sy, ::sx]
        # (p*q, batch, c, out_y, out_x): one contiguous slab per window offset
        stack = np.ascontiguousarray(windows.transpose(4, 5, 0, 1, 2, 3)).reshape(p * q, *windows.shape[:4])
        output = stack.max(axis=0)
        # first offset holding the maximum = how many leading offsets hold less than it:
        # count along the offsets while no maximum has been met yet
        argmax = np.zeros(output.shape, dtype=np.min_scalar_type(p * q - 1))
        below = np.ones(output.shape, dtype=bool)  # every offset so far held less than the maximum
        differs = np.empty(output.shape, dtype=bool)
        for offset in range(p * q - 1):
            below &= np.not_equal(stack[offset], output, out=differs)
            argmax += below
        below &= np.not_equal(stack[-1], output, out=differs)
        argmax[below] = 0  # a NaN maximum equals no offset: send its error to the first one
        self._argmax = argmax
        self._input_shape, self._dtype = x.shape, x.dtype
        return output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        expected = None
        if self._input_shape is not None:
            expected = (*self._input_shape[:2], *self._argmax.shape[2:])
        error = check_error(self, error_tensor, expected).astype(self._dtype, copy=False)
        (p, q), (sy, sx) = self.pooling_shape, self.stride_shape
        out_y, out_x = self._argmax.shape[2:]
        height, width = self._input_shape[2:]
        if self._tiles:  # each input pixel is in at most one window: write every offset's slice once
            covered = out_y * p == height and out_x * q == width  # else a remainder stays 0
            gradient = (np.empty if covered else np.zeros)(self._input_shape, dtype=self._dtype)
            tiles = gradient[:, :, : out_y * p, : out_x * q].reshape(*error.shape[:3], p, out_x, q)
            hit = np.empty(error.shape, dtype=bool)
            for offset in range(p * q):
                u, v = divmod(offset, q)
                # error where this offset holds the window's maximum, else 0, straight into the slice
                np.multiply(error, np.equal(self._argmax, offset, out=hit), out=tiles[:, :, :, u, :, v])
            return gradient
        gradient = np.zeros(self._input_shape, dtype=self._dtype)
        for offset in range(p * q):  # windows may overlap: add
            u, v = divmod(offset, q)
            routed = error * (self._argmax == offset)
            gradient[:, :, u : u + (out_y - 1) * sy + 1 : sy, v : v + (out_x - 1) * sx + 1 : sx] += routed
        return gradient

    def __repr__(self) -> str:
        return f"Pooling({self.stride_shape}, {self.pooling_shape})"

