"""Which exporter handles each layer of a network, and the rank of the tensor between layers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corenet_export import layers as builtin
from corenet_export.errors import ExportError
from corenet_export.exporters import LayerExporter, describe, exporter_for, plugin_exporters


def exporter_table() -> dict[str, LayerExporter]:
    """Every known exporter by layer name: the built-in ones (corenet's layers and its bundled plugins'),
    replaced by plugins' where both exist."""
    return {**builtin.BUILTIN, **plugin_exporters()}


#: how the ranks read in messages
RANK_LAYOUTS = {2: "(batch, features)", 3: "(batch, channels, x)", 4: "(batch, channels, y, x)"}


@dataclass
class LayerPlan:
    """One layer of the network with its exporter and the ranks of its input and output (None: not known)."""

    index: int
    layer: object
    name: str
    exporter: LayerExporter
    input_rank: int | None
    output_rank: int | None

    @property
    def label(self) -> str:
        """How messages and generated code name the layer: ``layer 3 (Conv((1, 1), (6, 5, 5), 16))``."""
        return f"layer {self.index} ({describe(self.layer)})"


def network_layers(network) -> list:
    """The layer list of a NeuralNetwork (or a plain list of layers)."""
    layers = getattr(network, "layers", network)
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ExportError(f"nothing to export: {type(network).__name__} has no layers")
    return list(layers)


def plan(network, input_rank: int | None = None) -> list[LayerPlan]:
    """A :class:`LayerPlan` per layer; unexportable layers and rank mismatches raise ExportError.

    The network's input rank comes from ``input_rank`` or from the first layer that needs a
    particular rank (Conv, FullyConnected, RNN...), carried back over the rank-keeping layers before it.
    """
    table = exporter_table()
    layers = network_layers(network)
    found = [(index, layer, *exporter_for(index, layer, table)) for index, layer in enumerate(layers)]
    ranks: list[int | None] = [None] * (len(found) + 1)
    ranks[0] = input_rank
    for position, (index, layer, _, exporter) in enumerate(found):
        needed = exporter.input_rank(layer)
        if needed is not None:
            if ranks[position] is None:
                _carry_back(found, ranks, position, needed)
            elif ranks[position] != needed:
                raise ExportError(_rank_mismatch(index, layer, needed, ranks[position]))
        ranks[position + 1] = exporter.output_rank(layer, ranks[position])
    return [LayerPlan(index, layer, name, exporter, ranks[position], ranks[position + 1])
            for position, (index, layer, name, exporter) in enumerate(found)]


def _carry_back(found: list, ranks: list, position: int, rank: int) -> None:
    """Give the input of layer ``position`` and of the rank-keeping layers before it ``rank``."""
    ranks[position] = rank
    for earlier in range(position - 1, -1, -1):
        _, layer, _, exporter = found[earlier]
        if ranks[earlier] is not None or exporter.input_rank(layer) is not None:
            break
        if exporter.output_rank(layer, rank) != rank:
            break
        ranks[earlier] = rank


def _rank_mismatch(index: int, layer, needed: int, got: int) -> str:
    wanted = RANK_LAYOUTS.get(needed, f"rank {needed}")
    given = RANK_LAYOUTS.get(got, f"rank {got}")
    hint = "; put a Flatten layer before it" if needed == 2 and got > 2 else ""
    return (f"layer {index} ({describe(layer)}) needs a rank-{needed} input {wanted}, but the layers before it give "
            f"rank {got} {given}{hint}")


def network_dtype(plans: list[LayerPlan]) -> np.dtype:
    """The floating dtype of the network's weights (float64 when it has none)."""
    dtypes = []
    for item in plans:
        for attribute in ("weights", "bias", "output_weights"):
            value = getattr(item.layer, attribute, None)
            if value is not None and np.asarray(value).dtype.kind == "f":
                dtypes.append(np.asarray(value).dtype)
    return np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
