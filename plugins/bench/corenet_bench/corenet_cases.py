"""One training step of each workload in corenet, built from the plugin registry (or one tier's view of it,
:class:`corenet_bench.tiers.TierRegistry`).

:func:`build` returns a :class:`Case`: ``step()`` runs forward + backward (the
layer's optimizer updates inside backward), ``dtypes()`` lists the dtypes of the
output and parameters after a step, to show whether float32 stays float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from corenet.dtype import default_dtype
from corenet_bench import workloads as wl
from corenet_bench.workloads import Skip


@dataclass
class Case:
    """A ready-to-time step, a dtype probe, a note for the report ('' if nothing to say) and
    what is being stepped (the network or the layer), for profiling tools."""

    step: Callable[[], object]
    dtypes: Callable[[], list[str]]
    note: str = ""
    subject: object = None


class FixedBatch:
    """A data layer that returns the same (input, one-hot label) batch every time."""

    def __init__(self, inputs: np.ndarray, labels: np.ndarray) -> None:
        self.inputs, self.labels = inputs, labels

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        return self.inputs, self.labels


def build(key: str, dtype: str, registry) -> Case:
    """The corenet case for workload ``key`` in ``dtype``; raises :class:`Skip` if a plugin is missing."""
    np_dtype = np.dtype(dtype)
    np.random.seed(0)
    with default_dtype(np_dtype):
        return _BUILDERS[key](np_dtype, registry)


#: which distribution provides a name the workloads need (for skip notes)
PROVIDERS = {"Dropout": "corenet-dropout", "BatchNormalization": "corenet-batchnorm", "RNN": "corenet-recurrent",
             "LSTM": "corenet-recurrent", "L2_Regularizer": "corenet-reg-l1l2"}


def _need(registry, kind: str, name: str):
    table = getattr(registry, kind)
    if name not in table:
        provider = PROVIDERS.get(name)
        raise Skip(f"{name} is not installed" + (f" (install the plugin {provider})" if provider else ""))
    return table[name]


def _array_dtypes(*arrays) -> list[str]:
    return sorted({np.asarray(a).dtype.name for a in arrays})


def _layer_case(layer, x: np.ndarray, optimizer=None, initializers=None) -> Case:
    """Forward + backward of one layer on ``x`` with a fixed random error of the output's shape."""
    if initializers is not None:
        layer.initialize(*initializers)
    if optimizer is not None:
        layer.optimizer = optimizer
    output = layer.forward(x)
    error = np.random.standard_normal(output.shape).astype(x.dtype)

    def step():
        layer.forward(x)
        return layer.backward(error)

    def dtypes() -> list[str]:
        params = [getattr(layer, n) for n in getattr(layer, "parameter_names", ()) if hasattr(layer, n)]
        return _array_dtypes(layer.forward(x), layer.backward(error), *params)

    return Case(step, dtypes, subject=layer)


def _sgd(registry):
    return registry.optimizers["Sgd"](wl.SGD_RATE)


def _xavier(registry):
    return registry.initializers["Xavier"](), registry.initializers["Constant"](0.1)


def _lenet(dtype: np.dtype, registry) -> Case:
    net, note = _lenet_standin(registry), ""
    inputs = np.random.standard_normal((wl.LENET_BATCH, 1, 28, 28)).astype(dtype)
    labels = np.eye(10, dtype=dtype)[np.random.randint(0, 10, wl.LENET_BATCH)]
    net.data_layer = FixedBatch(inputs, labels)

    def step():
        loss = net.forward()
        net.backward()
        return loss

    def dtypes() -> list[str]:
        tensor = inputs
        for layer in net.layers:
            tensor = layer.forward(tensor)
        params = [getattr(layer, name) for layer in net.layers
                  for name in getattr(layer, "parameter_names", ()) if hasattr(layer, name)]
        return _array_dtypes(tensor, *params)

    return Case(step, dtypes, note, subject=net)


def _lenet_standin(registry):
    """The LeNet of API.md (corenet-lenet's model) from the registry's components, so a tier's classes are used."""
    from corenet.network import NeuralNetwork

    l2 = _need(registry, "regularizers", "L2_Regularizer")
    layers, he = registry.layers, registry.initializers["He"]
    optimizer = registry.optimizers["Adam"](5e-4, 0.9, 0.999)
    optimizer.add_regularizer(l2(4e-4))
    net = NeuralNetwork(optimizer, he(), he())
    net.loss_layer = registry.losses["CrossEntropyLoss"]()
    for layer in (
        layers["Conv"]((1, 1), (1, 5, 5), 6), layers["ReLU"](), layers["Pooling"]((2, 2), (2, 2)),
        layers["Conv"]((1, 1), (6, 5, 5), 16), layers["ReLU"](), layers["Pooling"]((2, 2), (2, 2)),
        layers["Flatten"](),
        layers["FullyConnected"](784, 120), layers["ReLU"](),
        layers["FullyConnected"](120, 84), layers["ReLU"](),
        layers["FullyConnected"](84, 10), layers["SoftMax"](),
    ):
        net.append_layer(layer)
    return net


def _recurrent(name: str):
    def builder(dtype: np.dtype, registry) -> Case:
        cls = _need(registry, "layers", name)
        steps, inputs, hidden, outputs = wl.RNN_SIZES
        x = np.random.standard_normal((steps, inputs)).astype(dtype)
        return _layer_case(cls(inputs, hidden, outputs), x, _sgd(registry), _xavier(registry))

    return builder


def _batchnorm(dtype: np.dtype, registry) -> Case:
    cls = _need(registry, "layers", "BatchNormalization")
    x = np.random.standard_normal(wl.BATCHNORM_SHAPE).astype(dtype)
    return _layer_case(cls(wl.BATCHNORM_SHAPE[1]), x, _sgd(registry))


def _dropout(dtype: np.dtype, registry) -> Case:
    cls = _need(registry, "layers", "Dropout")
    x = np.random.standard_normal(wl.DROPOUT_SHAPE).astype(dtype)
    return _layer_case(cls(wl.DROPOUT_KEEP), x)


def _conv(dtype: np.dtype, registry) -> Case:
    cls = _need(registry, "layers", "Conv")
    x = np.random.standard_normal(wl.CONV_INPUT).astype(dtype)
    kernels, m, n = wl.CONV_KERNELS
    layer = cls((1, 1), (wl.CONV_INPUT[1], m, n), kernels)
    initializers = (registry.initializers["He"](), registry.initializers["Constant"](0.1))
    return _layer_case(layer, x, _sgd(registry), initializers)


_BUILDERS: dict[str, Callable[[np.dtype, object], Case]] = {
    "W1": _lenet,
    "W2": _recurrent("RNN"),
    "W3": _recurrent("LSTM"),
    "W4": _batchnorm,
    "W5": _dropout,
    "W6": _conv,
}
