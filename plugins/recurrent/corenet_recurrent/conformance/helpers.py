"""Helpers of the recurrent conformance tests (RNN, LSTM), in API.md's weight layout.

- :func:`textbook_forward` / :func:`textbook_backward`: the per-step loop written out,
  independent of any layer class; backward returns every time step's share of
  ``gradient_weights`` (to tell "summed over all steps" from "only one step kept").
- :func:`control`: a layer under test built and initialized with known arrays, the
  output layer's weights discovered through the ``initialize`` protocol alone (the
  exercise gives no attribute for them) and checked against the textbook forward;
  when the outputs disagree, :func:`diagnose_layout` names a row-order or gate-order swap.
- :class:`Replay`: replays a memorized second sequence from the same carried state on
  every forward, using nothing but ``memorize`` and ``initialize``.
- :class:`TorchMirror`: ``torch.nn.RNN``/``LSTM`` + ``Linear`` + sigmoid in float64 with
  given weights (needs torch).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from corenet.checking.probes import KnownArrays

#: the LSTM gate blocks of ``weights``' columns in API.md's order (PyTorch's: W_ii | W_if | W_ig | W_io)
API_GATES = ("input", "forget", "cell", "output")
#: (input_size, hidden_size, output_size): every weight request of an RNN or LSTM has a distinct shape
SIZES = (3, 5, 2)
TIME = 7


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def weights_shape(lstm: bool, sizes: tuple[int, int, int] = SIZES) -> tuple[int, int]:
    n_in, hidden, _ = sizes
    return (n_in + hidden + 1, (4 if lstm else 1) * hidden)


# -- the textbook recurrence -----------------------------------------------------------------------
@dataclass
class Trace:
    """What one textbook forward pass computed, per time step."""

    lstm: bool
    weights: np.ndarray
    output_weights: np.ndarray
    stacked: np.ndarray  # (time, n_in + hidden + 1): [x_t, h_{t-1}, 1]
    hidden: np.ndarray  # (time + 1, hidden): h_0 (the start state) ... h_T
    cell: np.ndarray  # (time + 1, hidden): c_0 ... c_T (zeros for the RNN)
    gates: np.ndarray  # (time, 4 * hidden): i, f, g, o activations (LSTM only)
    outputs: np.ndarray  # (time, output_size)

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        return (self.hidden[-1], self.cell[-1]) if self.lstm else (self.hidden[-1],)


def textbook_forward(weights, output_weights, x, state=None, lstm: bool = False) -> Trace:
    """h_t = tanh(z_t W) (RNN) or the LSTM cell on z_t = [x_t, h_{t-1}, 1]; y_t = sigmoid([h_t, 1] W_y)."""
    weights = np.asarray(weights, dtype=np.float64)
    output_weights = np.asarray(output_weights, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    time, hidden_size = len(x), output_weights.shape[0] - 1
    hidden = np.zeros((time + 1, hidden_size))
    cell = np.zeros((time + 1, hidden_size))
    if state is not None:
        hidden[0] = state[0]
        if lstm:
            cell[0] = state[1]
    stacked = np.zeros((time, weights.shape[0]))
    gates = np.zeros((time, 4 * hidden_size if lstm else 0))
    for t in range(time):
        stacked[t] = np.concatenate([x[t], hidden[t], [1.0]])
        pre = stacked[t] @ weights
        if lstm:
            i, f, g, o = np.split(pre, 4)
            i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
            gates[t] = np.concatenate([i, f, g, o])
            cell[t + 1] = f * cell[t] + i * g
            hidden[t + 1] = o * np.tanh(cell[t + 1])
        else:
            hidden[t + 1] = np.tanh(pre)
    outputs = sigmoid(hidden[1:] @ output_weights[:-1] + output_weights[-1])
    return Trace(lstm, weights, output_weights, stacked, hidden, cell, gates, outputs)


@dataclass
class Gradients:
    """dL/dx, every time step's share of dL/dweights, and dL/doutput_weights."""

    input: np.ndarray
    shares: np.ndarray  # (time, *weights.shape); their sum is gradient_weights
    output_weights: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        return self.shares.sum(axis=0)


