"""Exporters of corenet's layers and of its bundled plugins' layers (Dropout, BatchNormalization, TanH,
Sigmoid, RNN, LSTM), by registry name. Each reads the layer's public attributes only.

Layouts. FullyConnected ``weights`` (in + 1, out), last row the bias <-> ``nn.Linear`` weight
(out, in) and bias (out,); ONNX ``Gemm`` with transB=1 on the same arrays. Conv ``weights``
(k, c, m[, n]) are PyTorch's and ONNX's layout as they are (all three cross-correlate).
RNN/LSTM ``weights`` (in + hidden + 1, gates * hidden), rows [x, h, bias] <-> ``weight_ih_l0``
(gates * hidden, in), ``weight_hh_l0`` (gates * hidden, hidden), ``bias_ih_l0`` and a zero
``bias_hh_l0``; ``output_weights`` <-> an ``nn.Linear`` followed by a sigmoid.
"""

from __future__ import annotations

import numpy as np

from corenet_export.errors import ExportError
from corenet_export.exporters import LayerExporter


def _array(layer, attribute: str) -> np.ndarray:
    value = getattr(layer, attribute, None)
    if value is None:
        raise ExportError(f"{layer!r} has no {attribute}; cannot export it")
    return np.asarray(value)


def _like(value, current) -> np.ndarray:
    """``value`` as an array in the dtype of the layer's ``current`` parameter (floats) or float64."""
    current = np.asarray(current) if current is not None else None
    dtype = current.dtype if current is not None and current.dtype.kind == "f" else np.float64
    return np.array(value, dtype=dtype, copy=True, order="C")


