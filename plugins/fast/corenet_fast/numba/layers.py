"""corenet-fast's Conv, BatchNormalization and LSTM with compiled kernels where they pay.

Each class subclasses the NumPy fast layer of the same name and, in ``forward``, asks
:func:`corenet_fast.numba.kernels` for its kernel module. When numba is missing,
``CORENET_FAST_NUMBA=0`` is set, or the input is a case the kernels do not cover
(see ``compiled_dtypes`` and each class), the NumPy fast layer runs instead;
``backward`` follows whichever path the last ``forward`` took. Results agree with the
reference layers (plugins/fast/tests/test_numba_kernels.py). Importing this module
does not import numba.
"""

from __future__ import annotations

import numpy as np

from corenet.shapes import check_error
from corenet_fast import batchnorm as fast_batchnorm
from corenet_fast import conv as fast_conv
from corenet_fast import lstm as fast_lstm
from corenet_fast.numba import kernels


def _kernels(name: str, dtype: np.dtype, dtypes: tuple[str, ...]):
    """The kernel module ``name`` if ``dtype`` is one it is used for and it is available, else None."""
    return kernels(name) if np.dtype(dtype).name in dtypes else None


class _Buffers:
    """Scratch arrays kept while their key (shapes, dtype) stays the same; new ones are zero."""

    def __init__(self, key: tuple, **shapes: tuple[int, ...]) -> None:
        self.key = key
        dtype = key[-1]
        for name, shape in shapes.items():
            setattr(self, name, np.zeros(shape, dtype=dtype))


class BatchNormalization(fast_batchnorm.BatchNormalization):
    """BatchNormalization with one compiled pass per channel in each direction, channels in parallel."""

    compiled_dtypes = ("float64", "float32")
    transient = (*fast_batchnorm.BatchNormalization.transient, "_compiled")

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = self.check_input(input_tensor)
        compiled = _kernels("batchnorm", x.dtype, self.compiled_dtypes)
        self._compiled = None
        if compiled is None:
            return super().forward(x)
        view = np.ascontiguousarray(x.reshape(x.shape[0], self.channels, -1))  # (b, c, n)
        gamma, beta = self.parameter("weights", np.float64), self.parameter("bias", np.float64)
        out = np.empty(view.shape, dtype=x.dtype)
        if self.testing_phase:
            mean = self.moving_mean.astype(np.float64)
            scale = 1.0 / np.sqrt(self.moving_variance.astype(np.float64) + self.epsilon)
            compiled.apply(view, mean, scale, gamma, beta, out)
        else:
            mean, variance = np.empty(self.channels), np.empty(self.channels)
            compiled.train_forward(view, gamma, beta, self.epsilon, out, mean, variance)
            self.update_moving_averages(mean, variance)
            scale = 1.0 / np.sqrt(variance + self.epsilon)
        self._cache = (x.shape,)  # for the parent's checks and messages
        self._compiled = (compiled, view, mean, scale, self.testing_phase)
        return out.reshape(x.shape)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        if getattr(self, "_compiled", None) is None:
            return super().backward(error_tensor)
        shape = self._cache[0]
        error = check_error(self, error_tensor, shape)
        compiled, view, mean, scale, testing = self._compiled
        error_view = np.ascontiguousarray(error.reshape(view.shape), dtype=view.dtype)
        gradient = np.empty(view.shape, dtype=view.dtype)
        gradient_weights, gradient_bias = np.empty(self.channels), np.empty(self.channels)
        compiled.backward(error_view, view, mean, scale, self.parameter("weights", np.float64), not testing,
                          gradient, gradient_weights, gradient_bias)
        self.gradient_weights = gradient_weights.astype(view.dtype, copy=False)
        self.gradient_bias = gradient_bias.astype(view.dtype, copy=False)
        self.apply_update("weights", self.gradient_weights)
        self.apply_update("bias", self.gradient_bias)
        return gradient.reshape(shape)


