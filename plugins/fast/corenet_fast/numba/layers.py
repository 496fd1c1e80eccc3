"""corenet-fast's Pooling, BatchNormalization and LSTM with compiled kernels where they pay.

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

from corenet.layers import pooling as reference_pooling
from corenet.shapes import check_error, check_input
from corenet_fast import batchnorm as fast_batchnorm
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
    """BatchNormalization with one compiled pass per channel in each direction."""

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


class Pooling(reference_pooling.Pooling):
    """Max pooling whose 2×2 windows with stride 2 run compiled (other shapes: the reference code)."""

    compiled_dtypes = ("float64", "float32")
    transient = (*reference_pooling.Pooling.transient, "_compiled")

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (4,), "(batch, channels, y, x)")
        compiled = None
        if self.pooling_shape == self.stride_shape == (2, 2) and min(x.shape[2:]) >= 2:
            compiled = _kernels("pooling", x.dtype, self.compiled_dtypes)
        self._compiled = None
        if compiled is None:
            return super().forward(x)
        batch, channels, height, width = x.shape
        shape = (batch, channels, height // 2, width // 2)
        output = np.empty(shape, dtype=x.dtype)
        argmax = np.empty(shape, dtype=np.uint8)
        compiled.forward(np.ascontiguousarray(x), output, argmax)
        self._argmax, self._input_shape, self._dtype = argmax, x.shape, x.dtype
        self._compiled = compiled
        return output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        compiled = getattr(self, "_compiled", None)
        if compiled is None:
            return super().backward(error_tensor)
        expected = (*self._input_shape[:2], *self._argmax.shape[2:])
        error = check_error(self, error_tensor, expected).astype(self._dtype, copy=False)
        height, width = self._input_shape[2:]
        covered = height % 2 == 0 and width % 2 == 0  # else the last row or column gets no error: zeros
        gradient = (np.empty if covered else np.zeros)(self._input_shape, dtype=self._dtype)
        compiled.backward(np.ascontiguousarray(error), self._argmax, gradient)
        return gradient
