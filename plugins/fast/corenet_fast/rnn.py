"""The fast Elman RNN: the reference RNN's arithmetic with every step's arrays preallocated.

Same constructor, attributes and results as :class:`corenet_recurrent.rnn.RNN`.
Only the recurrence loops over time (three NumPy calls per step forward and
backward, no allocation inside the loop); the input projection, the output head
and every weight gradient are single matrix products over all steps.
"""

from __future__ import annotations

import numpy as np
from corenet_recurrent import rnn as reference

from corenet_fast.recurrent import Buffers


class _Workspace:
    """Scratch buffers for one sequence length and dtype, reused across calls.

    ``stacked`` (time + 1, input + hidden + 1): row t is [x_t, h_{t-1}, 1]; row
    ``time`` holds h_T in its hidden columns. The weight gradient is then one
    product ``stacked[:time].T @ delta``.
    """

    def __init__(self, time: int, input_size: int, hidden_size: int, dtype: np.dtype) -> None:
        self.stacked = np.zeros((time + 1, input_size + hidden_size + 1), dtype=dtype)
        self.stacked[:, -1] = 1.0
        self.hidden = self.stacked[:, input_size : input_size + hidden_size]  # (time + 1, hidden) view
        self.projection = np.empty((time, hidden_size), dtype=dtype)
        # delta[t] = dL/d(pre-activation at t); row ``time`` stays 0 so the loop needs no special case.
        self.delta = np.zeros((time + 1, hidden_size), dtype=dtype)
        self.derivative = np.empty((time, hidden_size), dtype=dtype)
        self.scratch = np.empty(hidden_size, dtype=dtype)


class RNN(Buffers, reference.RNN):
    """The reference RNN with reused buffers and allocation-free steps (see the module docstring)."""

    workspace_class = _Workspace
    transient = (*reference.RNN.transient, *Buffers.fast_transient)

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        """(time, input_size) -> (time, output_size); hidden state from zeros or the carried one."""
        x = self.check_sequence(input_tensor)
        time, n_in = x.shape
        weights, output_weights = self.parameters(x.dtype)
        ws = self.buffers(time, x.dtype)
        state = self.initial_state(x.dtype)
        hidden = ws.hidden
        hidden[0] = 0.0 if state is None else state[0]
        ws.stacked[:time, :n_in] = x
        # The input part of every step's pre-activation (bias included) in one product.
        projection = ws.projection
        np.matmul(x, weights[:n_in], out=projection)
        projection += weights[-1]
        recurrent_t = np.ascontiguousarray(weights[n_in:-1].T)  # W_h^T @ h is the faster BLAS form
        dot, add, tanh = np.dot, np.add, np.tanh  # outputs passed positionally: a little faster
        for previous, current, projected in zip(hidden[:-1], hidden[1:], projection):
            dot(recurrent_t, previous, current)
            add(current, projected, current)
            tanh(current, current)
        self._state = (hidden[time].copy(),)
        self._used = (weights, output_weights)
        return self.head_forward(hidden[1:], output_weights)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        """Full BPTT over the last sequence; returns dL/dx (time, input_size) and updates both weight sets."""
        error = self.check_output_error(error_tensor)
        weights, output_weights = self._used
        ws = self._workspace
        time = error.shape[0]
        n_in = self.input_size
        hidden = ws.hidden
        delta = ws.delta
        gradient_output_weights = self.head_backward_into(error, hidden[1:], output_weights, delta[:time])
        derivative = ws.derivative  # tanh' = 1 - h^2 for every step at once
        np.multiply(hidden[1:], hidden[1:], out=derivative)
        np.subtract(1.0, derivative, out=derivative)
        recurrent = np.ascontiguousarray(weights[n_in:-1])
        scratch = ws.scratch
        dot, add, multiply = np.dot, np.add, np.multiply
        # delta_t = (dL/dh_t from the head + delta_{t+1} @ W_h^T) * (1 - h_t^2), from the last step back.
        for later, current, slope in zip(delta[::-1], delta[-2::-1], derivative[::-1]):
            dot(recurrent, later, scratch)
            add(current, scratch, current)
            multiply(current, slope, current)
        deltas = delta[:time]
        gradient_weights = ws.stacked[:time].T @ deltas  # rows [x, h, bias], summed over time
        input_error = deltas @ weights[:n_in].T
        self.finish_backward(gradient_weights, gradient_output_weights)
        return input_error
