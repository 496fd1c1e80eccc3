"""``NeuralNetwork.summary()``: the layers, their implementations, output shapes and parameter counts as text."""

from __future__ import annotations

import copy

import numpy as np

from corenet.base import Phase

#: samples in the batch of zeros pushed through copies of the layers to find the output shapes
PROBE_BATCH = 2


def parameters_of(layer) -> dict[str, np.ndarray]:
    """A layer's parameter tensors by name: ``parameter_names`` (TrainableLayer), else weights/bias
    of a trainable layer; {} for a layer without parameters."""
    names = getattr(layer, "parameter_names", None)
    if names is None:
        names = ("weights", "bias") if getattr(layer, "trainable", False) else ()
    found = {}
    for name in names:
        value = getattr(layer, name, None)
        if value is not None:
            found[name] = np.asarray(value)
    return found


def parameter_count(layer) -> int:
    """Number of trainable numbers in ``layer`` (bias rows included)."""
    return int(sum(array.size for array in parameters_of(layer).values()))


def data_input_shape(data_layer) -> tuple[int, ...] | None:
    """One sample's shape as ``data_layer`` delivers it (without the batch axis), None if unknown."""
    shape = getattr(data_layer, "input_shape", None)
    if shape is not None:
        return tuple(shape)
    getter = getattr(data_layer, "get_test_set", None)
    if callable(getter):
        try:
            return tuple(np.shape(getter()[0])[1:])
        except Exception:  # a data layer whose test set cannot be read: shapes stay unknown
            return None
    return None


def output_shapes(layers: list, input_shape: tuple[int, ...]) -> list[tuple[int, ...] | str]:
    """Each layer's output shape per sample for ``input_shape``, from a batch of zeros through copies of
    the layers in the testing phase; a layer that refuses the batch gets its error message instead
    (and the layers after it '?'). NumPy's global generator is left as it was."""
    from corenet.dtype import get_default_dtype

    state = np.random.get_state()
    shapes: list[tuple[int, ...] | str] = []
    try:
        tensor = np.zeros((PROBE_BATCH, *input_shape), dtype=get_default_dtype())
        for layer in copy.deepcopy(layers):
            if tensor is None:
                shapes.append("?")
                continue
            layer.testing_phase = True
            try:
                tensor = np.asarray(layer.forward(tensor))
                shapes.append(tuple(tensor.shape[1:]))
            except Exception as exc:  # report the mismatch in the table instead of failing the summary
                shapes.append(f"error: {exc}")
                tensor = None
    finally:
        np.random.set_state(state)
    return shapes


def implementation_label(obj, kind: str = "layers") -> str:
    """The implementation label of ``obj``'s class among ``kind`` (``reference``, ``fast``, a plugin's), or
    ``-`` for a class the registry does not know."""
    from corenet.plugins import get_registry

    found = get_registry().registration_of(obj, kind)
    return found.label if found is not None else "-"


def _shape_text(shape) -> str:
    return f"(b, {', '.join(str(n) for n in shape)})" if isinstance(shape, tuple) else shape


def summarize(net, input_shape: tuple[int, ...] | None = None) -> str:
    """The text of :meth:`NeuralNetwork.summary <corenet.network.NeuralNetwork.summary>`."""
    source = "given"
    if input_shape is None:
        input_shape = data_input_shape(net.data_layer) if net.data_layer is not None else None
        source = f"from {type(net.data_layer).__name__}" if input_shape is not None else ""
    input_shape = tuple(int(n) for n in input_shape) if input_shape is not None else None
    shapes = output_shapes(net.layers, input_shape) if input_shape is not None else ["?"] * len(net.layers)
    rows = [("#", "class", "implementation", "output shape", "parameters", "parameter shapes")]
    total = 0
    for index, (layer, shape) in enumerate(zip(net.layers, shapes)):
        tensors = parameters_of(layer)
        count = parameter_count(layer)
        total += count
        described = ", ".join(f"{name} {'x'.join(str(n) for n in array.shape)}" for name, array in tensors.items())
        rows.append((str(index), type(layer).__name__, implementation_label(layer), _shape_text(shape),
                     f"{count:,}", described))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = [f"NeuralNetwork ({len(net.layers)} layers, phase: {Phase.coerce(net.phase).value})"]
    if input_shape is not None:
        lines.append(f"input {_shape_text(input_shape)} {source}; b is the batch size".replace("  ", " "))
    for row in rows:
        cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                 row[3].ljust(widths[3]), row[4].rjust(widths[4]), row[5]]
        lines.append("  ".join(cells).rstrip())
    trainable = sum(1 for layer in net.layers if parameters_of(layer))
    lines.append(f"total: {total:,} parameters in {trainable} trainable layer{'s' if trainable != 1 else ''}")
    extras = []
    if net.optimizer is not None:
        extras.append(f"optimizer {net.optimizer!r} ({implementation_label(net.optimizer, 'optimizers')})")
    if net.loss_layer is not None:
        extras.append(f"loss {net.loss_layer!r}")
    if extras:
        lines.append(", ".join(extras))
    return "\n".join(lines)