def textbook_backward(trace: Trace, error) -> Gradients:
    """Full BPTT over the traced sequence for the error w.r.t. its outputs (time, output_size)."""
    error = np.asarray(error, dtype=np.float64)
    w, wy = trace.weights, trace.output_weights
    time, hidden_size = len(error), wy.shape[0] - 1
    n_in = w.shape[0] - hidden_size - 1
    y = trace.outputs
    delta_y = error * y * (1.0 - y)
    gradient_output = np.vstack([trace.hidden[1:].T @ delta_y, delta_y.sum(axis=0)])
    head = delta_y @ wy[:-1].T  # dL/dh_t through the output layer
    shares = np.zeros((time, *w.shape))
    dx = np.zeros((time, n_in))
    carry_h, carry_c = np.zeros(hidden_size), np.zeros(hidden_size)
    for t in reversed(range(time)):
        dh = head[t] + carry_h
        if trace.lstm:
            i, f, g, o = np.split(trace.gates[t], 4)
            tanh_c = np.tanh(trace.cell[t + 1])
            dc = dh * o * (1.0 - tanh_c**2) + carry_c
            delta = np.concatenate([dc * g * i * (1 - i), dc * trace.cell[t] * f * (1 - f), dc * i * (1 - g**2),
                                    dh * tanh_c * o * (1 - o)])
            carry_c = dc * f
        else:
            delta = dh * (1.0 - trace.hidden[t + 1] ** 2)
        shares[t] = np.outer(trace.stacked[t], delta)
        dx[t] = delta @ w[:n_in].T
        carry_h = delta @ w[n_in:n_in + hidden_size].T
    return Gradients(dx, shares, gradient_output)


def which_step_was_kept(gradient, shares: np.ndarray, tolerance: float = 1e-8) -> str | None:
    """Name the summation bug a wrong ``gradient_weights`` shows, given the textbook per-step shares."""
    gradient = np.asarray(gradient, dtype=np.float64)
    time = len(shares)
    scale = max(np.abs(shares.sum(axis=0)).max(), 1e-300)
    for t in (time - 1, 0, *range(1, time - 1)):
        if np.abs(gradient - shares[t]).max() <= tolerance * scale:
            last = " (the last one backward visits)" if t == 0 else ""
            return (f"gradient_weights differs from the sum over all {time} time steps: looks like only the last "
                    f"step was kept (it equals time step {t}'s share alone{last}); accumulate with += over the steps")
    if np.abs(gradient - shares.sum(axis=0) / time).max() <= tolerance * scale:
        return (f"gradient_weights is the mean over the {time} time steps, not their sum: do not divide by the "
                f"sequence length")
    return None


