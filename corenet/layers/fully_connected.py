"""FullyConnected: y = [x, 1] @ W with the bias as W's last row."""

from __future__ import annotations

import numpy as np

from corenet.base import TrainableLayer
from corenet.dtype import as_float_array, get_default_dtype
from corenet.errors import ShapeError
from corenet.resources import check_parameter_memory
from corenet.shapes import check_error, check_input, check_size, positive_int


class FullyConnected(TrainableLayer):
    """Affine layer. ``weights``: (input_size + 1, output_size), last row the bias.

    forward: (batch, input_size) -> (batch, output_size), computed in the input's floating
    dtype; the weights keep theirs (an update from a float64 batch leaves float32 weights).
    """

    transient = ("_input",)

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.output_size = positive_int("output_size", output_size)
        larger = "output_size" if self.output_size >= self.input_size else "input_size"
        check_parameter_memory("FullyConnected", larger, (self.input_size + 1) * self.output_size, get_default_dtype(),
                               f"{self.input_size + 1} x {self.output_size} weights")
        self.weights = np.random.uniform(0.0, 1.0, (self.input_size + 1, self.output_size)).astype(
            get_default_dtype(), copy=False
        )
        self.gradient_weights = None
        self._input = None

    def initialize(self, weights_initializer, bias_initializer) -> None:
        """Weight rows from ``weights_initializer``, the bias row (1, output_size) from
        ``bias_initializer``."""
        fan_in, fan_out = self.input_size, self.output_size
        weights = weights_initializer.initialize((fan_in, fan_out), fan_in, fan_out)
        bias = bias_initializer.initialize((1, fan_out), fan_in, fan_out)
        self.weights = np.concatenate(
            [np.reshape(weights, (fan_in, fan_out)), np.reshape(bias, (1, fan_out))]
        )

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (2,), "(batch, features)", _HINTS)
        check_size(self, x, 1, self.input_size, "input features")
        weights = self._weights().astype(x.dtype, copy=False)  # computes in the input's dtype
        self._input = x
        output = x @ weights[:-1]
        output += weights[-1]  # in place: no second (batch, output_size) array
        return output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray | None:
        expected = None if self._input is None else (self._input.shape[0], self.output_size)
        error = check_error(self, error_tensor, expected)
        dtype = self._input.dtype  # the forward's computation dtype; the update keeps the weights' own
        error = error.astype(dtype, copy=False)
        weights = self._weights().astype(dtype, copy=False)
        gradient = np.empty((self.input_size + 1, self.output_size), dtype=dtype)
        np.matmul(self._input.T, error, out=gradient[:-1])
        gradient[-1] = error.sum(axis=0)
        self.gradient_weights = gradient
        # None for a network's first layer, which nobody asks for an input gradient (see BaseLayer)
        error_previous = error @ weights[:-1].T if self.needs_input_gradient else None
        self.apply_update("weights", gradient)
        return error_previous

    def _weights(self) -> np.ndarray:
        """The assigned weights as an array, their shape and dtype checked."""
        weights = as_float_array(self.weights, f"{self!r}: weights")
        expected = (self.input_size + 1, self.output_size)
        if weights.shape != expected:
            raise ShapeError(
                f"{self!r}: weights must have shape {expected} (input_size + 1 rows, the last the bias), "
                f"got {weights.shape}"
            )
        return weights

    def __repr__(self) -> str:
        return f"FullyConnected({self.input_size}, {self.output_size})"


_HINTS = {
    1: "; a single sample needs a batch axis, e.g. x[None, :]",
    **{ndim: "; put a Flatten layer before it to feed images or feature maps" for ndim in (3, 4, 5)},
}

