"""Helpers shared by the checkpoint tests: small networks, hand-made files, temporary registrations."""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import struct

import numpy as np
from corenet_reg_l1l2.constraints import L2_Regularizer

from corenet import plugins
from corenet.checkpoint import FORMAT_VERSION, MAGIC, PICKLE_PROTOCOL
from corenet.data.synthetic import RandomData
from corenet.initializers import Constant, He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Adam

PROBE = np.random.RandomState(5).uniform(size=(7, 4))


def small_net(seed: int = 0, trained: int = 3) -> NeuralNetwork:
    """FC(4, 5) -> ReLU -> FC(5, 3) -> SoftMax, Adam with L2, trained ``trained`` steps on random data."""
    np.random.seed(seed)
    optimizer = Adam(1e-2, 0.8, 0.99)
    optimizer.add_regularizer(L2_Regularizer(3e-3))
    net = NeuralNetwork(optimizer, He(), Constant(0.25))
    net.loss_layer = CrossEntropyLoss()
    for layer in (FullyConnected(4, 5), ReLU(), FullyConnected(5, 3), SoftMax()):
        net.append_layer(layer)
    net.data_layer = RandomData(4, 6, 3)
    net.train(trained)
    return net


def envelope_bytes(record, *, format_version: int = FORMAT_VERSION, sha256: str | None = None,
                   magic: str = MAGIC) -> bytes:
    """A checkpoint file around ``record`` with a correct checksum (unless ``sha256`` is given):
    what an attacker who knows the format can write."""
    payload = pickle.dumps(record, protocol=PICKLE_PROTOCOL)
    envelope = {"magic": magic, "format": format_version, "corenet": "0.1.0",
                "sha256": hashlib.sha256(payload).hexdigest() if sha256 is None else sha256, "payload": payload}
    return pickle.dumps(envelope, protocol=PICKLE_PROTOCOL)


@contextlib.contextmanager
def registered(*classes: type, kind: str = "layers", label: str = "test", priority: int = 60, names=None):
    """The process registry with ``classes`` registered too (as ``label``) and selected, whatever the
    preference (a checkout's pytest prefers ``reference``); restored after."""
    registry = plugins.get_registry()
    info = plugins.PluginInfo("test", "corenet-test-plugin", "0.0.1", __name__)
    added = []
    for index, cls in enumerate(classes):
        name = names[index] if names else cls.__name__
        implementation = plugins.Implementation(kind, name, cls, label, priority, info)
        registry.implementations.setdefault((kind, name), []).append(implementation)
        added.append((kind, name, implementation))
    previous = registry.preference
    registry.prefer(",".join([previous or "", *(f"{name}={label}" for _, name, _ in added)]))
    try:
        yield registry
    finally:
        for kind, name, implementation in added:
            implementations = registry.implementations[(kind, name)]
            implementations.remove(implementation)
            if not implementations:
                del registry.implementations[(kind, name)]
                registry.selected.pop((kind, name), None)
                getattr(registry, kind).pop(name, None)
        registry.prefer(previous)


# -- hand-made pickles -----------------------------------------------------------------------------
def text(value: str) -> bytes:
    """BINUNICODE opcode pushing ``value``."""
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def global_call(module: str, name: str, *args) -> bytes:
    """A protocol-4 pickle calling ``module.name(*args)`` (strings or lists of strings) on load."""
    out = b"\x80\x04" + text(module) + text(name) + b"\x93("  # STACK_GLOBAL, MARK
    for arg in args:
        if isinstance(arg, list):
            out += b"](" + b"".join(text(item) for item in arg) + b"e"  # EMPTY_LIST, MARK, APPENDS
        else:
            out += text(arg)
    return out + b"tR."  # TUPLE, REDUCE, STOP


def _dtype_call(spec: str) -> bytes:
    return b"cnumpy\ndtype\n" + text(spec) + b"\x89\x88\x87R"  # numpy.dtype(spec, False, True)


