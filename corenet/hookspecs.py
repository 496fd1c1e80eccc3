"""The plugin contract: one hook per kind of component, each handed a ``register`` callable.

A plugin module implements any of these with ``@corenet.hookimpl``::

    @hookimpl
    def corenet_register_layers(register):
        register(Dropout)

This module is a leaf (it imports no other corenet module), so the built-in plugin, the
plugin loader and every plugin can import it without a cycle.
"""

from __future__ import annotations

from pathlib import Path

import pluggy

hookspec = pluggy.HookspecMarker("corenet")
hookimpl = pluggy.HookimplMarker("corenet")

#: the label of corenet's textbook implementations
REFERENCE = "reference"
#: keyword arguments with which corenet and its bundled plugins register: ``register(Conv, **REFERENCE_TIER)``
REFERENCE_TIER = {"implementation": REFERENCE, "priority": 0}


def package_path(module_file: str, *parts: str) -> str:
    """Absolute path of a file shipped beside ``module_file`` (for test group registration)."""
    return str(Path(module_file).resolve().parent.joinpath(*parts))


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
def corenet_register_inspections(register):
    """Register task inspections for ``corenet inspect NAME``: ``register(function, name)``.

    ``function(epochs, seed, delay, window, streams, plot, as_json)`` trains what it needs and prints
    its tables (``epochs`` None: the inspection's default); the recurrent plugin's ``recall`` is one.
    """


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
    """Add sub-commands to ``app`` (``app.command("name")(function)``, ``app.add_typer(...)``).

    ``app`` is a typer app of the plugin's own; its commands move into the ``corenet`` CLI
    unless their name is taken (a plugin cannot replace a built-in command) or typer cannot
    build them. Refusals and a hook that raises are reported by ``corenet plugins``.
    """


@hookspec
def corenet_register_exporters(register):
    """Register layer exporters for the export plugin: ``register(layer_name, exporter)``.

    ``layer_name`` is a registry layer name (``"Conv"``); ``exporter`` an instance of
    the export plugin's ``LayerExporter`` (see docs/export.md). Only the export plugin calls it.
    """
