"""The fast LSTM: the reference LSTM's arithmetic with reordered gates and preallocated buffers.

Same constructor, attributes (the API's gate order in ``weights``) and results as
:class:`corenet_recurrent.lstm.LSTM`.

    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of [x_t, h_{t-1}, 1] @ W   (PyTorch's gate order)
    c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t),   y_t = sigmoid([h_t, 1] @ W_y)

Speed: internally the gate blocks are reordered to (o, i, f, g) and the sigmoid
blocks' weights halved, so one ``tanh`` over all 4*hidden pre-activations plus
``0.5 * t + 0.5`` gives every gate (sigmoid(z) = (1 + tanh(z / 2)) / 2). A step's
row of the gate buffer is [o, i, f, g, c_{t-1}], so (i, f) * (g, c_{t-1}) is one
multiply of two adjacent slices. Forward takes one matrix-vector product and
eight element-wise calls per step, backward one product and four; everything
else is a product over all steps.
"""

from __future__ import annotations

import numpy as np
from corenet_recurrent import lstm as reference

from corenet_fast.recurrent import Buffers

#: internal block j holds the API (PyTorch) block INTERNAL[j]: (o, i, f, g) from (i, f, g, o)
INTERNAL = (3, 0, 1, 2)
#: API block b sits at internal block TO_API[b]
TO_API = (1, 2, 3, 0)
_HALF = np.array(0.5)  # a 0-d array: NumPy converts it faster than a Python float


class _Workspace:
    """Scratch buffers for one sequence length and dtype, reused across calls."""

    def __init__(self, time: int, input_size: int, hidden_size: int, dtype: np.dtype) -> None:
        h = hidden_size
        # row t: [x_t, h_{t-1}, 1]; row ``time`` holds h_T. The weight gradient is stacked[:time].T @ delta.
        self.stacked = np.zeros((time + 1, input_size + h + 1), dtype=dtype)
        self.stacked[:, -1] = 1.0
        self.hidden = self.stacked[:, input_size : input_size + h]
        self.projection = np.empty((time, 4 * h), dtype=dtype)
        # row t: gate activations [o, i, f, g] of step t, then c_{t-1}; row ``time`` holds c_T.
        self.gates = np.zeros((time + 1, 5 * h), dtype=dtype)
        self.cell_tanh = np.empty((time, h), dtype=dtype)
        self.pair = np.empty(2 * h, dtype=dtype)
        # row t: [dL/dc_t, dL/d(pre-activations) o, i, f, g, dL/dc_t * f_t]; row ``time`` stays 0.
        self.delta = np.zeros((time + 1, 6 * h), dtype=dtype)
        self.head_error = np.empty((time, h), dtype=dtype)
        self.coef_out = np.empty((time, 2, h), dtype=dtype)  # [o (1 - tanh(c)^2), tanh(c) o (1 - o)]
        # [g i (1 - i), c_prev f (1 - f), i (1 - g^2), f]
        self.coef_cell = np.empty((time, 4, h), dtype=dtype)
        self.scratch = np.empty((time, h), dtype=dtype)
        self.hidden_delta = np.empty(h, dtype=dtype)


