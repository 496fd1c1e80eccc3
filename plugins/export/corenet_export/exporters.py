"""The exporter protocol and the table of exporters by layer name (built-in ones plus plugins').

An exporter knows one kind of corenet layer, named as in the registry (``"Conv"``), and
reads only the layer's public attributes (``weights``, ``bias``, ``output_weights``,
``moving_mean`` ...), so it serves every implementation of that name.

Plugins add exporters for their own layers with the hook ``corenet_register_exporters``::

    from corenet import hookimpl
    from corenet_export import LayerExporter

    class SquareExporter(LayerExporter):
        def torch(self, layer, out):
            out.line("x = x * x")
        def onnx(self, layer, out):
            return out.node("Mul", [out.input, out.input])

    @hookimpl
    def corenet_register_exporters(register):
        register("Square", SquareExporter())

A plugin's exporter replaces a built-in one of the same name.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from corenet_export.errors import ExportError

if TYPE_CHECKING:  # pragma: no cover
    from corenet_export.onnx_graph import OnnxLayerWriter
    from corenet_export.torch_code import TorchLayerWriter


class LayerExporter:
    """How one kind of corenet layer becomes PyTorch code and weights, and ONNX nodes.

    Override what the layer needs; the defaults describe a layer without weights
    that keeps its input's rank and cannot be exported.
    """

    def input_rank(self, layer) -> int | None:
        """The rank (axes, batch included) of the input the layer needs; None: any."""
        return None

    def output_rank(self, layer, rank: int | None) -> int | None:
        """The rank of the output for an input of ``rank`` (None: not known)."""
        return rank

    def torch(self, layer, out: TorchLayerWriter) -> None:
        """Declare modules (``out.module``) with their state-dict entries and forward lines (``out.line``) on ``x``."""
        raise ExportError(f"{out.label}: {type(self).__name__} has no PyTorch export")

    def onnx(self, layer, out: OnnxLayerWriter) -> str:
        """Add nodes and initializers reading ``out.input``; return the name of the layer's output."""
        raise ExportError(f"{out.label}: {type(self).__name__} has no ONNX export")

    def assign(self, layer, parameters: dict[str, dict[str, np.ndarray]]) -> None:
        """Set the layer's weights from the state-dict entries :meth:`torch` declares, by module suffix
        (``""``, ``"_output"``) and parameter name: the inverse of :meth:`torch` (``import-weights``)."""
        if any(parameters.values()):
            raise ExportError(f"{type(self).__name__} cannot import weights into {layer!r}")


def plugin_exporters() -> dict[str, LayerExporter]:
    """Exporters registered by plugins through ``corenet_register_exporters``.

    Two plugins registering one name is an error when that name is exported (see :func:`exporter_for`);
    a plugin whose hook raises is reported on stderr and skipped.
    """
    from corenet.plugins import get_plugin_manager, get_registry

    pm = get_plugin_manager()
    hook = getattr(pm.hook, "corenet_register_exporters", None)
    if hook is None:
        return {}
    failed = {p.name for p in get_registry().failures}
    found: dict[str, LayerExporter] = {}
    owners: dict[str, list[str]] = {}
    for impl in hook.get_hookimpls():
        if impl.plugin_name in failed:
            continue
        staged: dict[str, LayerExporter] = {}

        def register(name: str, exporter, _staged=staged, _plugin=impl.plugin_name) -> None:
            if not isinstance(name, str) or not name:
                raise ExportError(f"plugin {_plugin!r}: an exporter needs a layer name, got {name!r}")
            if not (callable(getattr(exporter, "torch", None)) or callable(getattr(exporter, "onnx", None))):
                raise ExportError(f"plugin {_plugin!r}: the exporter for {name!r} has neither torch() nor onnx()")
            _staged[name] = exporter

        try:
            impl.function(register=register)
        except Exception as exc:  # one plugin's exporters must not break the others
            print(f"corenet-export: warning: plugin {impl.plugin_name!r} failed to register exporters: {exc}",
                  file=sys.stderr)
            continue
        for name, exporter in staged.items():
            found[name] = exporter
            owners.setdefault(name, []).append(impl.plugin_name)
    for name, plugins in owners.items():
        if len(plugins) > 1:
            found[name] = _Conflict(name, plugins)
    return found


def describe(layer) -> str:
    """How messages name a layer: its repr (``Conv((1, 1), (1, 3, 3), 16)``), or its class name when the
    class has no repr of its own."""
    return repr(layer) if type(layer).__repr__ is not object.__repr__ else type(layer).__name__


def layer_name(layer) -> str:
    """The registry name of ``layer`` (e.g. ``"Conv"`` for any Conv implementation), else its class name."""
    from corenet.plugins import get_registry

    return get_registry().name_of(layer, "layers") or type(layer).__name__


def exporter_for(index: int, layer, table: dict[str, LayerExporter]) -> tuple[str, LayerExporter]:
    """(name, exporter) of the network's layer ``index``, or an ExportError naming the layer."""
    name = layer_name(layer)
    exporter = table.get(name)
    if exporter is None:
        known = ", ".join(sorted(table))
        raise ExportError(
            f"layer {index} ({describe(layer)}) cannot be exported: no exporter for the layer "
            f"name {name!r}. Exporters exist for: {known}. A plugin adds one with the hook "
            f"corenet_register_exporters (see docs/export.md)."
        )
    if isinstance(exporter, _Conflict):
        raise ExportError(f"layer {index} ({describe(layer)}): {exporter.message}")
    return name, exporter


class _Conflict(LayerExporter):
    """Stands for a name two plugins registered exporters for."""

    def __init__(self, name: str, plugins: list[str]) -> None:
        self.message = (f"the plugins {', '.join(repr(p) for p in plugins)} all register an exporter for "
                        f"{name!r}; uninstall all but one")
