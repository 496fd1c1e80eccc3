"""The fast Conv: the reference layer's arithmetic in a cache-friendly layout with reused buffers.

Same constructor, attributes and results as :class:`corenet.layers.conv.Conv`
(which explains the math); only forward/backward differ.

Internally images are batch-last, (c, y, x, batch), so the im2col copy and the
col2im additions move runs of out_x * batch contiguous numbers rather than rows of
out_x, which NumPy does much faster. The price is turning the (k, y, x, batch)
product back into (batch, k, y, x). With a single input channel (a network's first
layer, e.g. LeNet's) the im2col copy costs about the same either way, so such
layers keep the batch first, (batch, c, y, x), and use one im2col matrix per image,
(batch, c*m*n, y*x): the products are then batched over the images (``np.matmul``
on stacks), the output comes out as (batch, k, y*x) and the error goes in as it
is, with no layout copy at all. The large intermediates live in a per-layer
workspace reused from call to call (one im2col-sized matrix serves forward and
backward): allocating them afresh each step made the system hand pages back and
fault them in again, which cost as much as the arithmetic. Output and input
gradient are fresh C-contiguous (batch, ...) arrays (copies, never workspace views).
"""

from __future__ import annotations

import contextlib

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from corenet.layers import conv as reference
from corenet.shapes import check_error


class Conv(reference.Conv):
    """Conv with a batch-last layout and a reused workspace (see the module docstring)."""

    transient = (*reference.Conv.transient, "_geometry", "_workspace")

    def __init__(self, stride_shape, convolution_shape, num_kernels: int) -> None:
        super().__init__(stride_shape, convolution_shape, num_kernels)
        self._geometry = None  # _Geometry of the last forward pass
        self._workspace = None  # _Workspace, created by the first forward

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = self._check_input(input_tensor)
        weights, bias = self._parameters(x.dtype)
        if self._one_d:
            x = x[:, :, None, :]
        if self._workspace is None:
            self._workspace = _Workspace()
        self._geometry = g = _Geometry(x.shape, self._kernel_size, self._strides, x.dtype)
        # zero-padded input (see _Geometry.image); only the interior is ever written, the border stays 0
        padded = self._workspace.get("input", g.image(g.padded), g.dtype)
        padded[g.image_interior] = x if g.batch_first else x.transpose(1, 2, 3, 0)
        cols = _im2col(padded, g, self._workspace)
        k, pixels = self.num_kernels, g.out_size[0] * g.out_size[1]
        if g.batch_first:  # one product per image: (k, c*m*n) @ (batch, c*m*n, pixels) -> fresh (batch, k, pixels)
            output = np.matmul(weights.reshape(k, -1), cols)
        else:
            output = self._workspace.get("output", (k, g.columns), g.dtype)
            np.matmul(weights.reshape(k, -1), cols, out=output)  # (k, columns)
        output += bias[:, None]  # kernels are the second-to-last axis either way
        if not g.batch_first:
            # (k, pixels, batch) to (batch, k, pixels) in two cache-friendly steps: (k, batch, pixels) first
            by_kernel = self._workspace.get("output_by_kernel", (k, g.batch, pixels), g.dtype)
            by_kernel[...] = output.reshape(k, pixels, g.batch).transpose(0, 2, 1)
            output = by_kernel.transpose(1, 0, 2).copy()
        output = output.reshape(g.batch, k, *g.out_size)
        return output[:, :, 0, :] if self._one_d else output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray | None:
        g = self._geometry
        expected = None
        if g is not None:
            expected = (g.batch, self.num_kernels, *(g.out_size[1:] if self._one_d else g.out_size))
        error = check_error(self, error_tensor, expected)
        if self._one_d:
            error = error[:, :, None, :]
        weights, _ = self._parameters(g.dtype)
        if g.batch_first:  # (batch, k, pixels): the error as it comes, one matrix per image
            error_matrix = error.reshape(g.batch, self.num_kernels, -1).astype(g.dtype, copy=False)
        else:  # (k, columns), columns ordered like the im2col matrix's
            error_matrix = self._workspace.get("error", (self.num_kernels, g.columns), g.dtype)
            error_matrix.reshape(self.num_kernels, *g.column_axes)[...] = error.transpose(1, 2, 3, 0)
        cols = self._workspace.get("matrix")
        if not self._workspace.matrix_holds_im2col:  # a second backward: rebuild it from the input
            cols = _im2col(self._workspace.get("input"), g, self._workspace)
        if g.batch_first:  # sum over the images of E_image @ cols_image^T
            gradient_weights = np.matmul(error_matrix, cols.transpose(0, 2, 1)).sum(axis=0)
            self.gradient_bias = error_matrix.sum(axis=(0, 2))
        else:  # (cols @ E^T)^T is E @ cols^T; BLAS runs this orientation faster
            gradient_weights = (cols @ error_matrix.T).T
            self.gradient_bias = error_matrix.sum(axis=1)
        self.gradient_weights = gradient_weights.reshape(self.weights_shape)
        error_previous = None
        if self.needs_input_gradient:  # False only for a network's first layer (see BaseLayer)
            error_previous = _input_gradient(error_matrix, weights, g, self._workspace)
            if self._one_d:
                error_previous = error_previous[:, :, 0, :]
        self.apply_update("weights", self.gradient_weights)
        self.apply_update("bias", self.gradient_bias)
        return error_previous


