"""What RNN and LSTM share: sizes, parameters, carried state, input checks and the sigmoid output head.

A recurrent layer reads one sequence per call, the batch axis being time:
input (time, input_size) -> output (time, output_size). Its hidden FC acts on
the stacked vector [x_t, h_{t-1}, 1] with ``weights`` of shape
(input_size + hidden_size + 1, gates * hidden_size) (rows x, h, bias); the
output head is y_t = sigmoid([h_t, 1] @ output_weights) with ``output_weights``
of shape (hidden_size + 1, output_size) (last row bias).
"""

from __future__ import annotations

import numpy as np

from corenet.base import TrainableLayer
from corenet.dtype import get_default_dtype
from corenet.errors import ShapeError
from corenet.shapes import check_error, check_input, check_size, positive_int
from corenet_recurrent.activations import sigmoid


class RecurrentLayer(TrainableLayer):
    """Base of RNN and LSTM. Subclasses set ``gates`` and implement ``forward``/``backward``.

    Both weight sets are optimizer parameters (``weights``, ``output_weights``),
    each updated by its own copy of the optimizer.
    """

    parameter_names = ("weights", "output_weights")
    gates = 1  # FC column blocks of hidden_size
    state_parts = 1  # arrays in the carried state

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = positive_int("input_size", input_size, name)
        self.hidden_size = positive_int("hidden_size", hidden_size, name)
        self.output_size = positive_int("output_size", output_size, name)
        self._memorize = False
        # Default weights as PyTorch draws them: U(-1/sqrt(hidden), 1/sqrt(hidden)).
        bound = 1.0 / np.sqrt(self.hidden_size)
        dtype = get_default_dtype()
        self.weights = np.random.uniform(-bound, bound, self.weights_shape).astype(dtype, copy=False)
        self.output_weights = np.random.uniform(-bound, bound, self.output_weights_shape).astype(
            dtype, copy=False
        )
        self.gradient_weights = np.zeros(self.weights_shape, dtype=dtype)
        self.gradient_output_weights = np.zeros(self.output_weights_shape, dtype=dtype)
        self._state: tuple[np.ndarray, ...] | None = None  # carried (hidden[, cell]) state
        self._output = None  # y of the last forward, (time, output_size)
        self._cache = None  # what backward needs from the last forward (set by the subclass)

    # -- shapes ------------------------------------------------------------
    @property
    def weights_shape(self) -> tuple[int, int]:
        """(input_size + hidden_size + 1, gates * hidden_size)."""
        return (self.input_size + self.hidden_size + 1, self.gates * self.hidden_size)

    @property
    def output_weights_shape(self) -> tuple[int, int]:
        """(hidden_size + 1, output_size)."""
        return (self.hidden_size + 1, self.output_size)

    # -- state ---------------------------------------------------------------
    @property
    def memorize(self) -> bool:
        """True: the last state of one forward call is the first state of the next (TBPTT)."""
        return self._memorize

    @memorize.setter
    def memorize(self, value: bool) -> None:
        self._memorize = bool(value)

    @property
    def state(self) -> tuple[np.ndarray, ...] | None:
        """The carried state after the last forward: (h_T,) for RNN, (h_T, c_T) for LSTM; None after a reset.

        Assignable (a tuple of arrays of shape (hidden_size,), or None), e.g. to
        replay a sequence from a saved state.
        """
        return None if self._state is None else tuple(part.copy() for part in self._state)

    @state.setter
    def state(self, value) -> None:
        if value is None:
            self._state = None
            return
        parts = tuple(np.array(part, dtype=np.result_type(np.asarray(part), np.float32)) for part in value)
        count = self.state_parts
        if len(parts) != count or any(part.shape != (self.hidden_size,) for part in parts):
            raise ShapeError(
                f"{self!r}: state must be {count} array(s) of shape ({self.hidden_size},), "
                f"got shapes {[part.shape for part in parts]}"
            )
        self._state = parts

    def reset_state(self) -> None:
        """Forget the carried state: the next forward starts from zeros even with memorize=True."""
        self._state = None

    def initial_state(self, dtype: np.dtype) -> tuple[np.ndarray, ...] | None:
        """The carried state to start from (memorize=True and one exists), else None for zeros."""
        if self._memorize and self._state is not None:
            return tuple(np.asarray(part, dtype=dtype) for part in self._state)
        return None

    # -- parameters ------------------------------------------------------------
    def initialize(self, weights_initializer, bias_initializer) -> None:
        """Draw both FCs: weight rows with fans (rows, columns), the bias row with shape (1, columns)."""
        self.weights = _fc_weights(weights_initializer, bias_initializer, *self.weights_shape)
        self.output_weights = _fc_weights(weights_initializer, bias_initializer, *self.output_weights_shape)

    def parameters(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """The assigned ``weights`` and ``output_weights`` as ``dtype`` arrays, shapes checked."""
        weights = np.asarray(self.weights, dtype=dtype)
        output_weights = np.asarray(self.output_weights, dtype=dtype)
        for name, array, shape in (
            ("weights", weights, self.weights_shape),
            ("output_weights", output_weights, self.output_weights_shape),
        ):
            if array.shape != shape:
                raise ShapeError(f"{self!r}: {name} must have shape {shape}, got {array.shape}")
        return weights, output_weights

    # -- checks ----------------------------------------------------------------
    def check_sequence(self, input_tensor) -> np.ndarray:
        """The input as a float (time, input_size) array, or a ShapeError naming the layer."""
        x = check_input(self, input_tensor, (2,), "(time, features): one sequence, the batch axis as time")
        check_size(self, x, 1, self.input_size, "input features")
        return x

    def check_output_error(self, error_tensor) -> np.ndarray:
        """The error w.r.t. the last forward's output, shape (time, output_size)."""
        expected = None if self._output is None else self._output.shape
        return check_error(self, error_tensor, expected)

    # -- output head -------------------------------------------------------------
    def head_forward(self, hidden: np.ndarray, output_weights: np.ndarray) -> np.ndarray:
        """y = sigmoid(hidden @ W_y + b_y) for all steps in one product; hidden (time, hidden_size)."""
        self._output = sigmoid(hidden @ output_weights[:-1] + output_weights[-1])
        return self._output

    def head_backward(
        self, error: np.ndarray, hidden: np.ndarray, output_weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For the error (time, output_size) of y: the output weights' gradient (hidden_size + 1, output_size),
        summed over time, and dL/dh_t from the head, (time, hidden_size)."""
        y = self._output
        delta = error * y * (1.0 - y)  # dL/d(pre-activation), sigmoid' = y (1 - y)
        gradient = np.concatenate([hidden.T @ delta, delta.sum(axis=0, keepdims=True)])
        return gradient, delta @ output_weights[:-1].T

    def finish_backward(self, gradient_weights: np.ndarray, gradient_output_weights: np.ndarray) -> None:
        """Store both gradients and let each optimizer copy update its tensor."""
        self.gradient_weights = gradient_weights
        self.gradient_output_weights = gradient_output_weights
        self.apply_update("weights", gradient_weights)
        self.apply_update("output_weights", gradient_output_weights)

    # -- pickling ------------------------------------------------------------------
    # The last forward's results are rebuilt by the next forward.
    transient = ("_output", "_cache")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, {self.output_size})"


def _fc_weights(weights_initializer, bias_initializer, rows: int, columns: int) -> np.ndarray:
    """[W; b] for an FC with ``rows - 1`` inputs: fans (rows - 1, columns), bias shape (1, columns)."""
    fan_in = rows - 1
    weights = np.asarray(weights_initializer.initialize((fan_in, columns), fan_in, columns))
    bias = np.asarray(bias_initializer.initialize((1, columns), fan_in, columns))
    try:
        weights = _fit(weights, (fan_in, columns))
        bias = _fit(bias, (1, columns))
    except ValueError as exc:
        raise ValueError(
            f"initializer returned shapes {weights.shape} and {bias.shape}; expected "
            f"({fan_in}, {columns}) and (1, {columns})"
        ) from exc
    return np.concatenate([weights, bias]).astype(np.result_type(weights, bias, np.float32), copy=False)


def _fit(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``array`` reshaped to ``shape`` when the sizes agree, else broadcast (a scalar, a row)."""
    if array.size == shape[0] * shape[1]:
        return array.reshape(shape)
    return np.broadcast_to(array, shape)
