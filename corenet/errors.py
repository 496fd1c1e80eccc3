"""The exceptions corenet raises for mistakes a user can make."""

from __future__ import annotations


class CorenetError(Exception):
    """Base class of every corenet-specific error."""


class ShapeError(CorenetError, ValueError):
    """An array reached a layer with a rank, size or dtype the layer cannot take."""


class NonFiniteError(ShapeError):
    """An array held NaN or inf while ``corenet.set_checks(nan=True)`` asks for finite values."""


class NetworkError(CorenetError, ValueError):
    """A network is put together in a way that would train to wrong results (e.g. no SoftMax before
    CrossEntropyLoss)."""


class DivergenceError(CorenetError, FloatingPointError):
    """Training stopped because the loss became NaN or infinite."""


class RegistryError(CorenetError, KeyError):
    """A name was looked up in the registry and is not there."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class PluginError(CorenetError):
    """A plugin failed to import or to register its components."""


class CheckpointError(CorenetError):
    """A saved network could not be read or written safely."""
