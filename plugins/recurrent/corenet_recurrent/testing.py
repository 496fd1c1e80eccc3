"""Helpers for the recurrent conformance tests.

- :func:`reference_forward`: the textbook per-step loop in the API's layout,
  independent of the vectorised layers, to compare against.
- :class:`TorchMirror`: ``torch.nn.RNN``/``torch.nn.LSTM`` + ``Linear`` + sigmoid in
  float64 with the layer's weights copied across (needs torch).
- :class:`FixedState`: replays a layer from one carried state on every forward,
  so gradient checks can run on the second call of a memorized sequence.
- :func:`array_bytes`: bytes of every array reachable from an object (memory tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: the LSTM gate blocks of ``weights``' columns, in order, and of torch's ``weight_ih``/``weight_hh`` rows
API_GATES = ("input", "forget", "cell", "output")
TORCH_GATES = ("input", "forget", "cell", "output")  # PyTorch documents W_ii | W_if | W_ig | W_io


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference_forward(layer, x: np.ndarray, state: tuple[np.ndarray, ...] | None = None):
    """Outputs (time, output_size) and the final state, computed step by step from ``layer``'s weights."""
    weights = np.asarray(layer.weights, dtype=np.float64)
    output_weights = np.asarray(layer.output_weights, dtype=np.float64)
    h_size = layer.hidden_size
    h = np.zeros(h_size) if state is None else np.array(state[0], dtype=np.float64)
    c = np.zeros(h_size) if state is None or len(state) < 2 else np.array(state[1], dtype=np.float64)
    outputs = []
    for x_t in np.asarray(x, dtype=np.float64):
        pre = np.concatenate([x_t, h, [1.0]]) @ weights
        if layer.gates == 1:
            h = np.tanh(pre)
        else:
            i, f, g, o = np.split(pre, 4)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        outputs.append(_sigmoid(np.concatenate([h, [1.0]]) @ output_weights))
    final = (h,) if layer.gates == 1 else (h, c)
    return np.array(outputs), final


class FixedState:
    """Wraps a recurrent layer: every forward starts from ``state`` (with memorize=True)."""

    def __init__(self, layer, state: tuple[np.ndarray, ...]) -> None:
        self.layer = layer
        self.saved = tuple(np.array(part) for part in state)
        self.trainable = False
        self.testing_phase = False
        layer.memorize = True

    # parameters and gradients are the wrapped layer's, so weight gradient checks perturb them
    weights = property(lambda self: self.layer.weights, lambda self, v: setattr(self.layer, "weights", v))
    output_weights = property(
        lambda self: self.layer.output_weights, lambda self, v: setattr(self.layer, "output_weights", v)
    )
    gradient_weights = property(lambda self: self.layer.gradient_weights)
    gradient_output_weights = property(lambda self: self.layer.gradient_output_weights)

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        self.layer.state = self.saved
        return self.layer.forward(input_tensor)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        return self.layer.backward(error_tensor)