# -- gate and row layouts ---------------------------------------------------------------------------
def reorder_gates(weights: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """``weights`` (rows, 4h) with its gate blocks rearranged: block k of the result is block order[k]."""
    rows, columns = weights.shape
    hidden = columns // 4
    return weights.reshape(rows, 4, hidden)[:, list(order)].reshape(rows, columns)


def swap_rows(weights: np.ndarray, n_in: int) -> np.ndarray:
    """Rows [x, h, bias] read as [h, x, bias] (the other stacking order of the hidden layer's input)."""
    hidden = weights.shape[0] - n_in - 1
    return np.vstack([weights[hidden:hidden + n_in], weights[:hidden], weights[-1:]])


def diagnose_layout(outputs, weights, output_weights, x, lstm: bool, n_in: int) -> str | None:
    """If ``outputs`` are the textbook's for a rearranged ``weights``, a one-line message naming the rearrangement."""
    for rows in ("[x, h, bias]", "[h, x, bias]"):
        arranged = weights if rows == "[x, h, bias]" else swap_rows(weights, n_in)
        orders = itertools.permutations(range(4)) if lstm else [(0,)]
        for order in orders:
            candidate = reorder_gates(arranged, order) if lstm else arranged
            if rows == "[x, h, bias]" and tuple(order) == tuple(range(len(order))):
                continue
            expected = textbook_forward(candidate, output_weights, x, lstm=lstm).outputs
            if np.allclose(outputs, expected, rtol=0, atol=1e-10):
                parts = []
                if lstm and tuple(order) != (0, 1, 2, 3):
                    # the layer uses our block order[k] where API.md has gate k: name what each block means to it
                    meaning = [API_GATES[order.index(block)] for block in range(4)]
                    parts.append(f"the LSTM's gate blocks of weights are in the order ({', '.join(meaning)}), API.md's "
                                 f"(PyTorch's) order is (input, forget, cell, output): gate order swapped")
                if rows != "[x, h, bias]":
                    parts.append(f"the rows of weights are read as {rows}, API.md's order is [x, h, bias]")
                return "; ".join(parts)
    return None


# -- a layer under test, controlled through initialize() -------------------------------------------
@dataclass
class Controlled:
    """A layer under test whose every weight is known (API.md layout), see :func:`control`."""

    layer: object
    lstm: bool
    weights: np.ndarray  # the hidden layer's weights in API.md's layout (rows [x, h, bias])
    output_weights: np.ndarray  # (hidden + 1, output), last row bias
    transposed: bool  # the layer's weights attribute is API.md's transposed

    def api(self, tensor) -> np.ndarray:
        """A tensor shaped like the layer's ``weights`` in API.md's layout."""
        array = np.asarray(tensor, dtype=np.float64)
        return array.T if self.transposed else array

    def own(self, api_tensor) -> np.ndarray:
        """An API.md-layout tensor in the layer's own layout (to assign to ``weights``)."""
        array = np.array(api_tensor, dtype=np.float64)
        return array.T.copy() if self.transposed else array


class ControlError(AssertionError):
    """The layer cannot be controlled through initialize() or its forward is not the textbook's."""


def _output_candidates(weights_init: KnownArrays, bias_init: KnownArrays, hidden_values, sizes):
    """Possible output-layer weights (API layout) among the requests not found in the hidden weights."""
    _, hidden, out = sizes
    unused = [r.array for r in weights_init.requests if not np.isin(r.array, hidden_values).all()]
    biases = [r.array.reshape(1, out) for r in bias_init.requests
              if r.array.size == out and not np.isin(r.array, hidden_values).all()]
    for array in unused:
        options = []
        if array.shape == (hidden, out):
            options = [array]
        elif array.shape == (out, hidden):
            options = [array.T]
        elif array.shape == (hidden + 1, out):
            options = [array[:-1], array]
        elif array.shape == (out, hidden + 1):
            options = [array.T[:-1], array.T]
        for matrix in options:
            if matrix.shape == (hidden + 1, out):
                yield matrix
            for bias in biases or [np.zeros((1, out))]:
                yield np.vstack([matrix, bias])


def control(cls, lstm: bool, x, seed: int = 11, sizes: tuple[int, int, int] = SIZES) -> Controlled:
    """A fresh ``cls(*sizes)`` initialized with known arrays, and its weights in API.md's layout.

    The hidden layer's weights are read from ``weights`` (API.md's shape or its
    transpose). The output layer's are whichever arrays initialize() asked for that
    ``weights`` does not hold, chosen so that forward(x) equals the textbook forward.
    Raises ControlError with a one-line reason otherwise.
    """
    n_in, hidden, out = sizes
    name = "LSTM" if lstm else "RNN"
    weights_init, bias_init = KnownArrays(seed), KnownArrays(seed + 1)
    layer = cls(*sizes)
    layer.initialize(weights_init, bias_init)
    shape = weights_shape(lstm, sizes)
    weights = np.asarray(layer.weights, dtype=np.float64)
    if weights.shape not in (shape, shape[::-1]):
        raise ControlError(f"{name}({n_in}, {hidden}, {out}).weights has shape {weights.shape}, expected {shape} "
                           f"(input_size + hidden_size + 1 rows: the hidden layer's stacked [x, h, 1] weights)")
    transposed = weights.shape != shape
    api_weights = weights.T if transposed else weights
    outputs = np.asarray(layer.forward(x), dtype=np.float64)
    candidates = list(_output_candidates(weights_init, bias_init, weights, sizes))
    if not candidates:
        raise ControlError(f"initialize() never asked its weights initializer for the output layer's weights "
                           f"(fan_in {hidden} -> fan_out {out}): the output layer must be initialized there too")
    for output_weights in candidates:
        expected = textbook_forward(api_weights, output_weights, x, lstm=lstm).outputs
        if outputs.shape == expected.shape and np.allclose(outputs, expected, rtol=0, atol=1e-10):
            fresh = cls(*sizes)  # no state left over from the forward above
            weights_init.rewind()
            bias_init.rewind()
            fresh.initialize(weights_init, bias_init)
            return Controlled(fresh, lstm, api_weights.copy(), output_weights.copy(), transposed)
    for output_weights in candidates:
        named = diagnose_layout(outputs, api_weights, output_weights, x, lstm, n_in)
        if named:
            raise ControlError(named)
    expected = textbook_forward(api_weights, candidates[0], x, lstm=lstm).outputs
    if outputs.shape != expected.shape:
        raise ControlError(f"{name} forward returned shape {outputs.shape} for a ({len(x)}, {n_in}) sequence, "
                           f"expected {expected.shape}")
    per_step = np.abs(outputs - expected).max(axis=1)
    raise ControlError(f"{name} forward differs from the textbook {name} with the weights initialize() handed out "
                       f"(first at time step {int(np.argmax(per_step > 1e-10))}, largest difference "
                       f"{per_step.max():.3g}); check forward and where initialize puts each array")


class Replay:
    """A layer that replays the second of two memorized sequences on every forward.

    Each forward builds a fresh ``cls(*sizes)``, initializes it with the same known
    arrays, runs ``first`` with memorize on (carrying its state), then assigns the
    current ``weights`` and runs the input; backward and ``gradient_weights`` are that
    layer's. So gradient checks see the second call of a truncated BPTT, not a chain.
    """

    def __init__(self, cls, first: np.ndarray, seed: int = 31, sizes: tuple[int, int, int] = SIZES) -> None:
        self.cls, self.first, self.sizes = cls, first, sizes
        self.initializers = (KnownArrays(seed), KnownArrays(seed + 1))
        self.trainable, self.testing_phase = False, False
        self.weights = np.array(self._fresh().weights, dtype=np.float64)
        self.layer = None

    def _fresh(self):
        layer = self.cls(*self.sizes)
        for initializer in self.initializers:
            initializer.rewind()
        layer.initialize(*self.initializers)
        return layer

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        self.layer = self._fresh()
        self.layer.memorize = True
        self.layer.forward(self.first)
        self.layer.weights = self.weights.copy()
        return self.layer.forward(input_tensor)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        return self.layer.backward(error_tensor)

    @property
    def gradient_weights(self):
        return self.layer.gradient_weights


# -- PyTorch ----------------------------------------------------------------------------------------
class TorchMirror:
    """The PyTorch counterpart of an RNN/LSTM with given API-layout weights, float64.

    Our single bias row goes into torch's ``bias_ih``; ``bias_hh`` is zero and frozen,
    so training updates the same bias we do.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, lstm: bool, weights,
                 output_weights) -> None:
        import torch

        self.torch = torch
        self.sizes = (input_size, hidden_size, output_size)
        self.lstm = lstm
        cls = torch.nn.LSTM if lstm else torch.nn.RNN
        self.cell = cls(input_size, hidden_size, dtype=torch.float64)
        self.linear = torch.nn.Linear(hidden_size, output_size, dtype=torch.float64)
        self.cell.bias_hh_l0.requires_grad_(False)
        self.load(weights, output_weights)

    @classmethod
    def of(cls, layer) -> TorchMirror:
        """The mirror of a corenet RNN/LSTM (reads its ``output_weights``)."""
        return cls(layer.input_size, layer.hidden_size, layer.output_size, layer.gates == 4, layer.weights,
                   layer.output_weights)

    def load(self, weights, output_weights) -> None:
        """Copy API-layout (weights, output_weights) into the torch modules (gate order is the same)."""
        torch = self.torch
        n_in, h, _ = self.sizes
        weights = np.asarray(weights, dtype=np.float64)
        output_weights = np.asarray(output_weights, dtype=np.float64)
        with torch.no_grad():
            self.cell.weight_ih_l0.copy_(torch.from_numpy(weights[:n_in].T.copy()))
            self.cell.weight_hh_l0.copy_(torch.from_numpy(weights[n_in:n_in + h].T.copy()))
            self.cell.bias_ih_l0.copy_(torch.from_numpy(weights[-1].copy()))
            self.cell.bias_hh_l0.zero_()
            self.linear.weight.copy_(torch.from_numpy(output_weights[:-1].T.copy()))
            self.linear.bias.copy_(torch.from_numpy(output_weights[-1].copy()))

    @staticmethod
    def _gather(ih, hh, bias, linear_weight, linear_bias) -> tuple[np.ndarray, np.ndarray]:
        weights = np.vstack([ih.T, hh.T, bias[None, :]])
        return weights, np.vstack([linear_weight.T, linear_bias[None, :]])

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Torch's current parameters in API.md's layout (biases summed)."""
        c, lin = self.cell, self.linear
        bias = (c.bias_ih_l0 + c.bias_hh_l0).detach().numpy()
        return self._gather(c.weight_ih_l0.detach().numpy(), c.weight_hh_l0.detach().numpy(), bias,
                            lin.weight.detach().numpy(), lin.bias.detach().numpy())

    def gradients(self) -> tuple[np.ndarray, np.ndarray]:
        """Torch's gradients in API.md's layout (gradient_weights, gradient_output_weights)."""
        c, lin = self.cell, self.linear
        return self._gather(c.weight_ih_l0.grad.numpy(), c.weight_hh_l0.grad.numpy(),
                            c.bias_ih_l0.grad.numpy(), lin.weight.grad.numpy(), lin.bias.grad.numpy())

    def parameters(self) -> list:
        """The trainable torch parameters (bias_hh excluded)."""
        return [p for p in [*self.cell.parameters(), *self.linear.parameters()] if p.requires_grad]

    def forward(self, x, state: tuple[np.ndarray, ...] | None = None):
        """(sigmoid output, final state tuple of arrays) for x (time, input_size)."""
        torch = self.torch
        if state is None:
            out, final = self.cell(x)
        else:
            parts = tuple(torch.as_tensor(np.asarray(p, dtype=np.float64)).reshape(1, -1) for p in state)
            out, final = self.cell(x, parts if self.lstm else parts[0])
        finals = final if self.lstm else (final,)
        return torch.sigmoid(self.linear(out)), tuple(f.detach().reshape(-1).numpy().copy() for f in finals)
