"""The core layers, importable from here: ``from corenet.layers import Conv, ReLU``.

fully_connected: FullyConnected; activations: ReLU, SoftMax; flatten: Flatten;
conv: Conv; pooling: Pooling. Each loads on first use, so importing this package is cheap.
Plugin layers (Dropout, BatchNormalization, ...) live in their plugins' packages; every
layer, core or plugin, is also reachable by name through ``corenet.get_registry().layers``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corenet.lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from corenet.layers.activations import ReLU, SoftMax  # noqa: F401
    from corenet.layers.conv import Conv  # noqa: F401
    from corenet.layers.flatten import Flatten  # noqa: F401
    from corenet.layers.fully_connected import FullyConnected  # noqa: F401
    from corenet.layers.pooling import Pooling  # noqa: F401
