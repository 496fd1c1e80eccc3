"""Hook specifications: one hook per kind of component, each handed a ``register`` callable.

A plugin module implements any of these with ``@corenet.hookimpl``::

    @hookimpl
    def corenet_register_layers(register):
        register(Dropout)
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("corenet")
hookimpl = pluggy.HookimplMarker("corenet")


@hookspec
def corenet_register_layers(register):
    """Register layer classes: ``register(cls, name=None)``."""


@hookspec
def corenet_register_optimizers(register):
    """Register optimizer classes: ``register(cls, name=None)``."""


@hookspec
def corenet_register_initializers(register):
    """Register initializer classes: ``register(cls, name=None)``."""


@hookspec
def corenet_register_regularizers(register):
    """Register regularizer (constraint) classes: ``register(cls, name=None)``."""


@hookspec
def corenet_register_losses(register):
    """Register loss classes: ``register(cls, name=None)``."""


@hookspec
def corenet_register_models(register):
    """Register model builders (callables returning a NeuralNetwork): ``register(build, name)``."""


@hookspec
def corenet_register_datasets(register):
    """Register data layers by short name: ``register(cls, name)`` (``"iris"``, ``"digits"``)."""


@hookspec
def corenet_register_test_groups(register):
    """Register conformance test groups: ``register(name, paths, weight=0.0, names=())``.

    ``paths`` are test files (or pytest node ids) the plugin ships inside its package;
    ``names`` the registry names the group tests (``corenet check --as NAME`` runs the
    groups that test NAME); by default a group ``TestX`` tests ``X``.
    """


@hookspec
def corenet_register_commands(app):
    """Add sub-commands to the typer ``app`` of the ``corenet`` CLI."""
