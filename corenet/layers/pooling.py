"""Pooling: 2-D max pooling without padding.

Input (batch, c, y, x); window (p, q); strides (sy, sx); output
(batch, c, (y - p) // sy + 1, (x - q) // sx + 1). backward sends each error to the
first maximum of its window, summing where overlapping windows share a maximum.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from corenet.base import BaseLayer
from corenet.errors import ShapeError
from corenet.shapes import check_error, check_input, describe


class Pooling(BaseLayer):
    """Max pooling; ``stride_shape`` and ``pooling_shape`` are an int or a list/tuple of 1 or 2."""

    def __init__(self, stride_shape, pooling_shape) -> None:
        super().__init__()
        self.stride_shape = _pair("stride_shape", stride_shape)
        self.pooling_shape = _pair("pooling_shape", pooling_shape)
        self._input_shape = None
        self._dtype = None
        self._argmax = None  # (batch, c, out_y, out_x): index of the maximum in its flattened window

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (4,), "(batch, channels, y, x)")
        (p, q), (sy, sx) = self.pooling_shape, self.stride_shape
        if p > x.shape[2] or q > x.shape[3]:
            raise ShapeError(
                f"{describe(self)}: the {p}x{q} window is larger than the {x.shape[2]}x{x.shape[3]} "
                f"input (input shape {x.shape})"
            )
        out_y, out_x = (x.shape[2] - p) // sy + 1, (x.shape[3] - q) // sx + 1
        if (sy, sx) == (p, q):  # disjoint tiles: crop the remainder and split each axis in two
            tiles = x[:, :, : out_y * p, : out_x * q].reshape(*x.shape[:2], out_y, p, out_x, q)
            windows = tiles.transpose(0, 1, 2, 4, 3, 5)
        else:  # (batch, c, y - p + 1, x - q + 1, p, q) view of every window, subsampled
            windows = sliding_window_view(x, (p, q), axis=(2, 3))[:, :, ::sy, ::sx]
        windows = windows.reshape(*x.shape[:2], out_y, out_x, p * q)
        self._argmax = windows.argmax(axis=-1)  # argmax picks the first of tied maxima
        self._input_shape, self._dtype = x.shape, x.dtype
        return np.take_along_axis(windows, self._argmax[..., None], axis=-1)[..., 0]

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        expected = None
        if self._input_shape is not None:
            expected = (*self._input_shape[:2], *self._argmax.shape[2:])
        error = check_error(self, error_tensor, expected).astype(self._dtype, copy=False)
        (p, q), (sy, sx) = self.pooling_shape, self.stride_shape
        batch, channels, height, width = self._input_shape
        out_y, out_x = self._argmax.shape[2:]
        if (sy, sx) == (p, q):
            # one-hot of the argmax per window, scaled by the error, put back as tiles
            routed = (self._argmax[..., None] == np.arange(p * q)) * error[..., None]
            tiles = routed.reshape(batch, channels, out_y, out_x, p, q).transpose(0, 1, 2, 4, 3, 5)
            gradient = np.zeros(self._input_shape, dtype=routed.dtype)
            gradient[:, :, : out_y * p, : out_x * q] = tiles.reshape(batch, channels, out_y * p, out_x * q)
            return gradient
        # strided windows may overlap: add the errors routed to each window offset (u, v) in turn
        gradient = np.zeros(self._input_shape, dtype=error.dtype)
        for offset in range(p * q):
            u, v = divmod(offset, q)
            target = gradient[:, :, u : u + (out_y - 1) * sy + 1 : sy, v : v + (out_x - 1) * sx + 1 : sx]
            target += np.where(self._argmax == offset, error, 0)
        return gradient

    def __repr__(self) -> str:
        return f"Pooling({self.stride_shape}, {self.pooling_shape})"


def _pair(name: str, value) -> tuple[int, int]:
    """An int or a list/tuple of 1 or 2 positive ints as a (y, x) pair."""
    entries = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if not isinstance(entries, (list, tuple, np.ndarray)) or len(entries) not in (1, 2):
        raise ValueError(f"{name} must be an int or a list/tuple of 1 or 2 ints, got {value!r}")
    for entry in entries:
        if isinstance(entry, bool) or not isinstance(entry, (int, np.integer)) or entry <= 0:
            raise ValueError(f"{name} entries must be positive integers, got {value!r}")
    pair = tuple(int(entry) for entry in entries)
    return pair * 2 if len(pair) == 1 else pair
