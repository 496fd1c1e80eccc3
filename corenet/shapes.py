"""Checks at layer boundaries, raising :class:`corenet.ShapeError` that names the layer.

``check_input`` and ``check_error`` also refuse NaN/inf values once
:func:`set_checks` (``corenet.set_checks(nan=True)``) switches that opt-in check on.
"""

from __future__ import annotations

import math
from numbers import Real

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


#: sizes, counts and strides are below this (no array could hold more)
INT_BOUND = 2**63


def shown(value) -> str:
    """``repr(value)`` for a message; an integer too long to print whole (Python refuses ints of more
    than 4,300 digits) is described by its length."""
    try:
        return repr(value)
    except ValueError:
        if isinstance(value, int):
            return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
        raise


def positive_int(name: str, value, owner: str | None = None) -> int:
    """``value`` as an int in [1, 2**63); bools, non-integers and values out of range raise a ValueError
    naming the argument (prefixed by ``owner``, e.g. the layer's class name, when given)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value < INT_BOUND:
        prefix = f"{owner}: " if owner else ""
        below = " below 2**63" if isinstance(value, (int, np.integer)) and value >= INT_BOUND else ""
        raise ValueError(f"{prefix}{name} must be a positive integer{below}, got {shown(value)}")
    return int(value)


def boolean(name: str, value, owner: str | None = None) -> bool:
    """``value`` as a bool: only True or False (NumPy's included); anything else, 0 and 1 too, raises
    a TypeError naming the argument (prefixed by ``owner`` when given)."""
    if not isinstance(value, (bool, np.bool_)):
        prefix = f"{owner}: " if owner else ""
        raise TypeError(f"{prefix}{name} must be True or False, got {value!r}")
    return bool(value)


def real_number(name: str, value, owner: str | None = None, *, low: float | None = None,
                high: float | None = None, low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """``value`` as a float: a finite real number within the optional bounds ``low``/``high``.

    Bools, non-numbers (strings, complex, arrays), NaN, inf and values out of range raise a
    ValueError naming the argument (prefixed by ``owner`` when given), the bound and the value,
    e.g. ``Adam: rho must be a real number in [0, 1), got 1.0``.
    """
    number = math.nan
    if isinstance(value, Real) and not isinstance(value, bool):  # np.floating/np.integer are Real
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            pass
    fits = math.isfinite(number)
    if fits and low is not None:
        fits = number >= low if low_inclusive else number > low
    if fits and high is not None:
        fits = number <= high if high_inclusive else number < high
    if not fits:
        prefix = f"{owner}: " if owner else ""
        raise ValueError(f"{prefix}{name} must be {_number_range(low, high, low_inclusive, high_inclusive)}, "
                         f"got {shown(value)}")
    return number


def _number_range(low, high, low_inclusive: bool, high_inclusive: bool) -> str:
    """How :func:`real_number` states its requirement, e.g. ``a finite real number > 0``."""
    if low is not None and high is not None:
        opening, closing = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
        return f"a real number in {opening}{_bound(low)}, {_bound(high)}{closing}"
    if low is not None:
        return f"a finite real number {'>=' if low_inclusive else '>'} {_bound(low)}"
    if high is not None:
        return f"a finite real number {'<=' if high_inclusive else '<'} {_bound(high)}"
    return "a finite real number"


def _bound(bound: float) -> str:
    """A bound as written in messages: ``0``, ``1``, ``0.5``."""
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def positive_ints(name: str, value, count: int, owner: str | None = None, *, context: str = "") -> tuple[int, ...]:
    """An int or a list/tuple of 1 or ``count`` positive ints as a tuple of ``count`` ints (a single
    entry is repeated). A wrong length or kind, or an entry that is not a positive integer, raises a
    ValueError naming the argument (prefixed by ``owner`` when given; ``context`` is appended to the
    allowed forms, e.g. ``" for a 2-D convolution"``) and the value."""
    prefix = f"{owner}: " if owner else ""
    entries = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if (not isinstance(entries, (list, tuple, np.ndarray)) or getattr(entries, "ndim", 1) != 1
            or len(entries) not in (1, count)):
        allowed = "1 entry" if count == 1 else f"1 or {count} entries"
        raise ValueError(f"{prefix}{name} must be an int or a list/tuple of {allowed}{context}, got "
                         f"{shown(value)}")
    if any(isinstance(entry, bool) or not isinstance(entry, (int, np.integer)) or not 1 <= entry < INT_BOUND
           for entry in entries):
        try:
            text = repr(value)
        except ValueError:  # an entry too long to print
            text = "(" + ", ".join(shown(entry) for entry in entries) + ")"
        below = " below 2**63" if any(isinstance(entry, (int, np.integer)) and entry >= INT_BOUND
                                      for entry in entries) else ""
        raise ValueError(f"{prefix}{name} entries must be positive integers{below}, got {text}")
    ints = tuple(int(entry) for entry in entries)
    return ints * count if len(ints) == 1 else ints
