"""Assertions whose first line tells a learner what is wrong and where to look.

Every helper raises AssertionError; the report (``corenet check``) shows the first line of
its message, so that line names the quantity (``what``), the observed and expected
values, and an optional ``hint``. Later lines carry details for the full pytest output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _line(text: str, hint: str | None) -> str:
    return f"{text}: {hint}" if hint else text


def _shape_of(value: Any) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else None


def fail(message: str, hint: str | None = None) -> None:
    """Raise AssertionError with ``message`` (and ``hint``) as its first line."""
    raise AssertionError(_line(message, hint))


def expect(condition: Any, message: str, hint: str | None = None) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        fail(message, hint)


def expect_array(actual: Any, what: str) -> np.ndarray:
    """``actual`` as a float array; fails when it is None or not numeric."""
    if actual is None:
        fail(f"{what} is None, expected an array")
    try:
        array = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"{what} is {type(actual).__name__}, expected a numeric array")
    return array


def expect_shape(actual: Any, expected: Sequence[int], what: str, hint: str | None = None) -> None:
    """Fail unless ``actual`` (an array) has shape ``expected``."""
    if actual is None:
        fail(f"{what} is None, expected an array of shape {tuple(expected)}", hint)
    shape = _shape_of(actual)
    if shape is None:
        fail(f"{what} is a {type(actual).__name__}, expected an array of shape {tuple(expected)}", hint)
    if shape != tuple(expected):
        fail(f"{what} has shape {shape}, expected {tuple(expected)}", hint)


def _worst(actual: np.ndarray, expected: np.ndarray) -> str:
    difference = np.abs(actual - expected)
    difference = np.where(np.isnan(difference), np.inf, difference)
    index = np.unravel_index(int(np.argmax(difference)), difference.shape) if difference.ndim else ()
    where = f" at index {tuple(int(i) for i in index)}" if difference.ndim else ""
    return (f"largest difference {float(difference[index]):.3g}{where} "
            f"(got {float(actual[index]):.6g}, expected {float(expected[index]):.6g})")


def expect_close(actual: Any, expected: Any, what: str, hint: str | None = None, *, rtol: float = 1e-7,
                 atol: float = 1e-9) -> None:
    """Fail unless ``actual`` matches ``expected`` in shape and within ``atol + rtol * |expected|``."""
    expected = np.asarray(expected, dtype=np.float64)
    array = expect_array(actual, what)
    if array.shape != expected.shape:
        expect_shape(array, expected.shape, what, hint)
    if not np.all(np.isfinite(array)) and np.all(np.isfinite(expected)):
        count = int(np.sum(~np.isfinite(array)))
        fail(f"{what} holds {count} NaN/inf value{'s' * (count != 1)} where finite values are expected", hint)
    if not np.allclose(array, expected, rtol=rtol, atol=atol, equal_nan=True):
        bad = int(np.sum(~np.isclose(array, expected, rtol=rtol, atol=atol, equal_nan=True)))
        raise AssertionError(_line(f"{what} differs from the expected values in {bad} of {array.size} entries, "
                                   f"{_worst(array, expected)}", hint)
                             + f"\nactual:\n{array}\nexpected:\n{expected}")


def expect_equal(actual: Any, expected: Any, what: str, hint: str | None = None) -> None:
    """Fail unless ``actual`` equals ``expected`` exactly (arrays entry by entry, same shape)."""
    if isinstance(expected, np.ndarray) or isinstance(actual, np.ndarray):
        expect_close(actual, expected, what, hint, rtol=0.0, atol=0.0)
        return
    if actual != expected:
        fail(f"{what} is {actual!r}, expected {expected!r}", hint)


def expect_attribute(obj: Any, name: str, what: str, hint: str | None = None) -> Any:
    """The attribute ``name`` of ``obj``; fails naming it when missing."""
    try:
        return getattr(obj, name)
    except AttributeError as exc:
        detail = "" if str(exc).startswith(("'", "type object")) else f" ({exc})"
        fail(f"{what} has no attribute {name!r}{detail}", hint)


def expect_gradient(error: float, what: str, hint: str | None = None, *, tolerance: float = 1e-5) -> None:
    """Fail when a relative error between analytic and central-difference gradients exceeds ``tolerance``."""
    if not np.isfinite(error) or error > tolerance:
        fail(f"{what} differs from central differences: relative error {error:.3g} (allowed {tolerance:g})",
             hint)
