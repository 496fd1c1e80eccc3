"""The default floating dtype for new parameters, and input conversion."""

from __future__ import annotations

import numpy as np

from corenet.errors import ShapeError

_default_dtype: np.dtype = np.dtype(np.float64)


def set_default_dtype(dtype: type | np.dtype | str) -> None:
    """Set the dtype of parameters created from now on (float32 or float64)."""
    global _default_dtype
    resolved = np.dtype(dtype)
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"default dtype must be float32 or float64, got {resolved}")
    _default_dtype = resolved


def get_default_dtype() -> np.dtype:
    """The dtype new parameters are created with (float64 unless changed)."""
    return _default_dtype


def as_float_array(tensor, owner: str = "layer") -> np.ndarray:
    """Return ``tensor`` as a floating array; integers and booleans become the default dtype.

    Floating inputs keep their dtype (a float32 network stays float32). Object,
    string and complex arrays are refused with a :class:`ShapeError` naming ``owner``.
    """
    array = np.asarray(tensor)
    kind = array.dtype.kind
    if kind == "f":
        return array
    if kind in "iub":
        return array.astype(_default_dtype)
    raise ShapeError(f"{owner}: expected a real numeric array, got dtype {array.dtype}")
