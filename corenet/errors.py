"""The exceptions corenet raises for mistakes a user can make."""

from __future__ import annotations


class CorenetError(Exception):
    """Base class of every corenet-specific error."""


class ShapeError(CorenetError, ValueError):
    """An array reached a layer with a rank or size the layer cannot take."""


class RegistryError(CorenetError, KeyError):
    """A name was looked up in the registry and is not there."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class PluginError(CorenetError):
    """A plugin failed to import or to register its components."""


class CheckpointError(CorenetError):
    """A saved network could not be read or written safely."""
