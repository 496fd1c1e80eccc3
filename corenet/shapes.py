"""Shape checks at layer boundaries, raising :class:`corenet.ShapeError` that names the layer."""

from __future__ import annotations

import numpy as np

from corenet.dtype import as_float_array
from corenet.errors import ShapeError


def describe(layer: object) -> str:
    """How errors name a layer: its repr, e.g. ``FullyConnected(4, 3)``."""
    return repr(layer)


def check_input(layer: object, tensor, ndims: tuple[int, ...], layout: str) -> np.ndarray:
    """Convert ``tensor`` to a float array and require one of ``ndims`` dimensions.

    ``layout`` describes what the layer takes, e.g. ``"(batch, features)"``.
    Empty batches are refused.
    """
    array = as_float_array(tensor, describe(layer))
    if array.ndim not in ndims:
        raise ShapeError(
            f"{describe(layer)} takes {layout}, a {'/'.join(map(str, ndims))}-D array; "
            f"got a {array.ndim}-D array of shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ShapeError(f"{describe(layer)} got an empty batch of shape {array.shape}")
    return array


def check_size(layer: object, array: np.ndarray, axis: int, expected: int, what: str) -> None:
    """Require ``array.shape[axis] == expected`` (``what`` names the axis, e.g. ``"features"``)."""
    if array.shape[axis] != expected:
        raise ShapeError(
            f"{describe(layer)} expects {expected} {what} but got {array.shape[axis]} "
            f"(input shape {array.shape})"
        )


def check_error(layer: object, error_tensor, expected_shape: tuple[int, ...] | None) -> np.ndarray:
    """Require a forward pass first and an error tensor shaped like the forward output."""
    if expected_shape is None:
        raise ShapeError(f"{describe(layer)}: backward called before forward")
    array = as_float_array(error_tensor, describe(layer))
    if array.shape != tuple(expected_shape):
        raise ShapeError(
            f"{describe(layer)}: backward expects an error of shape {tuple(expected_shape)} "
            f"(the forward output's), got {array.shape}"
        )
    return array
