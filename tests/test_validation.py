"""corenet.shapes.real_number and positive_ints: the shared argument checks."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from corenet.shapes import positive_ints, real_number


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.25), np.int64(1), Fraction(1, 4)])
def test_real_number_accepts_real_numbers_as_float(value):
    result = real_number("rate", value, low=0, high=1, high_inclusive=True)
    assert type(result) is float and result == float(value)


@pytest.mark.parametrize(("kwargs", "value", "expected"), [
    ({}, True, "Opt: rate must be a finite real number, got True"),
    ({}, "0.1", "Opt: rate must be a finite real number, got '0.1'"),
    ({}, 1j, "Opt: rate must be a finite real number, got 1j"),
    ({}, np.array([0.1]), "Opt: rate must be a finite real number, got array([0.1])"),
    ({}, float("inf"), "Opt: rate must be a finite real number, got inf"),
    ({}, 10**400, "Opt: rate must be a finite real number, got 1000"),
    ({"low": 0, "low_inclusive": False}, 0, "Opt: rate must be a finite real number > 0, got 0"),
    ({"low": 0}, -0.5, "Opt: rate must be a finite real number >= 0, got -0.5"),
    ({"high": 2.5, "high_inclusive": False}, 2.5, "Opt: rate must be a finite real number < 2.5, got 2.5"),
    ({"high": 1}, float("nan"), "Opt: rate must be a finite real number <= 1, got nan"),
    ({"low": 0, "high": 1, "high_inclusive": False}, 1.0, "Opt: rate must be a real number in [0, 1), got 1.0"),
    ({"low": 0, "high": 1, "low_inclusive": False}, 0, "Opt: rate must be a real number in (0, 1], got 0"),
])
def test_real_number_refuses_with_owner_bound_and_value(kwargs, value, expected):
    with pytest.raises(ValueError) as info:
        real_number("rate", value, "Opt", **kwargs)
    assert str(info.value).startswith(expected)


def test_real_number_bounds_are_inclusive_by_default_and_owner_is_optional():
    assert real_number("x", 0, low=0, high=1) == 0.0 and real_number("x", 1, low=0, high=1) == 1.0
    with pytest.raises(ValueError, match=r"^x must be a finite real number >= 0, got -1$"):
        real_number("x", -1, low=0)


@pytest.mark.parametrize(("value", "count", "expected"), [
    (3, 2, (3, 3)), ([2], 2, (2, 2)), ((1, 4), 2, (1, 4)), (np.array([2, 3]), 2, (2, 3)),
    (np.int64(5), 1, (5,)), ((7,), 1, (7,)),
])
def test_positive_ints_normalises(value, count, expected):
    result = positive_ints("stride", value, count)
    assert result == expected and all(type(n) is int for n in result)


@pytest.mark.parametrize(("value", "count", "expected"), [
    ((1, 2, 3), 2, "L: stride must be an int or a list/tuple of 1 or 2 entries, got (1, 2, 3)"),
    ((1, 2), 1, "L: stride must be an int or a list/tuple of 1 entry, got (1, 2)"),
    ("2", 2, "L: stride must be an int or a list/tuple of 1 or 2 entries, got '2'"),
    ((), 2, "L: stride must be an int or a list/tuple of 1 or 2 entries, got ()"),
    (np.ones((2, 2), int), 2, "L: stride must be an int or a list/tuple of 1 or 2 entries"),
    (True, 2, "L: stride must be an int or a list/tuple of 1 or 2 entries, got True"),
    ((0, 2), 2, "L: stride entries must be positive integers, got (0, 2)"),
    ((2, 1.5), 2, "L: stride entries must be positive integers, got (2, 1.5)"),
    ([False], 2, "L: stride entries must be positive integers, got [False]"),
])
def test_positive_ints_refuses_naming_argument_and_value(value, count, expected):
    with pytest.raises(ValueError) as info:
        positive_ints("stride", value, count, "L")
    assert str(info.value).startswith(expected)


def test_positive_ints_context_is_appended_to_the_allowed_forms():
    with pytest.raises(ValueError, match=r"^s must be an int or a list/tuple of 1 entry for a 1-D conv, got"):
        positive_ints("s", (1, 1), 1, context=" for a 1-D conv")
