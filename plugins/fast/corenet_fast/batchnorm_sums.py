"""The fast BatchNormalization's arithmetic on a channel view, without transposed copies.

Every function works on a *channel view*: (b, c) for vectors, (b, c, n) for
anything with trailing axes (an image (b, c, y, x) is viewed as (b, c, y*x), a
reshape that copies nothing for a contiguous input). Per-channel statistics
reduce over every axis but 1 and come out in float64: float64 views are summed in
float64; a float32 (b, c, n) view is summed along n in float32 (NumPy's pairwise
summation) and the (b, c) partial sums in float64, which keeps about 1e-7 of
relative accuracy and is 2-4x faster than casting every element to float64. Per-channel
coefficients are expanded to (c,) or (c, n) so each elementwise step is one
contiguous NumPy operation broadcast over the batch. A chain of such steps on
the same elements (the forward output, the input gradient) runs block by block
over the batch axis (:func:`row_blocks`), so each block stays in the CPU cache
from the chain's first step to its last.

With x̂ = (x − μ)·s, s = 1/√(σ² + ε), and m values per channel:
  forward          y  = γ·x̂ + β                       = x·(γs) + (β − μγs)
  γ, β gradients   ∂γ = Σ E·x̂,  ∂β = Σ E
  input gradient   ∂x = γs·(E − ∂β/m − x̂·∂γ/m)       (training: μ, σ² from the batch)
"""

from __future__ import annotations

import numpy as np

#: Channels whose squared mean exceeds this multiple of their variance get their
#: variance recomputed from centred data: the one-pass E[x²] − μ² loses the relative
#: error of the Σx² partial sums times (1 + μ²/σ²). float64 sums carry ~1e-16; float32
#: partial sums (:func:`_single`) are rounded to float32 (6e-8), so the one-pass formula
#: is used only while μ² <= σ², which keeps float32 statistics within ~2e-7 of float64's.
_ILL_CONDITIONED = 1e4
_ILL_CONDITIONED_SINGLE = 1.0

#: Elements per block of an elementwise chain: the blocks one chain touches fit in a 2 MiB L2 cache.
BLOCK_ELEMENTS = 1 << 15


def channel_view(tensor: np.ndarray) -> np.ndarray:
    """(b, c) stays (b, c); (b, c, ...) becomes (b, c, n) with n the product of the rest."""
    return tensor if tensor.ndim == 2 else tensor.reshape(tensor.shape[0], tensor.shape[1], -1)


def _subscripts(view: np.ndarray) -> str:
    return "bc" if view.ndim == 2 else "bcn"


def _single(view: np.ndarray) -> bool:
    """A float32 (b, c, n) view: summed along n in float32 first (see the module docstring)."""
    return view.ndim == 3 and view.dtype == np.float32


def channel_sum(view: np.ndarray) -> np.ndarray:
    """Per-channel sum over batch (and positions), float64, shape (c,)."""
    if _single(view):
        return view.sum(axis=2).sum(axis=0, dtype=np.float64)
    s = _subscripts(view)
    return np.einsum(f"{s}->c", view, dtype=np.float64)


def channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel Σ a·b over batch (and positions), float64, shape (c,)."""
    if _single(a) and b.dtype == np.float32:
        return np.multiply(a, b).sum(axis=2).sum(axis=0, dtype=np.float64)
    s = _subscripts(a)
    return np.einsum(f"{s},{s}->c", a, b, dtype=np.float64)


def row_blocks(view: np.ndarray) -> list[slice]:
    """Slices of the batch axis with about :data:`BLOCK_ELEMENTS` elements each (at least one row), last first.

    Going from the end of the batch to its start reuses what the pass just before
    (the per-channel sums, which read front to back) left in the cache.
    """
    rows = len(view)
    step = max(1, BLOCK_ELEMENTS // max(1, view.size // max(1, rows)))
    return [slice(start, start + step) for start in reversed(range(0, rows, step))]


def expand(coefficients: np.ndarray, view: np.ndarray) -> np.ndarray:
    """Per-channel values (c,) as an operand for ``view``: (c,) or a contiguous (c, n), in its dtype."""
    coefficients = np.asarray(coefficients, dtype=view.dtype)
    if view.ndim == 2:
        return coefficients
    return np.repeat(coefficients[:, None], view.shape[2], axis=1)


def batch_moments(view: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batch statistics of a channel view.

    Returns ``(data, data_mean, mean, var)``: ``mean`` and the biased ``var`` of
    the view per channel (float64, (c,)), and the array the layer should keep for
    backward with its own per-channel mean. ``data`` is the view itself, unless a
    channel's mean dwarfs its spread; then it is the view minus ``mean`` so the
    variance and the backward sums are computed without cancellation.
    """
    count = view.size // view.shape[1]
    mean = channel_sum(view) / count
    var = channel_dot(view, view) / count - mean * mean
    limit = _ILL_CONDITIONED_SINGLE if _single(view) else _ILL_CONDITIONED
    if not np.all(mean * mean <= limit * var):
        data = view - expand(mean, view)
        data_mean = channel_sum(data) / count
        var = channel_dot(data, data) / count - data_mean * data_mean
        return data, data_mean, mean + data_mean, np.maximum(var, 0.0)
    return view, mean, mean, var


def normalize(data: np.ndarray, data_mean: np.ndarray, scale: np.ndarray,
              gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """γ·(data − data_mean)·scale + β per channel: a new array, two NumPy steps per block of rows."""
    factor = gamma * scale
    slope, offset = expand(factor, data), expand(beta - data_mean * factor, data)
    out = np.empty(data.shape, dtype=data.dtype)
    for rows in row_blocks(data):
        block = out[rows]
        np.multiply(data[rows], slope, out=block)
        block += offset
    return out


def parameter_gradients(error: np.ndarray, data: np.ndarray, data_mean: np.ndarray,
                        scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(∂γ, ∂β) = (Σ E·x̂, Σ E) per channel, float64, with x̂ = (data − data_mean)·scale."""
    gradient_bias = channel_sum(error)
    gradient_weights = (channel_dot(error, data) - data_mean * gradient_bias) * scale
    return gradient_weights, gradient_bias


def input_gradient(error: np.ndarray, data: np.ndarray, data_mean: np.ndarray, scale: np.ndarray,
                   gamma: np.ndarray, gradient_weights: np.ndarray, gradient_bias: np.ndarray) -> np.ndarray:
    """Training-mode ∂x = γs·(E − ∂β/m − x̂·∂γ/m), with x̂ = (data − data_mean)·s.

    Rewritten as γs·(E − (a·data + c)) with a = s·∂γ/m and c = ∂β/m − a·data_mean,
    four NumPy steps per block of rows and one new array.
    """
    count = error.size // error.shape[1]
    slope = scale * gradient_weights / count
    offset = gradient_bias / count - slope * data_mean
    slope, offset, factor = (expand(value, data) for value in (slope, offset, gamma * scale))
    gradient = np.empty(data.shape, dtype=data.dtype)
    for rows in row_blocks(data):
        block = gradient[rows]
        np.multiply(data[rows], slope, out=block)
        block += offset
        np.subtract(error[rows], block, out=block)
        block *= factor
    return gradient
