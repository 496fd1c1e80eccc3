"""corenet: a NumPy deep-learning framework whose features are pluggable.

The public names below load lazily, so ``import corenet`` (and the CLI) start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corenet.hookspecs import hookimpl
from corenet.lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "BaseLayer": "corenet.base",
    "TrainableLayer": "corenet.base",
    "Phase": "corenet.base",
    "NeuralNetwork": "corenet.network",
    "save": "corenet.network",
    "load": "corenet.network",
    "get_registry": "corenet.plugins",
    "set_default_dtype": "corenet.dtype",
    "get_default_dtype": "corenet.dtype",
    "set_checks": "corenet.shapes",
    "get_checks": "corenet.shapes",
    "ShapeError": "corenet.errors",
    "NonFiniteError": "corenet.errors",
    "DivergenceError": "corenet.errors",
    "NetworkError": "corenet.errors",
    "RegistryError": "corenet.errors",
    "PluginError": "corenet.errors",
    "CheckpointError": "corenet.errors",
    "CorenetError": "corenet.errors",
}

__all__ = ["__version__", "hookimpl", *_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from corenet.base import BaseLayer, Phase, TrainableLayer  # noqa: F401
    from corenet.dtype import get_default_dtype, set_default_dtype  # noqa: F401
    from corenet.errors import (  # noqa: F401
        CheckpointError,
        CorenetError,
        DivergenceError,
        NonFiniteError,
        PluginError,
        RegistryError,
        ShapeError,
    )
    from corenet.network import NeuralNetwork, load, save  # noqa: F401
    from corenet.plugins import get_registry  # noqa: F401
    from corenet.shapes import get_checks, set_checks  # noqa: F401
