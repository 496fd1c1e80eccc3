"""The core layers, importable from here: ``from corenet.layers import Conv, ReLU``.

fully_connected: FullyConnected; activations: ReLU, SoftMax; flatten: Flatten;
conv: Conv; pooling: Pooling. Each loads on first use, so importing this package is cheap.
Plugin layers (Dropout, BatchNormalization, ...) live in their plugins' packages; every
layer, core or plugin, is also reachable by name through ``corenet.get_registry().layers``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

#: class name -> the module defining it
_LAZY = {
    "FullyConnected": "corenet.layers.fully_connected",
    "ReLU": "corenet.layers.activations",
    "SoftMax": "corenet.layers.activations",
    "Flatten": "corenet.layers.flatten",
    "Conv": "corenet.layers.conv",
    "Pooling": "corenet.layers.pooling",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'corenet.layers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # pragma: no cover
    from corenet.layers.activations import ReLU, SoftMax  # noqa: F401
    from corenet.layers.conv import Conv  # noqa: F401
    from corenet.layers.flatten import Flatten  # noqa: F401
    from corenet.layers.fully_connected import FullyConnected  # noqa: F401
    from corenet.layers.pooling import Pooling  # noqa: F401