class LSTM(Buffers, reference.LSTM):
    """The reference LSTM with reordered, halved gate weights and reused buffers (see the module docstring)."""

    workspace_class = _Workspace
    transient = (*reference.LSTM.transient, *Buffers.fast_transient)

    def _reorder(self, array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
        """Permute the four hidden-wide column blocks of ``array`` (rows, 4 * hidden) (a copy)."""
        rows = array.shape[0]
        h = self.hidden_size
        return array.reshape(rows, 4, h)[:, order].reshape(rows, 4 * h)

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        """(time, input_size) -> (time, output_size); states from zeros or the carried ones."""
        x = self.check_sequence(input_tensor)
        time, n_in = x.shape
        h = self.hidden_size
        weights, output_weights = self.parameters(x.dtype)
        internal = self._reorder(weights, INTERNAL)
        scaled = internal.copy()
        scaled[:, : 3 * h] *= 0.5  # sigmoid(z) = 0.5 + 0.5 tanh(z / 2)
        ws = self.buffers(time, x.dtype)
        hidden, gates = ws.hidden, ws.gates
        state = self.initial_state(x.dtype)
        if state is None:
            hidden[0] = 0.0
            gates[0, 4 * h :] = 0.0
        else:
            hidden[0], gates[0, 4 * h :] = state
        ws.stacked[:time, :n_in] = x
        projection = ws.projection  # input part of every step's pre-activations, bias included
        np.matmul(x, scaled[:n_in], out=projection)
        projection += scaled[-1]
        recurrent_t = np.ascontiguousarray(scaled[n_in:-1].T)  # W_h^T @ h is the faster BLAS form
        rows = gates.reshape(time + 1, 5, h)
        pair = ws.pair
        first, second = pair[:h], pair[h:]
        half = _HALF
        dot, add, multiply, tanh = np.dot, np.add, np.multiply, np.tanh  # outputs passed positionally: a little faster
        for previous, current, projected, pre, sig, in_forget, cand_cell, cell, out_gate, cell_t in zip(
            hidden[:-1],
            hidden[1:],
            projection,
            gates[:time, : 4 * h],  # pre-activations, then activations in place
            gates[:time, : 3 * h],  # the sigmoid gates (o, i, f)
            gates[:time, h : 3 * h],  # (i, f)
            gates[:time, 3 * h :],  # (g, c_{t-1})
            rows[1:, 4],  # c_t, stored as the next row's c_{t-1}
            rows[:time, 0],
            ws.cell_tanh,
        ):
            dot(recurrent_t, previous, pre)
            add(pre, projected, pre)
            tanh(pre, pre)
            multiply(sig, half, sig)
            add(sig, half, sig)
            multiply(in_forget, cand_cell, pair)  # (i g, f c_{t-1})
            add(first, second, cell)
            tanh(cell, cell_t)
            multiply(out_gate, cell_t, current)
        self._state = (hidden[time].copy(), gates[time, 4 * h :].copy())
        self._used = (internal, output_weights)
        return self.head_forward(hidden[1:], output_weights)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        """Full BPTT over the last sequence; returns dL/dx (time, input_size) and updates both weight sets."""
        error = self.check_output_error(error_tensor)
        internal, output_weights = self._used
        ws = self._workspace
        time = error.shape[0]
        n_in, h = self.input_size, self.hidden_size
        hidden = ws.hidden
        gradient_output_weights = self.head_backward_into(error, hidden[1:], output_weights, ws.head_error)

        # Everything that does not depend on the recurrence, for all steps at once.
        rows = ws.gates.reshape(time + 1, 5, h)[:time]
        out_gate, in_gate, forget, cand, cell_prev = (rows[:, k] for k in range(5))
        _coefficients(ws.cell_tanh, out_gate, in_gate, forget, cand, cell_prev, ws)

        delta = ws.delta
        slots = delta.reshape(time + 1, 6, h)
        recurrent = internal[n_in:-1]  # (hidden, 4 * hidden), C-contiguous
        hidden_delta = ws.hidden_delta
        dot, add, multiply = np.dot, np.add, np.multiply
        # dh_t = head_t + W_h delta_{t+1};  [dh A, d o] = dh * coef_out;  dc_t = dh A + dc_{t+1} f_{t+1};
        # [d i, d f, d g, dc_t f_t] = dc_t * coef_cell  (the last block is the next iteration's carry)
        for later, head, c_out, out_slots, cell, carry, c_cell, cell_slots in zip(
            delta[::-1, h : 5 * h],
            ws.head_error[::-1],
            ws.coef_out[::-1],
            slots[time - 1 :: -1, 0:2],  # (dc_t so far, d o)
            slots[time - 1 :: -1, 0],  # dc_t
            slots[::-1, 5],  # dc_{t+1} f_{t+1}
            ws.coef_cell[::-1],
            slots[time - 1 :: -1, 2:6],  # (d i, d f, d g, dc_t f_t)
        ):
            dot(recurrent, later, hidden_delta)
            add(hidden_delta, head, hidden_delta)
            multiply(hidden_delta, c_out, out_slots)
            add(cell, carry, cell)
            multiply(cell, c_cell, cell_slots)

        deltas = delta[:time, h : 5 * h]
        gradient_weights = self._reorder(ws.stacked[:time].T @ deltas, TO_API)  # summed over time
        input_error = deltas @ internal[:n_in].T
        self.finish_backward(gradient_weights, gradient_output_weights)
        return input_error


def _coefficients(cell_t, out_gate, in_gate, forget, cand, cell_prev, ws: _Workspace) -> None:
    """Fill ws.coef_out and ws.coef_cell (see _Workspace) for all steps, without temporaries."""
    tmp = ws.scratch
    out, cell = ws.coef_out, ws.coef_cell
    np.multiply(cell_t, cell_t, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    np.multiply(out_gate, tmp, out=out[:, 0])  # o (1 - tanh(c)^2)
    np.subtract(1.0, out_gate, out=tmp)
    np.multiply(tmp, out_gate, out=tmp)
    np.multiply(tmp, cell_t, out=out[:, 1])  # tanh(c) o (1 - o)
    np.subtract(1.0, in_gate, out=tmp)
    np.multiply(tmp, in_gate, out=tmp)
    np.multiply(tmp, cand, out=cell[:, 0])  # g i (1 - i)
    np.subtract(1.0, forget, out=tmp)
    np.multiply(tmp, forget, out=tmp)
    np.multiply(tmp, cell_prev, out=cell[:, 1])  # c_prev f (1 - f)
    np.multiply(cand, cand, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    np.multiply(tmp, in_gate, out=cell[:, 2])  # i (1 - g^2)
    cell[:, 3] = forget
