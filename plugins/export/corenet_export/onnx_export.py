"""``corenet export --to onnx``: the network as one ONNX file (opset 17, float32), checked before it is written."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from corenet_export.errors import require
from corenet_export.files import write_atomically
from corenet_export.onnx_graph import OPSET, build, to_model


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote."""

    path: Path
    model: object  # onnx.ModelProto
    opset: int = OPSET


def export_onnx(network, target: str | os.PathLike, *, origin: str | None = None,
                input_rank: int | None = None) -> OnnxExport:
    """Write ``network`` as an ONNX model to ``target``; the model passes ``onnx.checker`` (full check) first.

    Input ``input``, output ``output``; recurrent layers use ONNX's ``RNN``/``LSTM`` operators.
    """
    graph = build(network, input_rank)  # unexportable layers are reported first, with or without onnx
    onnx = require("onnx", "Export to ONNX")
    layers = "; ".join(f"{item.index}: {item.layer!r}" for item in graph.plans)
    doc = f"corenet network from {origin or 'memory'}, exported by corenet-export (opset {OPSET}, float32). {layers}"
    model = to_model(graph, doc)
    write_atomically(target, lambda path: onnx.save(model, str(path)))
    return OnnxExport(Path(target), model)
