"""Compiled float32 LSTM: the whole recurrence of one sequence in one call per direction.

Same layer as :mod:`corenet_recurrent.lstm` (``weights`` rows [x, h, bias], gate
columns (i, f, g, o); ``output_weights`` rows [h, bias])::

    i, f, g, o = σ, σ, tanh, σ of [x_t, h_{t-1}, 1] @ W
    c_t = f·c_{t-1} + i·g,   h_t = o·tanh(c_t),   y_t = σ([h_t, 1] @ W_y)

:func:`forward` computes every step, the output head included, and keeps what
backward needs; :func:`backward` runs backpropagation through time and computes
both weight gradients and the input error. No BLAS call and no thread: the products
are small (a step's gates are a 97 x 256 matrix-vector product), and loops over a
contiguous weight row vectorise. ``tanh`` is :func:`tanh32`, a rational function
whose loops vectorise (the C library's ``tanhf`` does not); σ(z) = ½ + ½·tanh(z/2).
"""

from __future__ import annotations

import numpy as np

from corenet_fast.numba import compiled, helper


def _lambert_coefficients(depth: int) -> tuple[np.ndarray, np.ndarray]:
    """tanh x ≈ x·P(x²)/Q(x²) from Lambert's continued fraction x/(1 + x²/(3 + x²/(5 + ...))) cut at
    ``depth``; coefficients lowest power first, normalised so that P(0) = Q(0) = 1."""
    numerator, denominator = np.array([2.0 * depth + 1.0]), np.array([1.0])
    for k in range(depth - 1, -1, -1):  # T_k = (2k + 1) + u / T_{k+1} as numerator / denominator in u
        shifted = np.concatenate([[0.0], denominator])
        grown = np.zeros(max(len(numerator), len(shifted)))
        grown[: len(numerator)] += (2 * k + 1) * numerator
        grown[: len(shifted)] += shifted
        numerator, denominator = grown, numerator
    return denominator / numerator[0], numerator / numerator[0]  # tanh = x / T_0


#: depth 12 of the fraction, evaluated in float32 on [-9, 9], is within 3.5e-7 of tanh;
#: beyond ±9, tanh rounds to ±1 in float32
_P, _Q = (tuple(np.float32(c) for c in coefficients) for coefficients in _lambert_coefficients(12))
_P0, _P1, _P2, _P3, _P4, _P5, _P6 = _P
_Q0, _Q1, _Q2, _Q3, _Q4, _Q5, _Q6 = _Q
_LIMIT = np.float32(9.0)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)


@helper
def tanh32(x):
    """tanh of a float32 within 3.5e-7; NaN stays NaN (no comparison below is true for it)."""
    if x > _LIMIT:
        x = _LIMIT
    elif x < -_LIMIT:
        x = -_LIMIT
    u = x * x
    p = _P0 + u * (_P1 + u * (_P2 + u * (_P3 + u * (_P4 + u * (_P5 + u * _P6)))))
    q = _Q0 + u * (_Q1 + u * (_Q2 + u * (_Q3 + u * (_Q4 + u * (_Q5 + u * _Q6)))))
    return x * p / q


@helper
def sigmoid32(z):
    """σ(z) = ½ + ½·tanh(z/2) for a float32."""
    return _HALF + _HALF * tanh32(_HALF * z)


