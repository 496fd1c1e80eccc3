"""What the fast RNN and LSTM share: scratch buffers reused across calls, and an output head writing into them.

The reference layers (:mod:`corenet_recurrent.rnn`, :mod:`corenet_recurrent.lstm`)
build their per-step arrays afresh; these keep every buffer for one sequence length
and dtype, so the per-step loops allocate nothing.
"""

from __future__ import annotations

import numpy as np


class Buffers:
    """Mixin for a RecurrentLayer subclass: ``workspace_class(time, input_size, hidden_size, dtype)``
    buffers, reused while the sequence length and dtype stay the same (not pickled)."""

    workspace_class: type
    fast_transient = ("_workspace", "_workspace_key", "_used")

    def buffers(self, time: int, dtype: np.dtype):
        """Scratch buffers (``workspace_class``) for ``time`` steps in ``dtype``, reused while both agree."""
        key = (time, np.dtype(dtype))
        if getattr(self, "_workspace", None) is None or self._workspace_key != key:
            self._workspace = self.workspace_class(time, self.input_size, self.hidden_size, dtype)
            self._workspace_key = key
        return self._workspace

    def head_backward_into(
        self, error: np.ndarray, hidden: np.ndarray, output_weights: np.ndarray, hidden_error: np.ndarray
    ) -> np.ndarray:
        """Output-head gradient, shape (hidden_size + 1, output_size); writes dL/dh_t into hidden_error."""
        y = self._output
        delta = error * y * (1.0 - y)
        gradient = np.empty(self.output_weights_shape, dtype=delta.dtype)
        np.matmul(hidden.T, delta, out=gradient[:-1])
        np.sum(delta, axis=0, out=gradient[-1])
        np.matmul(delta, output_weights[:-1].T, out=hidden_error)
        return gradient
