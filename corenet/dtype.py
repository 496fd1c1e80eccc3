"""The default floating dtype for new parameters, and input conversion."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from corenet.errors import ShapeError

_default_dtype: np.dtype = np.dtype(np.float64)

_KIND_NAMES = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers",
               "M": "datetimes", "m": "timedeltas", "V": "raw records"}


def set_default_dtype(dtype: type | np.dtype | str) -> None:
    """Set the dtype of parameters created from now on (float32 or float64)."""
    global _default_dtype
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"default dtype must be float32 or float64, got {dtype!r}") from exc
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"default dtype must be float32 or float64, got {resolved}")
    _default_dtype = resolved


def get_default_dtype() -> np.dtype:
    """The dtype new parameters are created with (float64 unless changed)."""
    return _default_dtype


@contextlib.contextmanager
def default_dtype(dtype: type | np.dtype | str | None) -> Iterator[None]:
    """Create parameters in ``dtype`` inside the block (None: leave the default); restore it after."""
    previous = _default_dtype
    if dtype is not None:
        set_default_dtype(dtype)
    try:
        yield
    finally:
        set_default_dtype(previous)


def as_float_array(tensor, owner: str = "layer") -> np.ndarray:
    """Return ``tensor`` as a floating array; integers and booleans become the default dtype.

    Floating inputs keep their dtype (a float32 network stays float32); ``np.matrix``
    and other ndarray subclasses become plain ndarrays (same data). None, masked arrays that mask entries,
    ragged nested lists and object, string and complex arrays are refused with a
    :class:`ShapeError` naming ``owner``.
    """
    if tensor is None:
        raise ShapeError(f"{owner}: expected a real numeric array, got None")
    if isinstance(tensor, np.ma.MaskedArray) and np.ma.is_masked(tensor):
        raise ShapeError(f"{owner}: got a masked array with masked entries, which would be used as numbers; "
                         f"fill them first, e.g. array.filled(0)")
    if isinstance(tensor, np.ndarray):
        # a subclass (np.matrix: * is a matrix product, reductions stay 2-D) as a plain ndarray view
        array = tensor if type(tensor) is np.ndarray else tensor.view(np.ndarray)
    else:
        try:
            array = np.asarray(tensor)
        except ValueError as exc:  # ragged nested lists
            raise ShapeError(
                f"{owner}: expected a real numeric array, got a {type(tensor).__name__} whose rows differ "
                f"in length (not rectangular)"
            ) from exc
    kind = array.dtype.kind
    if kind == "f":
        return array
    if kind in "iub":
        return array.astype(_default_dtype)
    what = _KIND_NAMES.get(kind, "non-numeric values")
    raise ShapeError(f"{owner}: expected a real numeric array, got dtype {array.dtype} ({what})")