@compiled()
def forward(stacked, weights_t, output_weights, cell, gates, cell_tanh, output):
    """One sequence forward, all float32.

    ``stacked`` (T + 1, n + h + 1): row t is [x_t, h_{t-1}, 1]; it comes with x, the ones
    and h_0 filled in and gets h_t in row t + 1 (row T holds h_T). ``weights_t``
    (4h, n + h + 1) is ``weights`` transposed, so each pre-activation is one contiguous
    dot product with a row of ``stacked``; output_weights (h + 1, q). ``cell`` (T + 1, h)
    comes with c_0 in row 0 and gets c_t in row t; fills ``gates`` (T, 4h) with the
    activations (i, f, g, o), ``cell_tanh`` (T, h) with tanh(c_t) and ``output`` (T, q) with y.
    """
    steps = output.shape[0]
    size = cell.shape[1]
    width = 4 * size
    columns = stacked.shape[1]
    inputs = columns - size - 1
    outputs = output.shape[1]
    z = np.empty(width, dtype=np.float32)
    head = np.empty(outputs, dtype=np.float32)
    slope = np.full(width, _HALF)
    offset = np.full(width, _HALF)
    slope[2 * size : 3 * size] = _ONE
    offset[2 * size : 3 * size] = np.float32(0.0)
    for t in range(steps):
        for j in range(width):
            total = np.float32(0.0)
            for k in range(columns):
                total += weights_t[j, k] * stacked[t, k]
            z[j] = total
        for j in range(width):  # σ(z) = ½ + ½·tanh(z/2) for i, f, o; tanh(z) for g
            gates[t, j] = tanh32(z[j] * slope[j]) * slope[j] + offset[j]
        for j in range(size):
            c = gates[t, size + j] * cell[t, j] + gates[t, j] * gates[t, 2 * size + j]
            cell[t + 1, j] = c
            cell_tanh[t, j] = tanh32(c)
        for j in range(size):
            stacked[t + 1, inputs + j] = gates[t, 3 * size + j] * cell_tanh[t, j]
        for q in range(outputs):
            head[q] = output_weights[size, q]
        for k in range(size):
            value = stacked[t + 1, inputs + k]
            for q in range(outputs):
                head[q] += value * output_weights[k, q]
        for q in range(outputs):
            output[t, q] = sigmoid32(head[q])


@compiled()
def backward(error, stacked, weights, output_weights, cell, gates, cell_tanh, output, delta,
             gradient_output_weights):
    """Backpropagation through time over the last :func:`forward`, all float32.

    ``error`` (T, q) is dL/dy; the other inputs are :func:`forward`'s. Fills ``delta``
    (T, 4h) with dL/d(pre-activations) of every step and ``gradient_output_weights``
    (h + 1, q); the products for the weight gradient (``stacked[:T].T @ delta``) and the
    input error (``delta @ weights[:n].T``) are left to BLAS.
    """
    steps = output.shape[0]
    size = cell.shape[1]
    width = 4 * size
    inputs = stacked.shape[1] - size - 1
    outputs = output.shape[1]
    head_delta = np.empty(outputs, dtype=np.float32)
    hidden_error = np.zeros(size, dtype=np.float32)  # dL/dh_t, the part from step t + 1 first
    carry = np.zeros(size, dtype=np.float32)  # dL/dc_{t+1} · f_{t+1}
    gradient_output_weights[:] = 0.0
    for t in range(steps - 1, -1, -1):
        for q in range(outputs):
            y = output[t, q]
            head_delta[q] = error[t, q] * y * (_ONE - y)
            gradient_output_weights[size, q] += head_delta[q]
        for k in range(size):
            value = stacked[t + 1, inputs + k]
            total = hidden_error[k]
            for q in range(outputs):
                gradient_output_weights[k, q] += value * head_delta[q]
                total += head_delta[q] * output_weights[k, q]
            hidden_error[k] = total
        for j in range(size):
            i = gates[t, j]
            f = gates[t, size + j]
            g = gates[t, 2 * size + j]
            o = gates[t, 3 * size + j]
            tc = cell_tanh[t, j]
            dh = hidden_error[j]
            dc = dh * o * (_ONE - tc * tc) + carry[j]
            delta[t, j] = dc * g * i * (_ONE - i)
            delta[t, size + j] = dc * cell[t, j] * f * (_ONE - f)
            delta[t, 2 * size + j] = dc * i * (_ONE - g * g)
            delta[t, 3 * size + j] = dh * tc * o * (_ONE - o)
            carry[j] = dc * f
        for k in range(size):  # dL/dh_{t-1} = W_h · delta_t
            total = np.float32(0.0)
            for j in range(width):
                total += weights[inputs + k, j] * delta[t, j]
            hidden_error[k] = total
