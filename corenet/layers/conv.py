"""Conv: 1-D and 2-D cross-correlation with 'same' zero padding and strided subsampling.

Shapes: 1-D input (b, c, x) with ``convolution_shape`` (c, m); 2-D input (b, c, y, x)
with (c, m, n). ``weights`` (k, c, m[, n]) for k = ``num_kernels``, ``bias`` (k,).
Output (b, k, out_y[, out_x]) with out_y = ceil(y / sy), out_x = ceil(x / sx).

A 1-D convolution is computed as a 2-D one on (b, c, 1, x) with a (1, m) kernel.
The recipe (im2col):

1. Pad: an axis of kernel length m gets m // 2 zeros before and (m - 1) // 2 after
   ('same' padding, as scipy.signal.correlate), so the padded input P is
   (b, c, y + m - 1, x + n - 1).
2. im2col: one column per output pixel (b, p, q) holding the window
   P[b, :, p*sy : p*sy + m, q*sx : q*sx + n], flattened: C of shape (c*m*n, b*out_y*out_x).
3. Forward: Y = W @ C + bias, with W the weights as a (k, c*m*n) matrix.
4. Backward, with E the error as a (k, b*out_y*out_x) matrix:
   dW = E @ C^T,  dbias = sum of E over columns,  dC = W^T @ E (c*m*n, b*out_y*out_x);
   col2im adds each window's column of dC back onto the padded input positions it was
   read from (a loop over the m*n kernel offsets), and cutting the padding off gives
   the input gradient.

The im2col matrix's rows are ordered (channel, kernel row, kernel column) like the
flattened weights, and its columns (b, p, q) so that both copies (im2col, col2im)
move rows of out_x neighbouring pixels at a time.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from corenet.base import TrainableLayer
from corenet.dtype import get_default_dtype
from corenet.errors import ShapeError
from corenet.shapes import check_error, check_input, check_size, describe, positive_int, positive_ints


class Conv(TrainableLayer):
    """Convolution layer (see the module docstring for shapes, padding and the recipe).

    ``stride_shape``: an int or a list/tuple of 1 entry (used for every axis), or
    of 2 entries (sy, sx) for a 2-D convolution.
    """

    parameter_names = ("weights", "bias")
    transient = ("_columns", "_padded_shape", "_output_shape")

    def __init__(self, stride_shape, convolution_shape, num_kernels: int) -> None:
        super().__init__()
        self.convolution_shape = _convolution_shape(convolution_shape)
        self.num_kernels = positive_int("num_kernels", num_kernels)
        spatial_dims = len(self.convolution_shape) - 1
        self.stride_shape = positive_ints("stride_shape", stride_shape, spatial_dims,
                                          context=f" for a {spatial_dims}-D convolution")
        dtype = get_default_dtype()
        self.weights = np.random.uniform(0.0, 1.0, self.weights_shape).astype(dtype, copy=False)
        self.bias = np.random.uniform(0.0, 1.0, self.num_kernels).astype(dtype, copy=False)
        self.gradient_weights = None
        self.gradient_bias = None
        self._columns = None  # im2col matrix C of the last forward, (c*m*n, b*out_y*out_x)
        self._padded_shape = None  # (b, c, y + m - 1, x + n - 1) of the last forward
        self._output_shape = None  # shape of the last forward's output

    @property
    def weights_shape(self) -> tuple[int, ...]:
        """(num_kernels, c, m[, n])."""
        return (self.num_kernels, *self.convolution_shape)

    def initialize(self, weights_initializer, bias_initializer) -> None:
        """Weights (num_kernels, c, m[, n]) and bias (num_kernels,) from the initializers, both with
        fan_in = c*m*n and fan_out = num_kernels*m*n; the returned arrays are used as they are."""
        fan_in = int(np.prod(self.convolution_shape))
        fan_out = int(np.prod(self.convolution_shape[1:])) * self.num_kernels
        self.weights = weights_initializer.initialize(self.weights_shape, fan_in, fan_out)
        self.bias = bias_initializer.initialize((self.num_kernels,), fan_in, fan_out)

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        """(b, c, x) -> (b, k, out_x) or (b, c, y, x) -> (b, k, out_y, out_x)."""
        x = self._check_input(input_tensor)
        weights, bias = self._parameters(x.dtype)  # (k, c, m, n), (k,)
        if self._one_d:
            x = x[:, :, None, :]
        (m, n), (sy, sx) = self._kernel_size, self._strides
        padded = np.pad(x, ((0, 0), (0, 0), (m // 2, (m - 1) // 2), (n // 2, (n - 1) // 2)))
        # every m x n window of every channel, keeping every sy-th row and sx-th column: (b, c, out_y, out_x, m, n)
        windows = sliding_window_view(padded, (m, n), axis=(2, 3))[:, :, ::sy, ::sx]
        batch, channels, out_y, out_x = windows.shape[:4]
        columns = windows.transpose(1, 4, 5, 0, 2, 3).reshape(channels * m * n, batch * out_y * out_x)  # C
        output = weights.reshape(self.num_kernels, -1) @ columns + bias[:, None]  # (k, b*out_y*out_x)
        output = output.reshape(self.num_kernels, batch, out_y, out_x).transpose(1, 0, 2, 3)
        output = np.ascontiguousarray(output[:, :, 0, :] if self._one_d else output)
        self._columns, self._padded_shape, self._output_shape = columns, padded.shape, output.shape
        return output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray | None:
        """Error (b, k, out_y[, out_x]) -> error for the input; sets gradient_weights and gradient_bias."""
        error = check_error(self, error_tensor, self._output_shape)
        columns = self._columns
        weights, _ = self._parameters(columns.dtype)
        if self._one_d:
            error = error[:, :, None, :]
        batch, k, out_y, out_x = error.shape
        error_matrix = error.transpose(1, 0, 2, 3).reshape(k, -1).astype(columns.dtype, copy=False)  # E
        self.gradient_weights = (error_matrix @ columns.T).reshape(self.weights_shape)  # dW = E C^T
        self.gradient_bias = error_matrix.sum(axis=1)
        error_previous = None
        if self.needs_input_gradient:  # False only for a network's first layer (see BaseLayer)
            column_error = weights.reshape(k, -1).T @ error_matrix  # dC = W^T E, (c*m*n, b*out_y*out_x)
            error_previous = self._col2im(column_error, (batch, out_y, out_x))
            if self._one_d:
                error_previous = error_previous[:, :, 0, :]
        self.apply_update("weights", self.gradient_weights)
        self.apply_update("bias", self.gradient_bias)
        return error_previous

    def _col2im(self, column_error: np.ndarray, out_size: tuple[int, int, int]) -> np.ndarray:
        """Add every window's gradient back where the window was read; (b, c, y, x) without the padding."""
        batch, out_y, out_x = out_size
        (m, n), (sy, sx) = self._kernel_size, self._strides
        channels = self.convolution_shape[0]
        by_offset = column_error.reshape(channels, m, n, batch, out_y, out_x)
        padded_batch, _, padded_y, padded_x = self._padded_shape
        padded = np.zeros((channels, batch, padded_y, padded_x), dtype=column_error.dtype)  # (c, b, ...) like dC
        for i in range(m):
            for j in range(n):  # offset (i, j) read P[..., i + sy*p, j + sx*q] for output pixel (p, q)
                padded[:, :, i : i + sy * (out_y - 1) + 1 : sy, j : j + sx * (out_x - 1) + 1 : sx] += by_offset[:, i, j]
        y, x = padded_y - m + 1, padded_x - n + 1
        return padded[:, :, m // 2 : m // 2 + y, n // 2 : n // 2 + x].transpose(1, 0, 2, 3).copy()

    # -- helpers shared with faster subclasses ---------------------------------
    @property
    def _one_d(self) -> bool:
        return len(self.convolution_shape) == 2

    @property
    def _kernel_size(self) -> tuple[int, int]:
        """(m, n) of the 2-D computation; (1, m) for a 1-D convolution."""
        return (1, self.convolution_shape[1]) if self._one_d else self.convolution_shape[1:]

    @property
    def _strides(self) -> tuple[int, int]:
        """(sy, sx) of the 2-D computation; (1, s) for a 1-D convolution."""
        return (1, *self.stride_shape) if self._one_d else self.stride_shape

    def _check_input(self, input_tensor) -> np.ndarray:
        """The input as a float (b, c, x) or (b, c, y, x) array with the right channel count."""
        layout = "(batch, channels, x)" if self._one_d else "(batch, channels, y, x)"
        x = check_input(self, input_tensor, (3,) if self._one_d else (4,), layout)
        check_size(self, x, 1, self.convolution_shape[0], "input channels")
        return x

    def _parameters(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """The assigned weights as (k, c, m, n) (a 1-D kernel as (k, c, 1, m)) and bias (k,), in ``dtype``."""
        weights = np.asarray(self.weights)
        if weights.shape != self.weights_shape:
            raise ShapeError(f"{describe(self)}: weights must have shape {self.weights_shape}, got {weights.shape}")
        bias = np.asarray(self.bias)
        if bias.size != self.num_kernels:
            raise ShapeError(f"{describe(self)}: bias must have {self.num_kernels} entries, got shape {bias.shape}")
        weights = weights.reshape(self.num_kernels, self.convolution_shape[0], *self._kernel_size)
        return weights.astype(dtype, copy=False), bias.reshape(-1).astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"Conv({self.stride_shape}, {self.convolution_shape}, {self.num_kernels})"


def _convolution_shape(value) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) not in (2, 3):
        raise ValueError(f"convolution_shape must be (channels, m) for 1-D or (channels, m, n) for 2-D, got {value!r}")
    return tuple(positive_int("convolution_shape entries", entry) for entry in value)