class TorchMirror:
    """The PyTorch counterpart of an RNN/LSTM layer, float64, with the layer's current weights.

    Our single bias row goes into torch's ``bias_ih``; ``bias_hh`` is zero and frozen,
    so training updates the same bias we do.
    """

    def __init__(self, layer) -> None:
        import torch

        self.torch = torch
        self.layer = layer
        self.lstm = layer.gates == 4
        n_in, h, n_out = layer.input_size, layer.hidden_size, layer.output_size
        cls = torch.nn.LSTM if self.lstm else torch.nn.RNN
        self.cell = cls(n_in, h, dtype=torch.float64)
        self.linear = torch.nn.Linear(h, n_out, dtype=torch.float64)
        self.cell.bias_hh_l0.requires_grad_(False)
        self.load(layer.weights, layer.output_weights)

    def _blocks(self) -> list[tuple[slice, slice]]:
        """(our column slice, torch row slice) for every gate block."""
        h = self.layer.hidden_size
        if not self.lstm:
            return [(slice(0, h), slice(0, h))]
        pairs = []
        for k, gate in enumerate(API_GATES):
            j = TORCH_GATES.index(gate)
            pairs.append((slice(k * h, (k + 1) * h), slice(j * h, (j + 1) * h)))
        return pairs

    def load(self, weights: np.ndarray, output_weights: np.ndarray) -> None:
        """Copy our (weights, output_weights) into the torch modules."""
        torch = self.torch
        n_in, h = self.layer.input_size, self.layer.hidden_size
        weights = np.asarray(weights, dtype=np.float64)
        output_weights = np.asarray(output_weights, dtype=np.float64)
        with torch.no_grad():
            for ours, theirs in self._blocks():
                self.cell.weight_ih_l0[theirs] = torch.from_numpy(weights[:n_in, ours].T.copy())
                self.cell.weight_hh_l0[theirs] = torch.from_numpy(weights[n_in : n_in + h, ours].T.copy())
                self.cell.bias_ih_l0[theirs] = torch.from_numpy(weights[-1, ours].copy())
            self.cell.bias_hh_l0.zero_()
            self.linear.weight.copy_(torch.from_numpy(output_weights[:-1].T.copy()))
            self.linear.bias.copy_(torch.from_numpy(output_weights[-1].copy()))

    def _gather(self, ih, hh, bias, linear_weight, linear_bias) -> tuple[np.ndarray, np.ndarray]:
        n_in, h = self.layer.input_size, self.layer.hidden_size
        weights = np.zeros(self.layer.weights_shape)
        for ours, theirs in self._blocks():
            weights[:n_in, ours] = ih[theirs].T
            weights[n_in : n_in + h, ours] = hh[theirs].T
            weights[-1, ours] = bias[theirs]
        output_weights = np.vstack([linear_weight.T, linear_bias[None, :]])
        return weights, output_weights

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Torch's current parameters in our layout (biases summed)."""
        c, lin = self.cell, self.linear
        bias = (c.bias_ih_l0 + c.bias_hh_l0).detach().numpy()
        return self._gather(c.weight_ih_l0.detach().numpy(), c.weight_hh_l0.detach().numpy(), bias,
                            lin.weight.detach().numpy(), lin.bias.detach().numpy())

    def gradients(self) -> tuple[np.ndarray, np.ndarray]:
        """Torch's gradients in our layout (gradient_weights, gradient_output_weights)."""
        c, lin = self.cell, self.linear
        return self._gather(c.weight_ih_l0.grad.numpy(), c.weight_hh_l0.grad.numpy(),
                            c.bias_ih_l0.grad.numpy(), lin.weight.grad.numpy(), lin.bias.grad.numpy())

    def parameters(self) -> list:
        """The trainable torch parameters (bias_hh excluded)."""
        return [p for p in [*self.cell.parameters(), *self.linear.parameters()] if p.requires_grad]

    def forward(self, x, state: tuple[np.ndarray, ...] | None = None):
        """(sigmoid output, final state tuple of tensors) for x (time, input_size)."""
        torch = self.torch
        if state is None:
            out, final = self.cell(x)
        else:
            parts = tuple(torch.as_tensor(np.asarray(p, dtype=np.float64)).reshape(1, -1) for p in state)
            out, final = self.cell(x, parts if self.lstm else parts[0])
        finals = final if self.lstm else (final,)
        return torch.sigmoid(self.linear(out)), tuple(f.detach().reshape(-1).numpy().copy() for f in finals)


def array_bytes(obj: Any, _seen: set[int] | None = None) -> int:
    """Total ``nbytes`` of the NumPy arrays reachable from ``obj`` through attributes and containers."""
    seen = set() if _seen is None else _seen
    if isinstance(obj, np.ndarray):
        while isinstance(obj.base, np.ndarray):  # a view: count the array that owns the memory, once
            obj = obj.base
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(array_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return sum(array_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return array_bytes(vars(obj), seen)
    return 0


class RecordingInitializer:
    """An initializer that records every (shape, fan_in, fan_out) it is asked for and returns ``value``s."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.calls: list[tuple[tuple[int, ...], int, int]] = []

    def initialize(self, shape, fan_in, fan_out) -> np.ndarray:
        self.calls.append((tuple(shape), fan_in, fan_out))
        return np.full(shape, self.value)
