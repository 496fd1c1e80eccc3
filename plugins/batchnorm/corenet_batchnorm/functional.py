"""Batch normalization as formulas on vectors (N, c): N values per channel, one column per channel.

An image batch (b, c, y, x) becomes such vectors with N = b·y·x (see
``BatchNormalization.reformat``). With μ, σ² the per-channel batch mean and biased
variance and s = 1/√(σ² + ε):

    x̂ = (x − μ)·s,   y = γ·x̂ + β
    ∂β = Σ_N E,   ∂γ = Σ_N E·x̂
    ∂x = s·(Ê − mean_N(Ê) − x̂·mean_N(Ê·x̂))   with Ê = E·γ      (training: μ, σ² depend on x)
    ∂x = s·γ·E                                                  (testing: fixed μ, σ²)
"""

from __future__ import annotations

import numpy as np

#: The ε added to the variance (the exercise asks for ε < 1e-10).
EPSILON = 1e-11


def to_vectors(tensor: np.ndarray) -> np.ndarray:
    """(b, c) stays (b, c); (b, c, y, x) (any number of trailing axes) becomes (b·y·x, c)."""
    if tensor.ndim == 2:
        return tensor
    return np.moveaxis(tensor, 1, -1).reshape(-1, tensor.shape[1])


def from_vectors(vectors: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`to_vectors` for a tensor of ``shape``: (N, c) -> ``shape``."""
    if len(shape) == 2:
        return vectors
    batch, channels, *rest = shape
    return np.ascontiguousarray(np.moveaxis(vectors.reshape(batch, *rest, channels), -1, 1))


def batch_statistics(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance of (N, c) vectors, as float64 arrays (c,).

    The sums run in float64 and the variance is the centred (two-pass) one, so float32
    inputs keep float32's accuracy (about 1e-7 relative) however large the mean is
    compared with the spread.
    """
    mean = vectors.mean(axis=0, dtype=np.float64)
    variance = np.mean(np.square(vectors - mean), axis=0)  # vectors - mean is float64
    return mean, variance


def compute_bn_gradients(error_tensor: np.ndarray, input_tensor: np.ndarray, weights: np.ndarray,
                         mean: np.ndarray, var: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Gradient of a training-mode batch normalization w.r.t. its input (γ and β gradients are not part of it).

    ``error_tensor`` and ``input_tensor``: (N, c) vectors or (b, c, ...) tensors of the same shape;
    ``weights`` (γ), ``mean`` and ``var`` (the batch's biased variance): (c,).
    Returns an array shaped like ``input_tensor``, in its floating dtype.
    """
    x, error = np.asarray(input_tensor), np.asarray(error_tensor)
    if x.ndim < 2 or error.shape != x.shape:
        raise ValueError(
            f"compute_bn_gradients: error_tensor {error.shape} and input_tensor {x.shape} must have "
            "the same (batch, channels, ...) shape"
        )
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    channels = x.shape[1]
    weights, mean, var = (np.asarray(a, dtype=dtype).reshape(-1) for a in (weights, mean, var))
    for name, array in (("weights", weights), ("mean", mean), ("var", var)):
        if array.size != channels:
            raise ValueError(f"compute_bn_gradients: {name} has {array.size} entries, expected {channels} channels")
    x_vectors, e_vectors = to_vectors(x.astype(dtype, copy=False)), to_vectors(error.astype(dtype, copy=False))
    scale = 1.0 / np.sqrt(var + dtype.type(eps))  # s
    normalized = (x_vectors - mean) * scale  # x̂
    scaled_error = e_vectors * weights  # Ê = E·γ
    gradient = scale * (scaled_error - scaled_error.mean(axis=0)
                        - normalized * (scaled_error * normalized).mean(axis=0))
    return from_vectors(gradient, x.shape)