class _Geometry:
    """Sizes of one 2-D pass: input (batch, c, y, x), kernel (m, n), strides (sy, sx).

    'same' padding puts k//2 zeros before and (k-1)//2 after an axis of kernel length k
    (as scipy.signal.correlate 'same'); the padded image is (y + m - 1, x + n - 1) and
    the output (ceil(y / sy), ceil(x / sx)).

    ``batch_first``: internal images are (batch, c, y, x) (single input channel) rather
    than (c, y, x, batch), and the im2col matrix is one per image, (batch, rows,
    out_y*out_x), rather than one (rows, columns) matrix with columns ordered
    (out_y, out_x, batch).
    """

    def __init__(self, input_shape, kernel, strides, dtype) -> None:
        self.batch, self.channels, y, x = input_shape
        self.size = (y, x)
        self.kernel = tuple(kernel)
        self.strides = tuple(strides)
        self.dtype = dtype
        self.before = tuple(k // 2 for k in self.kernel)
        self.padded = (y + self.kernel[0] - 1, x + self.kernel[1] - 1)
        self.interior = tuple(slice(before, before + size) for before, size in zip(self.before, self.size))
        self.out_size = (-(-y // self.strides[0]), -(-x // self.strides[1]))
        self.columns = self.out_size[0] * self.out_size[1] * self.batch  # im2col columns
        self.rows = self.channels * self.kernel[0] * self.kernel[1]  # im2col rows
        self.batch_first = self.channels == 1
        self.image_interior = (slice(None), slice(None), *self.interior) if self.batch_first else (
            slice(None), *self.interior)
        # the im2col columns as axes: (batch, out_y, out_x) or (out_y, out_x, batch)
        self.column_axes = (self.batch, *self.out_size) if self.batch_first else (*self.out_size, self.batch)

    def image(self, size: tuple[int, int]) -> tuple[int, ...]:
        """Shape of an internal image of spatial ``size``: (batch, c, *size) or (c, *size, batch)."""
        return (self.batch, self.channels, *size) if self.batch_first else (self.channels, *size, self.batch)


class _Workspace:
    """Named scratch arrays kept between calls; one is replaced only when its shape or dtype changes.

    ``matrix`` (c*m*n, columns) holds the im2col matrix after forward and the input-gradient
    contributions after backward; ``matrix_holds_im2col`` says which.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.matrix_holds_im2col = False

    def get(self, name: str, shape: tuple[int, ...] | None = None, dtype=None) -> np.ndarray:
        """The array ``name``; with ``shape`` and ``dtype``, a new zero array if it does not match."""
        array = self.arrays.get(name)
        if shape is not None and (array is None or array.shape != shape or array.dtype != dtype):
            array = self.arrays[name] = np.zeros(shape, dtype=dtype)
        return array


def _im2col(padded: np.ndarray, g: _Geometry, workspace: _Workspace) -> np.ndarray:
    """The (c*m*n, columns) matrix whose column holds the padded input window of one output
    pixel, or for ``g.batch_first`` one such (c*m*n, out_y*out_x) matrix per image; rows ordered
    (channel, kernel row, kernel column) like the flattened weights. ``padded`` is the padded
    input image (see _Geometry.image); the matrix is the workspace's."""
    (m, n), (sy, sx) = g.kernel, g.strides
    if g.batch_first:  # (batch, c, y, x, m, n) view of every m x n window, strided
        cols = workspace.get("matrix", (g.batch, g.rows, g.columns // g.batch), g.dtype)
        windows = sliding_window_view(padded, (m, n), axis=(2, 3))[:, :, ::sy, ::sx]
        cols.reshape(g.batch, g.channels, m, n, *g.out_size)[...] = windows.transpose(0, 1, 4, 5, 2, 3)
    else:  # (c, y, x, batch, m, n)
        cols = workspace.get("matrix", (g.rows, g.columns), g.dtype)
        target = cols.reshape(g.channels, m, n, *g.column_axes)
        windows = sliding_window_view(padded, (m, n), axis=(1, 2))[:, ::sy, ::sx]
        target[...] = windows.transpose(0, 4, 5, 1, 2, 3)
    workspace.matrix_holds_im2col = True
    return cols


def _input_gradient(error_matrix: np.ndarray, kernel: np.ndarray, g: _Geometry, workspace: _Workspace) -> np.ndarray:
    """Gradient w.r.t. the input, (batch, c, y, x), for the (k, columns) error ((batch, k, pixels) if
    ``g.batch_first``).

    One product gives, for every kernel offset (i, j), channel c and output pixel,
    sum_k W[k, c, i, j] * error[k, pixel]; col2im adds each offset's block to the
    padded input window it came from, then the padding is cut off.
    """
    k, c, m, n = kernel.shape
    (sy, sx), (out_y, out_x) = g.strides, g.out_size
    # overwrites the im2col matrix (same size), which the weight gradient no longer needs
    contributions = workspace.get("matrix")
    workspace.matrix_holds_im2col = False
    # rows ordered (kernel row, kernel column, channel): each offset's block is contiguous
    np.matmul(kernel.transpose(2, 3, 1, 0).reshape(m * n * c, k), error_matrix, out=contributions)
    if g.batch_first:  # offset (i, j) -> (batch, c, out_y, out_x), added into (batch, c, y, x)
        by_offset = contributions.reshape(g.batch, m, n, c, out_y, out_x).transpose(1, 2, 0, 3, 4, 5)
    else:  # offset (i, j) -> (c, out_y, out_x, batch), added into (c, y, x, batch)
        by_offset = contributions.reshape(m, n, c, out_y, out_x, g.batch)
    padded = workspace.get("gradient", g.image(g.padded), g.dtype)
    padded.fill(0)
    axes = (2, 3) if g.batch_first else (1, 2)  # spatial axes of an internal image
    with _small_ufunc_buffer():
        for i in range(m):
            for j in range(n):
                window = [slice(None)] * 4
                window[axes[0]] = slice(i, i + (out_y - 1) * sy + 1, sy)
                window[axes[1]] = slice(j, j + (out_x - 1) * sx + 1, sx)
                padded[tuple(window)] += by_offset[i, j]
    interior = padded[g.image_interior]
    # fresh, C-contiguous (batch, c, y, x)
    return interior.copy() if g.batch_first else interior.transpose(3, 0, 1, 2).copy()


@contextlib.contextmanager
def _small_ufunc_buffer():
    """Run the block with NumPy's ufunc buffer at 1024 elements (default 8192).

    NumPy copies strided operands through this buffer when their contiguous runs are
    shorter than about half of it; col2im's runs (out_x * batch numbers) usually are,
    and a smaller buffer lets them be added in place, about twice as fast.
    """
    previous = np.setbufsize(1024)
    try:
        yield
    finally:
        np.setbufsize(previous)
