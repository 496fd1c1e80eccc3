"""Data layers: ``next() -> (input, one-hot label)`` and ``get_test_set()``.

Importable from here (``from corenet.data import IrisData``); each loads on first use.
iris: IrisData; digits: DigitData; mnist: MNISTData; synthetic: RandomData.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corenet.lazy import lazy_exports

#: class name -> the module defining it
_LAZY = {
    "IrisData": "corenet.data.iris",
    "DigitData": "corenet.data.digits",
    "MNISTData": "corenet.data.mnist",
    "RandomData": "corenet.data.synthetic",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from corenet.data.digits import DigitData  # noqa: F401
    from corenet.data.iris import IrisData  # noqa: F401
    from corenet.data.mnist import MNISTData  # noqa: F401
    from corenet.data.synthetic import RandomData  # noqa: F401
