"""Data layers: ``next() -> (input, one-hot label)`` and ``get_test_set()``.

Importable from here (``from corenet.data import IrisData``); each loads on first use.
iris: IrisData; digits: DigitData; mnist: MNISTData; synthetic: RandomData.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

#: class name -> the module defining it
_LAZY = {
    "IrisData": "corenet.data.iris",
    "DigitData": "corenet.data.digits",
    "MNISTData": "corenet.data.mnist",
    "RandomData": "corenet.data.synthetic",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'corenet.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # pragma: no cover
    from corenet.data.digits import DigitData  # noqa: F401
    from corenet.data.iris import IrisData  # noqa: F401
    from corenet.data.mnist import MNISTData  # noqa: F401
    from corenet.data.synthetic import RandomData  # noqa: F401
