"""Elman RNN: h_t = tanh([x_t, h_{t-1}, 1] @ W), y_t = sigmoid([h_t, 1] @ W_y).

Forward loops over the time steps; backward is backpropagation through time,
from the last step to the first, carrying dL/dh back through the recurrence.
"""

from __future__ import annotations

import numpy as np

from corenet_recurrent.base import RecurrentLayer


class RNN(RecurrentLayer):
    """Elman RNN over one sequence: input (time, input_size) -> output (time, output_size).

    ``weights`` (input_size + hidden_size + 1, hidden_size) rows [x, h, bias];
    ``output_weights`` (hidden_size + 1, output_size), last row bias. With
    ``memorize`` the last hidden state of a call starts the next one.
    """

    gates = 1

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        """(time, input_size) -> (time, output_size); hidden state from zeros or the carried one."""
        x = self.check_sequence(input_tensor)
        weights, output_weights = self.parameters(x.dtype)
        state = self.initial_state(x.dtype)
        h = np.zeros(self.hidden_size, dtype=x.dtype) if state is None else state[0]
        one = np.ones(1, dtype=x.dtype)
        stacked, hidden = [], []  # per step: [x_t, h_{t-1}, 1] and h_t
        for x_t in x:
            s_t = np.concatenate([x_t, h, one])
            h = np.tanh(s_t @ weights)
            stacked.append(s_t)
            hidden.append(h)
        self._state = (h.copy(),)
        self._cache = (np.array(stacked), np.array(hidden), weights, output_weights)
        return self.head_forward(self._cache[1], output_weights)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        """Full BPTT over the last sequence; returns dL/dx (time, input_size) and updates both weight sets."""
        error = self.check_output_error(error_tensor)
        stacked, hidden, weights, output_weights = self._cache  # (time, n_in + hidden + 1), (time, hidden)
        n_in = self.input_size
        gradient_output_weights, head_error = self.head_backward(error, hidden, output_weights)
        deltas = np.zeros_like(hidden)  # dL/d(pre-activation) of every step
        later = np.zeros(self.hidden_size, dtype=hidden.dtype)  # dL/dh_t through h_{t+1}
        for t in reversed(range(len(hidden))):
            dh = head_error[t] + later
            deltas[t] = dh * (1.0 - hidden[t] ** 2)  # tanh' = 1 - h^2
            later = weights[n_in:-1] @ deltas[t]
        gradient_weights = stacked.T @ deltas  # sum over t of outer(s_t, delta_t): rows [x, h, bias]
        input_error = deltas @ weights[:n_in].T
        self.finish_backward(gradient_weights, gradient_output_weights)
        return input_error