def object_pointer_payload(address: int = 0x4141414141414141) -> bytes:
    """The issue's first attack (144 bytes): ``numpy.ndarray((1,), dtype, buffer=bytearray(8 bytes))`` where
    dtype is a V8 structured dtype whose field is an object but whose flags were cleared, so the file's
    bytes become an object pointer (reading the element dereferences ``address``)."""
    state = (b"(K\x03" + text("|") + b"N" + text("f0") + b"\x85"  # (3, '|', None, ('f0',),
             + b"}" + text("f0") + _dtype_call("O8") + b"K\x00\x86s"  # {'f0': (dtype('O8'), 0)},
             + b"K\x08K\x01K\x00t")  # elsize 8, alignment 1, flags 0)
    structured = _dtype_call("V8") + state + b"b"  # BUILD
    buffer = b"c__builtin__\nbytearray\n" + b"C\x08" + struct.pack("<Q", address) + b"\x85R"
    return b"\x80\x02cnumpy\nndarray\n" + b"K\x01\x85" + structured + buffer + b"\x87R."


def class_rewrite_payload(module: str = "corenet.base", name: str = "TrainableLayer",
                          attribute: str = "parameter_names") -> bytes:
    """The issue's second attack: BUILD ``(None, {attribute: ()})`` applied to a class, which plain
    pickle turns into ``setattr(cls, attribute, ())`` for the rest of the process."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"N}" + text(attribute) + b")s\x86b."


# -- every registered component, with arguments that make sense -------------------------------------
#: layer name -> (constructor arguments, input shape of one batch)
LAYER_SAMPLES = {
    "FullyConnected": ((4, 3), (6, 4)),
    "ReLU": ((), (6, 4)),
    "SoftMax": ((), (6, 4)),
    "TanH": ((), (6, 4)),
    "Sigmoid": ((), (6, 4)),
    "Flatten": ((), (6, 2, 3, 3)),
    "Conv": (((2, 1), (2, 3, 3), 3), (6, 2, 5, 5)),
    "Pooling": (((2, 2), (2, 2)), (6, 2, 4, 4)),
    "Dropout": ((0.7,), (6, 4)),
    "BatchNormalization": ((3,), (6, 3, 2, 2)),
    "RNN": ((4, 5, 3), (6, 4)),
    "LSTM": ((4, 5, 3), (6, 4)),
}
OPTIMIZER_SAMPLES = {"Sgd": (1e-2,), "SgdWithMomentum": (1e-2, 0.9), "Adam": (1e-3, 0.9, 0.999)}
REGULARIZER_SAMPLES = {"L1_Regularizer": (1e-3,), "L2_Regularizer": (2e-3,)}
INITIALIZER_SAMPLES = {"Constant": (0.2,), "UniformRandom": (), "Xavier": (), "He": ()}
LOSS_SAMPLES = {"CrossEntropyLoss": ()}
SAMPLES = {"layers": LAYER_SAMPLES, "optimizers": OPTIMIZER_SAMPLES, "regularizers": REGULARIZER_SAMPLES,
           "initializers": INITIALIZER_SAMPLES, "losses": LOSS_SAMPLES}


def sample_network(layer_name: str = "FullyConnected", optimizer_name: str = "Adam",
                   regularizer_name: str | None = "L2_Regularizer", initializers=("He", "Constant"),
                   classes: int = 3, seed: int = 1, steps: int = 1) -> tuple[NeuralNetwork, tuple]:
    """(network, input shape): ``layer_name`` -> Flatten -> FullyConnected -> SoftMax, every component taken
    from the registry, trained ``steps`` steps (optimizer state, moving averages, carried state exist)."""
    import copy

    registry = plugins.get_registry()
    np.random.seed(seed)
    optimizer = registry.optimizers[optimizer_name](*OPTIMIZER_SAMPLES[optimizer_name])
    if regularizer_name is not None:
        optimizer.add_regularizer(registry.regularizers[regularizer_name](*REGULARIZER_SAMPLES[regularizer_name]))
    weights, bias = (registry.initializers[name](*INITIALIZER_SAMPLES[name]) for name in initializers)
    net = NeuralNetwork(optimizer, weights, bias)
    arguments, input_shape = LAYER_SAMPLES[layer_name]
    layer = registry.layers[layer_name](*arguments)
    if hasattr(layer, "memorize"):
        layer.memorize = True  # the carried state is part of what must survive
    features = int(np.prod(copy.deepcopy(layer).forward(np.zeros(input_shape)).shape[1:]))
    for item in (layer, registry.layers["Flatten"](), registry.layers["FullyConnected"](features, classes),
                 registry.layers["SoftMax"]()):
        net.append_layer(item)
    net.loss_layer = registry.losses["CrossEntropyLoss"]()
    net.data_layer = RandomData(input_shape[1:], input_shape[0], classes)
    net.train(steps)
    return net, input_shape