def linear_from_fc(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """corenet FC weights (in + 1, out) -> nn.Linear (weight (out, in), bias (out,))."""
    return weights[:-1].T, weights[-1]


def fc_from_linear(weight, bias, like) -> np.ndarray:
    """nn.Linear weight (out, in) and bias (out,) -> corenet FC weights (in + 1, out) in ``like``'s dtype."""
    return _like(np.concatenate([np.asarray(weight).T, np.asarray(bias).reshape(1, -1)]), like)


class FullyConnectedExporter(LayerExporter):
    """``nn.Linear`` / ONNX ``Gemm``."""

    def input_rank(self, layer) -> int:
        return 2

    def torch(self, layer, out) -> None:
        weight, bias = linear_from_fc(_array(layer, "weights"))
        module = out.module(f"nn.Linear({weight.shape[1]}, {weight.shape[0]}, dtype=DTYPE)",
                            {"weight": weight, "bias": bias})
        out.line(f"x = {module}(x)")

    def onnx(self, layer, out) -> str:
        weight, bias = linear_from_fc(_array(layer, "weights"))
        return out.node("Gemm", [out.input, out.initializer(".weight", weight), out.initializer(".bias", bias)],
                        transB=1)

    def assign(self, layer, parameters) -> None:
        linear = parameters[""]
        layer.weights = fc_from_linear(linear["weight"], linear["bias"], layer.weights)


class ConvExporter(LayerExporter):
    """``nn.Conv1d``/``nn.Conv2d`` / ONNX ``Conv``, with corenet's 'same' padding: k // 2 zeros before
    and (k - 1) // 2 after each axis. Symmetric padding goes into the convolution; the asymmetric
    padding of an even kernel is an explicit ``F.pad`` in PyTorch and the ``pads`` attribute in ONNX."""

    def input_rank(self, layer) -> int:
        return len(layer.convolution_shape) + 1

    @staticmethod
    def geometry(layer) -> tuple[int, tuple[int, ...], tuple[int, ...], list[int], list[int]]:
        """(channels, kernel, strides, padding before, padding after) per spatial axis."""
        channels, *kernel = (int(size) for size in layer.convolution_shape)
        strides = tuple(int(s) for s in np.atleast_1d(layer.stride_shape))
        if len(strides) == 1:
            strides *= len(kernel)
        return channels, tuple(kernel), strides, [k // 2 for k in kernel], [(k - 1) // 2 for k in kernel]

    def torch(self, layer, out) -> None:
        channels, kernel, strides, before, after = self.geometry(layer)
        weight, bias = _array(layer, "weights"), _array(layer, "bias").reshape(-1)
        symmetric = before == after
        padding = f", padding={tuple(before)}" if symmetric and any(before) else ""
        module = out.module(
            f"nn.Conv{len(kernel)}d({channels}, {weight.shape[0]}, kernel_size={kernel}, stride={strides}"
            f"{padding}, dtype=DTYPE)", {"weight": weight, "bias": bias})
        if not symmetric:
            pads = tuple(p for axis in reversed(range(len(kernel))) for p in (before[axis], after[axis]))
            out.line(f"x = F.pad(x, {pads})  # corenet's 'same' padding: k // 2 before, (k - 1) // 2 after")
        out.line(f"x = {module}(x)")

    def onnx(self, layer, out) -> str:
        _, kernel, strides, before, after = self.geometry(layer)
        weight = out.initializer(".weight", _array(layer, "weights"))
        bias = out.initializer(".bias", _array(layer, "bias").reshape(-1))
        return out.node("Conv", [out.input, weight, bias], kernel_shape=list(kernel), strides=list(strides),
                        pads=before + after)

    def assign(self, layer, parameters) -> None:
        conv = parameters[""]
        layer.weights = _like(conv["weight"], layer.weights)
        layer.bias = _like(conv["bias"], layer.bias)


class PoolingExporter(LayerExporter):
    """``nn.MaxPool2d`` / ONNX ``MaxPool``, no padding."""

    def input_rank(self, layer) -> int:
        return 4

    @staticmethod
    def _window(layer) -> tuple[tuple[int, ...], tuple[int, ...]]:
        def pair(value) -> tuple[int, ...]:
            sizes = tuple(int(s) for s in np.atleast_1d(value))
            return sizes * 2 if len(sizes) == 1 else sizes

        return pair(layer.pooling_shape), pair(layer.stride_shape)

    def torch(self, layer, out) -> None:
        window, strides = self._window(layer)
        module = out.module(f"nn.MaxPool2d(kernel_size={window}, stride={strides})")
        out.line(f"x = {module}(x)")

    def onnx(self, layer, out) -> str:
        window, strides = self._window(layer)
        return out.node("MaxPool", [out.input], kernel_shape=list(window), strides=list(strides))


class FlattenExporter(LayerExporter):
    def output_rank(self, layer, rank):
        return 2

    def torch(self, layer, out) -> None:
        out.line("x = torch.flatten(x, 1)")

    def onnx(self, layer, out) -> str:
        return out.node("Flatten", [out.input], axis=1)


class ElementwiseExporter(LayerExporter):
    """A function of each element: ``torch.{function}`` / the ONNX operator of the same meaning."""

    def __init__(self, function: str, op_type: str) -> None:
        self.function, self.op_type = function, op_type

    def torch(self, layer, out) -> None:
        out.line(f"x = torch.{self.function}(x)")

    def onnx(self, layer, out) -> str:
        return out.node(self.op_type, [out.input])


def onnx_sigmoid(out, x: str) -> str:
    """1 / (1 + exp(-x)) spelled out: onnxruntime's float32 ``Sigmoid`` is a fast approximation whose absolute
    error (about 1e-7) is up to 7e-4 relative for small outputs; this form stays within 2e-7 relative."""
    one = out.constant(np.array(1.0, dtype=out.dtype), ".one")
    decay = out.node("Exp", [out.node("Neg", [x])])
    return out.node("Reciprocal", [out.node("Add", [decay, one])])


class SigmoidExporter(ElementwiseExporter):
    def __init__(self) -> None:
        super().__init__("sigmoid", "Sigmoid")

    def onnx(self, layer, out) -> str:
        return onnx_sigmoid(out, out.input)


class SoftMaxExporter(LayerExporter):
    """Softmax over axis 1, then corenet's floor: no probability below the dtype's smallest normal number."""

    def input_rank(self, layer) -> int:
        return 2

    def torch(self, layer, out) -> None:
        out.line("# corenet keeps every probability >= the smallest normal number of the dtype")
        out.line("x = torch.softmax(x, dim=1).clamp_min(torch.finfo(x.dtype).tiny)")

    def onnx(self, layer, out) -> str:
        probabilities = out.node("Softmax", [out.input], axis=1)
        tiny = out.constant(np.array(np.finfo(out.dtype).tiny, dtype=out.dtype), ".tiny")
        return out.node("Max", [probabilities, tiny])


class DropoutExporter(LayerExporter):
    """``nn.Dropout`` (identity in eval mode, corenet's testing phase) / ONNX ``Identity``."""

    def torch(self, layer, out) -> None:
        module = out.module(f"nn.Dropout(p=1 - {float(layer.probability)!r})")
        out.line(f"x = {module}(x)  # corenet's probability is the fraction kept; identity in eval mode")

    def onnx(self, layer, out) -> str:
        return out.node("Identity", [out.input])


class BatchNormalizationExporter(LayerExporter):
    """``nn.BatchNorm1d/2d/3d`` on the moving statistics / ONNX ``BatchNormalization``, corenet's epsilon.

    ``momentum`` is set so that PyTorch's training updates the moving mean as corenet does
    (0.8 old + 0.2 batch); PyTorch's moving variance uses the unbiased batch variance, corenet's the biased one.
    """

    def parameters(self, layer) -> dict[str, np.ndarray]:
        return {"weight": _array(layer, "weights").reshape(-1), "bias": _array(layer, "bias").reshape(-1),
                "running_mean": _array(layer, "moving_mean").reshape(-1),
                "running_var": _array(layer, "moving_variance").reshape(-1)}

    def torch(self, layer, out) -> None:
        if out.rank is None:
            raise ExportError(f"{out.label}: cannot tell whether it normalizes vectors or images; give the "
                              f"network's input rank (--input-rank)")
        dims = {2: 1, 3: 1, 4: 2, 5: 3}.get(out.rank)
        if dims is None:
            raise ExportError(f"{out.label}: PyTorch has no BatchNorm for rank-{out.rank} inputs")
        parameters = self.parameters(layer)
        momentum = round(1.0 - float(getattr(layer, "momentum", 0.8)), 12)
        module = out.module(
            f"nn.BatchNorm{dims}d({parameters['weight'].size}, eps={float(layer.epsilon)!r}, momentum={momentum!r}, "
            f"dtype=DTYPE)", {**parameters, "num_batches_tracked": np.array(0, dtype=np.int64)})
        out.line(f"x = {module}(x)  # eval mode: the moving mean and variance")

    def onnx(self, layer, out) -> str:
        parameters = self.parameters(layer)
        names = [out.initializer(f".{name}", parameters[name])
                 for name in ("weight", "bias", "running_mean", "running_var")]
        return out.node("BatchNormalization", [out.input, *names], epsilon=float(layer.epsilon))

    def assign(self, layer, parameters) -> None:
        norm = parameters[""]
        layer.weights = _like(norm["weight"], layer.weights)
        layer.bias = _like(norm["bias"], layer.bias)
        layer.moving_mean = _like(norm["running_mean"], layer.moving_mean)
        layer.moving_variance = _like(norm["running_var"], layer.moving_variance)
        if hasattr(layer, "moving_initialized"):  # the statistics are real: further training averages them
            layer.moving_initialized = True


class RecurrentExporter(LayerExporter):
    """RNN/LSTM over one sequence (time, input_size): ``nn.RNN``/``nn.LSTM`` (unbatched input, zero initial
    state, ``bias_hh_l0`` zero) + ``nn.Linear`` + sigmoid; ONNX ``RNN``/``LSTM`` with the gate blocks reordered
    (ONNX's LSTM order is i, o, f, c; corenet's and PyTorch's i, f, g, o) + ``Gemm`` + sigmoid."""

    def __init__(self, torch_class: str, op_type: str, gates: int, onnx_order: tuple[int, ...]) -> None:
        self.torch_class, self.op_type, self.gates, self.onnx_order = torch_class, op_type, gates, onnx_order

    def input_rank(self, layer) -> int:
        return 2

    def output_rank(self, layer, rank) -> int:
        return 2

    def split(self, layer) -> dict[str, np.ndarray]:
        """PyTorch's parameters of the recurrence and the output head (see the module docstring)."""
        weights, output_weights = _array(layer, "weights"), _array(layer, "output_weights")
        n_in, hidden = int(layer.input_size), int(layer.hidden_size)
        if weights.shape != (n_in + hidden + 1, self.gates * hidden):
            raise ExportError(f"{layer!r}: weights of shape {weights.shape}, expected "
                              f"{(n_in + hidden + 1, self.gates * hidden)}")
        head_weight, head_bias = linear_from_fc(output_weights)
        return {"weight_ih_l0": weights[:n_in].T, "weight_hh_l0": weights[n_in:-1].T, "bias_ih_l0": weights[-1],
                "bias_hh_l0": np.zeros_like(weights[-1]), "head_weight": head_weight, "head_bias": head_bias}

    def torch(self, layer, out) -> None:
        parts = self.split(layer)
        hidden = int(layer.hidden_size)
        recurrence = out.module(f"nn.{self.torch_class}({int(layer.input_size)}, {hidden}, dtype=DTYPE)",
                                {name: parts[name] for name in
                                 ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")})
        head = out.module(f"nn.Linear({hidden}, {parts['head_weight'].shape[0]}, dtype=DTYPE)",
                          {"weight": parts["head_weight"], "bias": parts["head_bias"]}, suffix="_output")
        out.line(f"x, _ = {recurrence}(x)  # hidden states (time, {hidden}) from a zero state")
        out.line(f"x = torch.sigmoid({head}(x))")

    def _onnx_blocks(self, array: np.ndarray, hidden: int) -> np.ndarray:
        """Reorder the gate blocks along axis 0 (gates * hidden, ...) into ONNX's order."""
        blocks = array.reshape(self.gates, hidden, *array.shape[1:])
        return blocks[list(self.onnx_order)].reshape(array.shape)

    def onnx(self, layer, out) -> str:
        parts = self.split(layer)
        hidden = int(layer.hidden_size)
        w = out.initializer(".W", self._onnx_blocks(parts["weight_ih_l0"], hidden)[None])
        r = out.initializer(".R", self._onnx_blocks(parts["weight_hh_l0"], hidden)[None])
        bias = np.concatenate([self._onnx_blocks(parts[name], hidden) for name in ("bias_ih_l0", "bias_hh_l0")])
        b = out.initializer(".B", bias[None])
        sequence = out.node("Unsqueeze", [out.input, out.constant([1], ".batch_axis")])  # (time, 1, input)
        states = out.node(self.op_type, [sequence, w, r, b], hidden_size=hidden)  # (time, 1, 1, hidden)
        states = out.node("Squeeze", [states, out.constant([1, 2], ".squeeze_axes")])  # (time, hidden)
        logits = out.node("Gemm", [states, out.initializer("_output.weight", parts["head_weight"]),
                                   out.initializer("_output.bias", parts["head_bias"])], transB=1)
        return onnx_sigmoid(out, logits)

    def assign(self, layer, parameters) -> None:
        cell, head = parameters[""], parameters["_output"]
        bias = np.asarray(cell["bias_ih_l0"])
        if np.any(np.asarray(cell["bias_hh_l0"])):  # corenet has one bias; PyTorch's two add up
            bias = bias + np.asarray(cell["bias_hh_l0"])
        stacked = np.concatenate([np.asarray(cell["weight_ih_l0"]).T, np.asarray(cell["weight_hh_l0"]).T,
                                  bias.reshape(1, -1)])
        layer.weights = _like(stacked, layer.weights)
        layer.output_weights = fc_from_linear(head["weight"], head["bias"], layer.output_weights)


#: the built-in exporters by layer name
BUILTIN: dict[str, LayerExporter] = {
    "FullyConnected": FullyConnectedExporter(),
    "Conv": ConvExporter(),
    "Pooling": PoolingExporter(),
    "Flatten": FlattenExporter(),
    "ReLU": ElementwiseExporter("relu", "Relu"),
    "TanH": ElementwiseExporter("tanh", "Tanh"),
    "Sigmoid": SigmoidExporter(),
    "SoftMax": SoftMaxExporter(),
    "Dropout": DropoutExporter(),
    "BatchNormalization": BatchNormalizationExporter(),
    "RNN": RecurrentExporter("RNN", "RNN", 1, (0,)),
    "LSTM": RecurrentExporter("LSTM", "LSTM", 4, (0, 3, 1, 2)),
}
