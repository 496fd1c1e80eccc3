"""Conv: 1-D and 2-D cross-correlation with 'same' zero padding and strided subsampling.

Shapes: 1-D input (batch, c, x) with ``convolution_shape`` (c, m); 2-D input
(batch, c, y, x) with (c, m, n). ``weights`` (num_kernels, c, m[, n]), ``bias``
(num_kernels,). Output (batch, num_kernels, ceil(y / sy)[, ceil(x / sx)]).

A 1-D convolution is computed as a 2-D one on a (1, x) image with a (1, m) kernel.
Forward is one matrix product on the im2col matrix; backward one product for the
weight gradient and one for the input gradient, scattered back over the m*n
kernel offsets (see :func:`_input_gradient`).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from corenet.base import TrainableLayer
from corenet.dtype import get_default_dtype
from corenet.errors import ShapeError
from corenet.shapes import check_error, check_input, check_size, describe


class Conv(TrainableLayer):
    """Convolution layer (see the module docstring for shapes and padding).

    ``stride_shape``: an int, or a list/tuple of 1 entry (both axes) or 2 entries
    (y, x) for 2-D; 1 entry (or an int) for 1-D.
    """

    parameter_names = ("weights", "bias")

    def __init__(self, stride_shape, convolution_shape, num_kernels: int) -> None:
        super().__init__()
        self.convolution_shape = _convolution_shape(convolution_shape)
        self.num_kernels = _positive_int("num_kernels", num_kernels)
        self.stride_shape = _stride_shape(stride_shape, len(self.convolution_shape) - 1)
        dtype = get_default_dtype()
        self.weights = np.random.uniform(0.0, 1.0, self.weights_shape).astype(dtype, copy=False)
        self.bias = np.random.uniform(0.0, 1.0, self.num_kernels).astype(dtype, copy=False)
        self.gradient_weights = None
        self.gradient_bias = None
        self._cols = None  # im2col matrix of the last input, (c*m*n, batch*out_y*out_x)
        self._geometry = None  # _Geometry of the last forward pass

    @property
    def weights_shape(self) -> tuple[int, ...]:
        """(num_kernels, c, m[, n])."""
        return (self.num_kernels, *self.convolution_shape)

    def initialize(self, weights_initializer, bias_initializer) -> None:
        """Draw weights (num_kernels, c, m[, n]) and bias (num_kernels,) with fan_in = c*m*n,
        fan_out = num_kernels*m*n; the returned arrays are used as they are."""
        fan_in = int(np.prod(self.convolution_shape))
        fan_out = int(np.prod(self.convolution_shape[1:])) * self.num_kernels
        self.weights = weights_initializer.initialize(self.weights_shape, fan_in, fan_out)
        self.bias = bias_initializer.initialize((self.num_kernels,), fan_in, fan_out)

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        one_d = len(self.convolution_shape) == 2
        layout = "(batch, channels, x)" if one_d else "(batch, channels, y, x)"
        x = check_input(self, input_tensor, (3,) if one_d else (4,), layout)
        check_size(self, x, 1, self.convolution_shape[0], "input channels")
        weights, bias = self._parameters(x.dtype)
        if one_d:  # a 1-D signal is a (1, x) image, its kernel (1, m)
            x, weights = x[:, :, None, :], weights[:, :, None, :]
        geometry = _Geometry(x.shape, weights.shape[2:], self.stride_shape[-2:] if not one_d else
                             (1, self.stride_shape[0]))
        self._geometry = geometry
        self._cols = _im2col(x, geometry)
        k = self.num_kernels
        output = weights.reshape(k, -1) @ self._cols  # (k, batch*out_y*out_x)
        output += bias[:, None]
        # (k, batch, out_y, out_x) memory, returned as a (batch, k, out_y, out_x) view
        output = output.reshape(k, geometry.batch, *geometry.out_size).transpose(1, 0, 2, 3)
        return output[:, :, 0, :] if one_d else output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        geometry = self._geometry
        one_d = len(self.convolution_shape) == 2
        expected = None
        if geometry is not None:
            expected = (geometry.batch, self.num_kernels, *geometry.out_size[1 if one_d else 0:])
        error = check_error(self, error_tensor, expected).astype(self._cols.dtype, copy=False)
        if one_d:
            error = error[:, :, None, :]
        weights, _ = self._parameters(self._cols.dtype)
        k = self.num_kernels
        # kernel-major error matrix (k, batch*out_y*out_x), matching the im2col columns
        error_matrix = error.transpose(1, 0, 2, 3).reshape(k, -1)
        self.gradient_weights = (error_matrix @ self._cols.T).reshape(self.weights_shape)
        self.gradient_bias = error.sum(axis=(0, 2, 3))
        kernel = weights.reshape(k, self.convolution_shape[0], geometry.kernel[0], geometry.kernel[1])
        error_previous = _input_gradient(error, kernel, geometry)
        self.apply_update("weights", self.gradient_weights)
        self.apply_update("bias", self.gradient_bias)
        return error_previous[:, :, 0, :] if one_d else error_previous

    def _parameters(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """The assigned weights and bias as ``dtype`` arrays, their shapes checked."""
        weights = np.asarray(self.weights)
        if weights.shape != self.weights_shape:
            raise ShapeError(
                f"{describe(self)}: weights must have shape {self.weights_shape}, got {weights.shape}"
            )
        bias = np.asarray(self.bias)
        if bias.size != self.num_kernels:
            raise ShapeError(
                f"{describe(self)}: bias must have {self.num_kernels} entries, got shape {bias.shape}"
            )
        return weights.astype(dtype, copy=False), bias.reshape(-1).astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"Conv({self.stride_shape}, {self.convolution_shape}, {self.num_kernels})"


class _Geometry:
    """Sizes of one 2-D forward pass: input (batch, c, y, x), kernel (m, n), strides (sy, sx).

    'same' padding puts k//2 zeros before and (k-1)//2 after an axis of kernel length k
    (as scipy.signal.correlate 'same'); the padded image is (y + m - 1, x + n - 1) and
    the output (ceil(y / sy), ceil(x / sx)).
    """

    def __init__(self, input_shape, kernel, strides) -> None:
        self.batch, self.channels, y, x = input_shape
        self.size = (y, x)
        self.kernel = tuple(int(k) for k in kernel)
        self.strides = tuple(strides)
        self.before = tuple(k // 2 for k in self.kernel)
        self.padded = (y + self.kernel[0] - 1, x + self.kernel[1] - 1)
        self.out_size = (-(-y // self.strides[0]), -(-x // self.strides[1]))


def _im2col(image: np.ndarray, g: _Geometry) -> np.ndarray:
    """The (c*m*n, batch*out_y*out_x) matrix whose column holds the padded input window of one
    output pixel, rows ordered (channel, kernel row, kernel column) like the flattened weights."""
    (m, n), (sy, sx), (top, left), (y, x) = g.kernel, g.strides, g.before, g.size
    padded = np.zeros((g.batch, g.channels, *g.padded), dtype=image.dtype)
    padded[:, :, top : top + y, left : left + x] = image
    # (batch, c, y, x, m, n) view of every m x n window, subsampled by the strides
    windows = sliding_window_view(padded, (m, n), axis=(2, 3))[:, :, ::sy, ::sx]
    return np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3)).reshape(g.channels * m * n, -1)


def _input_gradient(error: np.ndarray, kernel: np.ndarray, g: _Geometry) -> np.ndarray:
    """Gradient w.r.t. the input (batch, c, y, x) for ``error`` (batch, k, out_y, out_x).

    Every padded input plane (y + m - 1, x + n - 1) of one channel is laid end to end in one
    flat row of length Q = batch * padded_y * padded_x. The error is spread to the same layout
    (zero except at the strided output positions). Then input pixel p + offset(i, j) receives
    sum_k W[k, c, i, j] * error[k, p]: one (c*m*n, k) x (k, Q) matrix product, followed by
    one shifted add of a contiguous (c, Q) block per kernel offset (i, j). Contributions
    never cross a plane: a nonzero error sits at most (out - 1) * stride from its plane's
    start, and the kernel reaches at most m - 1 (n - 1) further, inside the padded plane.
    """
    k, c, m, n = kernel.shape
    (sy, sx), (top, left), (y, x), (py, px) = g.strides, g.before, g.size, g.padded
    plane = py * px
    q_size = g.batch * plane
    spread = np.zeros((k, g.batch, py, px), dtype=error.dtype)
    spread[:, :, : g.out_size[0] * sy : sy, : g.out_size[1] * sx : sx] = error.transpose(1, 0, 2, 3)
    # rows ordered (kernel row, kernel column, channel) so each offset's block is contiguous
    contributions = kernel.transpose(2, 3, 1, 0).reshape(m * n * c, k) @ spread.reshape(k, q_size)
    contributions = contributions.reshape(m, n, c, q_size)
    gradient = np.zeros((c, q_size + (m - 1) * px + n - 1), dtype=error.dtype)
    for i in range(m):
        for j in range(n):
            offset = i * px + j
            gradient[:, offset : offset + q_size] += contributions[i, j]
    padded = gradient[:, :q_size].reshape(c, g.batch, py, px)
    return padded[:, :, top : top + y, left : left + x].transpose(1, 0, 2, 3)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _convolution_shape(value) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) not in (2, 3):
        raise ValueError(
            f"convolution_shape must be (channels, m) for 1-D or (channels, m, n) for 2-D, got {value!r}"
        )
    return tuple(_positive_int("convolution_shape entries", entry) for entry in value)


def _stride_shape(value, spatial_dims: int) -> tuple[int, ...]:
    """Normalise an int or a list/tuple of 1 or 2 strides to one stride per spatial axis."""
    entries = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if not isinstance(entries, (list, tuple, np.ndarray)) or len(entries) not in (1, spatial_dims):
        raise ValueError(
            f"stride_shape must be an int or a list/tuple of 1"
            f"{' or 2' if spatial_dims == 2 else ''} entries for a {spatial_dims}-D convolution, "
            f"got {value!r}"
        )
    strides = tuple(_positive_int("stride_shape entries", entry) for entry in entries)
    return strides * spatial_dims if len(strides) == 1 else strides
