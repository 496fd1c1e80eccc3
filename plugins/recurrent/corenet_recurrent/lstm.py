"""LSTM: the four gates from one FC on [x_t, h_{t-1}, 1], then a sigmoid output head.

    z_t = [x_t, h_{t-1}, 1] @ W, split into four hidden-wide blocks (PyTorch's order):
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t),   y_t = sigmoid([h_t, 1] @ W_y)

Backward (BPTT) goes from the last step to the first with dh and dc arriving from
step t + 1:

    dh = dL/dh_t (head) + dh_next,   do = dh * tanh(c_t),   dc = dh * o * (1 - tanh(c_t)^2) + dc_next
    di = dc * g,  df = dc * c_{t-1},  dg = dc * i,   dc_next = dc * f
    dz = [di * i(1 - i), df * f(1 - f), dg * (1 - g^2), do * o(1 - o)],   dh_next = W_h @ dz
"""

from __future__ import annotations

import numpy as np

from corenet_recurrent.activations import sigmoid
from corenet_recurrent.base import RecurrentLayer


class LSTM(RecurrentLayer):
    """LSTM over one sequence: input (time, input_size) -> output (time, output_size).

    ``weights`` (input_size + hidden_size + 1, 4 * hidden_size), rows [x, h, bias],
    gate columns (input, forget, cell candidate, output) as in PyTorch;
    ``output_weights`` (hidden_size + 1, output_size), last row bias. With
    ``memorize`` the last hidden and cell states of a call start the next one.
    """

    gates = 4
    state_parts = 2

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        """(time, input_size) -> (time, output_size); states from zeros or the carried ones."""
        x = self.check_sequence(input_tensor)
        weights, output_weights = self.parameters(x.dtype)
        size = self.hidden_size
        state = self.initial_state(x.dtype)
        if state is None:
            h, c = np.zeros(size, dtype=x.dtype), np.zeros(size, dtype=x.dtype)
        else:
            h, c = state
        one = np.ones(1, dtype=x.dtype)
        steps = []  # per step: [x_t, h_{t-1}, 1], i, f, g, o, c_{t-1}, tanh(c_t), h_t
        for x_t in x:
            s_t = np.concatenate([x_t, h, one])
            z = s_t @ weights  # (4 * hidden,)
            gates = sigmoid(z)  # i, f and o are sigmoids (one call for all four blocks); g is a tanh
            i, f, o = gates[:size], gates[size : 2 * size], gates[3 * size :]
            g = np.tanh(z[2 * size : 3 * size])
            c_previous = c
            c = f * c_previous + i * g
            tanh_c = np.tanh(c)
            h = o * tanh_c
            steps.append((s_t, i, f, g, o, c_previous, tanh_c, h))
        self._state = (h.copy(), c.copy())
        columns = tuple(np.array(column) for column in zip(*steps))  # each quantity as a (time, ...) array
        self._cache = (*columns, weights, output_weights)
        return self.head_forward(columns[-1], output_weights)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        """Full BPTT over the last sequence; returns dL/dx (time, input_size) and updates both weight sets."""
        error = self.check_output_error(error_tensor)
        stacked, i, f, g, o, c_previous, tanh_c, hidden, weights, output_weights = self._cache
        n_in = self.input_size
        gradient_output_weights, head_error = self.head_backward(error, hidden, output_weights)
        deltas = np.zeros((len(hidden), 4 * self.hidden_size), dtype=hidden.dtype)  # dz of every step
        dh_next = np.zeros(self.hidden_size, dtype=hidden.dtype)
        dc_next = np.zeros(self.hidden_size, dtype=hidden.dtype)
        # what does not depend on the recurrence, for all steps at once: the activations' slopes
        # (sigmoid' = s(1 - s), tanh' = 1 - tanh^2) and dh_t/dc_t = o * (1 - tanh(c_t)^2)
        slope_i, slope_f, slope_g, slope_o = i * (1.0 - i), f * (1.0 - f), 1.0 - g**2, o * (1.0 - o)
        dh_dc = o * (1.0 - tanh_c**2)
        for t in reversed(range(len(hidden))):
            dh = head_error[t] + dh_next
            dc = dh * dh_dc[t] + dc_next
            di, df, dg, do = dc * g[t], dc * c_previous[t], dc * i[t], dh * tanh_c[t]
            dc_next = dc * f[t]
            deltas[t] = np.concatenate([di * slope_i[t], df * slope_f[t], dg * slope_g[t], do * slope_o[t]])
            dh_next = weights[n_in:-1] @ deltas[t]
        gradient_weights = stacked.T @ deltas  # sum over t of outer(s_t, dz_t): rows [x, h, bias]
        input_error = deltas @ weights[:n_in].T
        self.finish_backward(gradient_weights, gradient_output_weights)
        return input_error