class LSTM(fast_lstm.LSTM):
    """LSTM whose float32 recurrence runs in one compiled call per direction (float64: the NumPy fast layer)."""

    compiled_dtypes = ("float32",)
    transient = (*fast_lstm.LSTM.transient, "_compiled", "_compiled_buffers")

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = self.check_sequence(input_tensor)
        compiled = _kernels("lstm", x.dtype, self.compiled_dtypes)
        self._compiled = None
        if compiled is None:
            return super().forward(x)
        time, inputs = x.shape
        size = self.hidden_size
        weights, output_weights = self.parameters(x.dtype)
        weights = np.ascontiguousarray(weights)
        key = (time, inputs, size, x.dtype)
        buffers = getattr(self, "_compiled_buffers", None)
        if buffers is None or buffers.key != key:
            buffers = self._compiled_buffers = _Buffers(
                key, stacked=(time + 1, inputs + size + 1), cell=(time + 1, size), gates=(time, 4 * size),
                cell_tanh=(time, size), delta=(time, 4 * size))
            buffers.stacked[:, -1] = 1.0
        stacked, cell = buffers.stacked, buffers.cell
        stacked[:time, :inputs] = x
        state = self.initial_state(x.dtype)
        stacked[0, inputs : inputs + size] = 0.0 if state is None else state[0]
        cell[0] = 0.0 if state is None else state[1]
        output = np.empty((time, self.output_size), dtype=x.dtype)
        compiled.forward(stacked, np.ascontiguousarray(weights.T), np.ascontiguousarray(output_weights), cell,
                         buffers.gates, buffers.cell_tanh, output)
        self._state = (stacked[time, inputs : inputs + size].copy(), cell[time].copy())
        self._output = output
        self._compiled = (compiled, buffers, weights, np.ascontiguousarray(output_weights))
        return output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        if getattr(self, "_compiled", None) is None:
            return super().backward(error_tensor)
        error = self.check_output_error(error_tensor)
        compiled, buffers, weights, output_weights = self._compiled
        error = np.ascontiguousarray(error, dtype=weights.dtype)
        time = error.shape[0]
        gradient_output_weights = np.empty(self.output_weights_shape, dtype=weights.dtype)
        compiled.backward(error, buffers.stacked, weights, output_weights, buffers.cell, buffers.gates,
                          buffers.cell_tanh, self._output, buffers.delta, gradient_output_weights)
        gradient_weights = buffers.stacked[:time].T @ buffers.delta  # (n + h + 1, 4h), summed over time
        input_error = buffers.delta @ weights[: self.input_size].T
        self.finish_backward(gradient_weights, gradient_output_weights)
        return input_error


class Conv(fast_conv.Conv):
    """Conv with compiled direct convolution for stride 1 (see :mod:`corenet_fast.numba.conv`)."""

    compiled_dtypes = ("float32", "float64")
    transient = (*fast_conv.Conv.transient, "_compiled", "_compiled_buffers")

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = self._check_input(input_tensor)
        compiled = None
        if self._strides == (1, 1):
            compiled = _kernels("conv", x.dtype, self.compiled_dtypes)
        self._compiled = None
        if compiled is None:
            return super().forward(x)
        weights, bias = self._parameters(x.dtype)
        image = x[:, :, None, :] if self._one_d else x  # a 1-D input is a (1, x) image
        batch, channels, height, width = image.shape
        m, n = self._kernel_size
        padded_width = width + n - 1
        lead = (m - 1) * padded_width + n - 1  # zeros before the error in ``spread`` (see the kernel module)
        key = (image.shape, m, n, x.dtype)
        buffers = getattr(self, "_compiled_buffers", None)
        if buffers is None or buffers.key != key:
            buffers = self._compiled_buffers = _Buffers(
                key, padded=(batch, channels, (height + m - 1) * padded_width + n - 1),
                spread=(batch, self.num_kernels, lead + (m // 2 + height) * padded_width))
        compiled.pad(np.ascontiguousarray(image), m // 2, n // 2, padded_width, buffers.padded)
        kernel = np.ascontiguousarray(weights.reshape(self.num_kernels, channels, m, n))
        output = np.empty((batch, self.num_kernels, height, width), dtype=x.dtype)
        compiled.forward(buffers.padded, kernel, np.ascontiguousarray(bias), height, width, output)
        self._compiled = (compiled, buffers, image.shape, padded_width, lead)
        return output[:, :, 0, :] if self._one_d else output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray | None:
        if getattr(self, "_compiled", None) is None:
            return super().backward(error_tensor)
        compiled, buffers, (batch, channels, height, width), padded_width, lead = self._compiled
        expected = (batch, self.num_kernels, width) if self._one_d else (batch, self.num_kernels, height, width)
        error = check_error(self, error_tensor, expected)
        dtype = buffers.padded.dtype
        error = np.ascontiguousarray(error.reshape(batch, self.num_kernels, height, width), dtype=dtype)
        m, n = self._kernel_size
        weights, _ = self._parameters(dtype)
        kernel = np.ascontiguousarray(weights.reshape(self.num_kernels, channels, m, n))
        compiled.spread(error, lead, padded_width, buffers.spread)
        gradient_weights = np.empty(kernel.shape, dtype=dtype)
        compiled.weight_gradient(buffers.spread, buffers.padded, lead, padded_width, height * padded_width,
                                 gradient_weights)
        self.gradient_weights = gradient_weights.reshape(self.weights_shape)
        self.gradient_bias = error.sum(axis=(0, 2, 3))
        error_previous = None
        if self.needs_input_gradient:  # False only for a network's first layer (see BaseLayer)
            error_previous = np.empty((batch, channels, height, width), dtype=dtype)
            compiled.input_gradient(buffers.spread, kernel, lead, m // 2, n // 2, padded_width, error_previous)
            if self._one_d:
                error_previous = error_previous[:, :, 0, :]
        self.apply_update("weights", self.gradient_weights)
        self.apply_update("bias", self.gradient_bias)
        return error_previous
