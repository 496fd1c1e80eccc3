"""A network as an ONNX graph (opset :data:`OPSET`, float32).

Each layer's exporter adds nodes through an :class:`OnnxLayerWriter`; weights become
initializers named like the PyTorch state dict (``layer0.weight``), nodes are named
``layer{index}_{OpType}``. The graph is collected as plain data and turned into an
``onnx.ModelProto`` by :func:`to_model`, which needs the ``onnx`` package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corenet_export.errors import ExportError, require
from corenet_export.plan import LayerPlan, plan

#: the ONNX operator set the graphs use
OPSET = 17
#: ONNX IR version 8 is the one that goes with opset 17 (runtimes from 2021 on read it)
IR_VERSION = 8
#: the dtype of the exported graph: onnxruntime runs Conv, RNN and LSTM in float32 only
DTYPE = np.dtype(np.float32)
INPUT, OUTPUT = "input", "output"


@dataclass
class OnnxNode:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    name: str
    attributes: dict[str, Any]


@dataclass
class OnnxGraph:
    """Nodes, initializers and the input's shape of one network (no onnx objects yet)."""

    plans: list[LayerPlan]
    input_shape: list[int | str]
    nodes: list[OnnxNode] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    output: str = INPUT
    _counts: dict[str, int] = field(default_factory=dict)

    def fresh(self, stem: str) -> str:
        """A new unused tensor or node name starting with ``stem``."""
        count = self._counts.get(stem, 0)
        self._counts[stem] = count + 1
        return stem if count == 0 else f"{stem}_{count}"


class OnnxLayerWriter:
    """What an exporter's ``onnx(layer, out)`` adds nodes through, for one layer.

    ``input`` is the name of the layer's input tensor, ``rank`` its rank (None if not
    known), ``dtype`` the graph's float dtype, ``label`` how messages name the layer.
    """

    def __init__(self, graph: OnnxGraph, item: LayerPlan) -> None:
        self._graph = graph
        self.index = item.index
        self.rank = item.input_rank
        self.input = graph.output
        self.dtype = DTYPE
        self.label = item.label

    def initializer(self, suffix: str, array, name: str | None = None) -> str:
        """A weight tensor named ``layer{index}{suffix}`` (``suffix`` like ``.weight``); floats become float32."""
        value = np.array(array, copy=True, order="C")
        if value.dtype.kind == "f":
            value = value.astype(self.dtype)
        key = self._graph.fresh(name or f"layer{self.index}{suffix}")
        self._graph.initializers[key] = value
        return key

    def constant(self, array, suffix: str = ".constant") -> str:
        """A constant tensor (int arrays keep int64, floats become float32), as an initializer."""
        value = np.asarray(array)
        if value.dtype.kind in "iu":
            value = value.astype(np.int64)
        return self.initializer(suffix, value)

    def node(self, op_type: str, inputs: list[str], outputs: int = 1, **attributes: Any):
        """Add a node; returns its output name, or a list of ``outputs`` names when ``outputs`` > 1."""
        name = self._graph.fresh(f"layer{self.index}_{op_type}")
        names = [self._graph.fresh(f"{name}_out{k}" if outputs > 1 else name) for k in range(outputs)]
        self._graph.nodes.append(OnnxNode(op_type, list(inputs), names, name, attributes))
        return names[0] if outputs == 1 else names


def build(network, input_rank: int | None = None) -> OnnxGraph:
    """Run every layer's ONNX exporter over ``network``: the graph as plain data."""
    plans = plan(network, input_rank)
    graph = OnnxGraph(plans, _input_shape(plans[0]))
    for item in plans:
        graph.output = item.exporter.onnx(item.layer, OnnxLayerWriter(graph, item))
    return graph


def _input_shape(first: LayerPlan) -> list[int | str]:
    """Known sizes of the network input: the features of a first FullyConnected/RNN/LSTM, the channels of a Conv."""
    rank, layer = first.input_rank, first.layer
    if rank is None:
        raise ExportError(f"{first.label}: the layers do not tell the rank of the network's input; give it "
                          f"(--input-rank)")
    shape: list[int | str] = ["time" if first.name in ("RNN", "LSTM") else "batch"]
    shape += {3: ["channels", "x"], 4: ["channels", "y", "x"]}.get(rank, [f"d{axis}" for axis in range(1, rank)])
    if first.name in ("FullyConnected", "RNN", "LSTM") and hasattr(layer, "input_size"):
        shape[1] = int(layer.input_size)
    elif first.name == "Conv" and hasattr(layer, "convolution_shape"):
        shape[1] = int(layer.convolution_shape[0])
    return shape


def _output_shape(graph: OnnxGraph) -> list[str]:
    """Symbolic sizes of the output (its rank is known whenever the input's is)."""
    rank = graph.plans[-1].output_rank
    return [graph.input_shape[0], *(f"out{axis}" for axis in range(1, rank))]


def to_model(graph: OnnxGraph, doc: str = ""):
    """The ``onnx.ModelProto`` of ``graph``, checked with ``onnx.checker`` (full check)."""
    onnx = require("onnx", "ONNX export")
    from onnx import helper, numpy_helper

    element = helper.np_dtype_to_tensor_dtype(DTYPE)
    nodes = [helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, **n.attributes) for n in graph.nodes]
    output = graph.output
    if output == INPUT or output in graph.initializers:  # a graph of identities: still one node to the output
        nodes.append(helper.make_node("Identity", [output], [OUTPUT], name="output_Identity"))
    else:
        for node in nodes:  # the last tensor is the graph's output
            node.output[:] = [OUTPUT if name == output else name for name in node.output]
            node.input[:] = [OUTPUT if name == output else name for name in node.input]
    initializers = [numpy_helper.from_array(value, name) for name, value in graph.initializers.items()]
    onnx_graph = helper.make_graph(
        nodes, "corenet", [helper.make_tensor_value_info(INPUT, element, graph.input_shape)],
        [helper.make_tensor_value_info(OUTPUT, element, _output_shape(graph))], initializers, doc_string=doc)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="corenet-export", doc_string=doc)
    model.ir_version = IR_VERSION
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    model.graph.output[0].CopyFrom(inferred.graph.output[0])  # e.g. (batch, 10) instead of (batch, out1)
    onnx.checker.check_model(model, full_check=True)
    return model
