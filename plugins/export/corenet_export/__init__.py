"""corenet plugin: export trained networks to PyTorch and ONNX, import PyTorch weights (hook implementations).

Library use::

    from corenet_export import export_torch, export_onnx, assign_state, read_state_dict

Plugins add exporters for their own layers with the hook ``corenet_register_exporters``
(see :mod:`corenet_export.exporters` and docs/export.md).
"""

from corenet import hookimpl
from corenet_export.errors import ExportError, MissingExtra
from corenet_export.exporters import LayerExporter


@hookimpl
def corenet_register_commands(app):
    from corenet_export.cli import register

    register(app)


def __getattr__(name: str):
    """The exporting functions load on first use (torch and onnx are imported only when called)."""
    lazy = {"export_torch": "corenet_export.torch_export", "export_onnx": "corenet_export.onnx_export",
            "assign_state": "corenet_export.import_weights", "read_state_dict": "corenet_export.import_weights",
            "network_from_config": "corenet_export.import_weights"}
    if name in lazy:
        from importlib import import_module

        return getattr(import_module(lazy[name]), name)
    raise AttributeError(f"module 'corenet_export' has no attribute {name!r}")


__all__ = ["ExportError", "LayerExporter", "MissingExtra", "assign_state", "export_onnx", "export_torch",
           "network_from_config", "read_state_dict"]
