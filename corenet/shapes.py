"""Checks at layer boundaries, raising :class:`corenet.ShapeError` that names the layer.

``check_input`` and ``check_error`` also refuse NaN/inf values once
:func:`set_checks` (``corenet.set_checks(nan=True)``) switches that opt-in check on.
"""

from __future__ import annotations

import numpy as np

from corenet.dtype import as_float_array
from corenet.errors import NonFiniteError, ShapeError

_check_nan = False


def set_checks(*, nan: bool | None = None) -> dict[str, bool]:
    """Switch optional checks on or off; returns the previous settings.

    ``nan=True``: every layer refuses inputs and errors holding NaN or inf (one
    extra pass over each array). ``set_checks(**previous)`` restores the old state.
    """
    global _check_nan
    previous = get_checks()
    if nan is not None:
        if not isinstance(nan, (bool, np.bool_)):
            raise TypeError(f"set_checks(nan=...) takes True or False, got {nan!r}")
        _check_nan = bool(nan)
    return previous


def get_checks() -> dict[str, bool]:
    """The current optional checks, e.g. ``{"nan": False}``."""
    return {"nan": _check_nan}


def describe(layer: object) -> str:
    """How errors name a layer: its repr, e.g. ``FullyConnected(4, 3)``."""
    return repr(layer)


def check_finite(owner: str, array: np.ndarray, what: str) -> None:
    """Raise :class:`NonFiniteError` if ``array`` holds NaN or inf (only when the check is on)."""
    if not _check_nan or array.dtype.kind != "f":
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    nans = int(np.isnan(array).sum())
    first = tuple(int(i) for i in bad[0])
    raise NonFiniteError(
        f"{owner}: the {what} (shape {array.shape}) holds {nans} NaN and {len(bad) - nans} inf "
        f"values, the first at index {first} (corenet.set_checks(nan=True) is on)"
    )


def check_input(layer: object, tensor, ndims: tuple[int, ...], layout: str,
                hints: dict[int, str] | None = None) -> np.ndarray:
    """Convert ``tensor`` to a float array and require one of ``ndims`` dimensions.

    ``layout`` describes what the layer takes, e.g. ``"(batch, features)"``;
    ``hints`` maps a wrong rank to advice appended to the message. Empty batches
    are refused.
    """
    array = as_float_array(tensor, describe(layer))
    if array.ndim not in ndims:
        raise ShapeError(
            f"{describe(layer)} takes {layout}, a {'/'.join(map(str, ndims))}-D array; "
            f"got a {array.ndim}-D array of shape {array.shape}{(hints or {}).get(array.ndim, '')}"
        )
    if array.shape[0] == 0:
        raise ShapeError(f"{describe(layer)} got an empty batch of shape {array.shape}")
    if _check_nan:
        check_finite(describe(layer), array, "input")
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
    if _check_nan:
        check_finite(describe(layer), array, "error tensor")
    return array


def positive_int(name: str, value, owner: str | None = None) -> int:
    """``value`` as an int >= 1; bools, non-integers and values < 1 raise a ValueError naming
    the argument (prefixed by ``owner``, e.g. the layer's class name, when given)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        prefix = f"{owner}: " if owner else ""
        raise ValueError(f"{prefix}{name} must be a positive integer, got {value!r}")
    return int(value)
