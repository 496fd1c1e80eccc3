"""The reliability table: every bad input a learner is likely to try, and the error they see.

Each row of ``CASES`` is one test (``test_bad_input``) and one row of the table in
``docs/reliability.md``, which ``scripts/reliability_table.py`` renders from this list
by running every case and capturing its message; ``test_docs_table_is_current`` fails
when the file and the cases drift apart (re-run ``python scripts/reliability_table.py
--write``). A case either raises (the exception a user sees) or, for plugin faults,
returns the error ``corenet plugins`` reports for the isolated plugin.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import corenet
from corenet import plugins
from corenet.errors import (
    CheckpointError,
    CorenetError,
    DivergenceError,
    NonFiniteError,
    RegistryError,
    ShapeError,
)
from corenet.initializers import Constant, He, UniformRandom
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.conv import Conv
from corenet.layers.flatten import Flatten
from corenet.layers.fully_connected import FullyConnected
from corenet.layers.pooling import Pooling
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Adam, Sgd, SgdWithMomentum

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"


@dataclass(frozen=True)
class Case:
    """One bad input: where (``area``), what (``bad``, markdown), how to trigger it and what must be said."""

    slug: str
    area: str
    bad: str
    action: Callable[[], object]
    error: type[BaseException] | None  # None: a plugin fault, reported instead of raised
    fragments: tuple[str, ...]


# -- helpers the cases share -------------------------------------------------------------------
class Batches:
    """A data layer returning fixed (input, label) arrays (or whatever ``result`` is set to)."""

    def __init__(self, inputs, labels, result=None) -> None:
        self.inputs, self.labels, self.result = inputs, labels, result

    def next(self):
        return self.result if self.result is not None else (self.inputs.copy(), self.labels.copy())


def one_hot(indices, classes: int) -> np.ndarray:
    labels = np.zeros((len(indices), classes))
    labels[np.arange(len(indices)), indices] = 1.0
    return labels


def small_net(optimizer=None, inputs=None, labels=None) -> NeuralNetwork:
    """FC(4, 5) -> ReLU -> FC(5, 3) -> SoftMax with CrossEntropyLoss on a fixed batch of 6."""
    np.random.seed(0)
    net = NeuralNetwork(optimizer or Sgd(0.1), He(), Constant(0.1))
    for layer in (FullyConnected(4, 5), ReLU(), FullyConnected(5, 3), SoftMax()):
        net.append_layer(layer)
    inputs = np.random.standard_normal((6, 4)) if inputs is None else inputs
    labels = one_hot([0, 1, 2, 0, 1, 2], 3) if labels is None else labels
    net.data_layer = Batches(inputs, labels)
    net.loss_layer = CrossEntropyLoss()
    return net


@contextlib.contextmanager
def nan_checks():
    previous = corenet.set_checks(nan=True)
    try:
        yield
    finally:
        corenet.set_checks(**previous)


def forward_then_backward(layer, input_tensor, error_tensor):
    layer.forward(input_tensor)
    return layer.backward(error_tensor)


def with_nan_checks(function: Callable[[], object]) -> Callable[[], object]:
    def run():
        with nan_checks():
            return function()

    return run


def assign_then_forward(layer, name: str, value, input_tensor):
    setattr(layer, name, value)
    return layer.forward(input_tensor)


def set_attribute(target, name: str, value):
    setattr(target, name, value)


def train(net: NeuralNetwork, iterations: int = 1, **errstate):
    with np.errstate(**errstate):
        net.train(iterations)


def net_with(**attributes) -> NeuralNetwork:
    net = small_net()
    for name, value in attributes.items():
        setattr(net, name, value)
    return net


def shared_adam():
    adam = Adam(1e-3)
    adam.calculate_update(np.ones(3), np.ones(3))
    return adam.calculate_update(np.ones((2, 2)), np.ones((2, 2)))


def in_temporary_folder(function: Callable[[], object]) -> Callable[[], object]:
    """Run ``function`` with a fresh temporary folder as the working directory (relative file names)."""

    def run():
        previous = os.getcwd()
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)
            try:
                return function()
            finally:
                os.chdir(previous)

    return run


class _System:
    """Pickles as a call of os.system: what a malicious checkpoint would hold."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def load_written(content: bytes | object):
    data = content if isinstance(content, bytes) else pickle.dumps(content)
    Path("checkpoint.pkl").write_bytes(data)
    return corenet.load("checkpoint.pkl", None)


def load_truncated():
    net = small_net()
    corenet.save("net.pkl", net)
    data = Path("net.pkl").read_bytes()
    return load_written(data[: len(data) // 2])


# -- plugin faults through fake entry points -----------------------------------------------------
class FakeEntryPoint:
    """An entry point of group ``corenet`` whose module is built from ``source`` (or fails to import)."""

    def __init__(self, name: str, source: str | None) -> None:
        self.name, self.source = name, source
        self.value = f"corenet_{name}"
        self.dist = types.SimpleNamespace(name=f"corenet-{name}", version="0.0.1")

    def load(self):
        if self.source is None:
            __import__(self.value)  # not installed: ModuleNotFoundError
        module = types.ModuleType(self.value)
        exec(compile(self.source, f"<{self.value}>", "exec"), module.__dict__)
        return module


#: the plugins of this repository: the registry the table's messages are generated with
REPO_PLUGINS = "batchnorm,dropout,lenet,recurrent,reg_l1l2"


def repo_registry() -> plugins.Registry:
    """corenet and this repository's plugins only, whatever else is installed."""
    quiet = contextlib.redirect_stderr(io.StringIO())
    with mock.patch.dict(os.environ, {plugins.LOAD_ENV: REPO_PLUGINS}), quiet:
        return plugins.load_plugins()[1]


def load_with_fake_plugins(**sources: str | None) -> plugins.Registry:
    """Load corenet's plugins plus fake ones (name -> module source; None: module missing)."""
    fakes = [FakeEntryPoint(name, source) for name, source in sources.items()]
    real = plugins.metadata.entry_points

    def entry_points(group: str):
        return [*real(group=group), *fakes]

    load_list = ",".join([REPO_PLUGINS, *sources])
    fake_metadata = types.SimpleNamespace(entry_points=entry_points)
    quiet = contextlib.redirect_stderr(io.StringIO())
    with mock.patch.object(plugins, "metadata", fake_metadata), \
            mock.patch.dict(os.environ, {plugins.LOAD_ENV: load_list}), quiet:
        _, registry = plugins.load_plugins()
    return registry


PLUGIN_HEADER = "from corenet import hookimpl\nfrom corenet.base import BaseLayer\n"
IDENTITY = PLUGIN_HEADER + """
class Identity(BaseLayer):
    def forward(self, x):
        return x

    def backward(self, e):
        return e
"""


def hook(body: str, kind: str = "layers", argument: str = "register") -> str:
    """Source of a hook implementation ``corenet_register_<kind>(<argument>)`` running ``body``."""
    return f"\n@hookimpl\ndef corenet_register_{kind}({argument}):\n    {body}\n"


PLUGIN_SOURCES = {
    "good": IDENTITY + hook("register(Identity)"),
    "import": "raise RuntimeError('boom at import')\n",
    "non_class": PLUGIN_HEADER + hook("register(lambda x: x, 'Lambda')"),
    "no_methods": PLUGIN_HEADER + "class Half:\n    def forward(self, x):\n        return x\n"
                  + hook("register(Half)"),
    "duplicate": IDENTITY.replace("Identity", "ReLU") + hook("register(ReLU)"),
    "signature": PLUGIN_HEADER + hook("pass", argument="add"),
    "hook_raises": PLUGIN_HEADER + hook("raise ValueError('cannot register today')", kind="optimizers"),
    "bad_name": IDENTITY + hook("register(Identity, 42)"),
}


def plugin_fault(name: str) -> Callable[[], str]:
    """Load one faulty plugin beside a good one; return what ``corenet plugins`` reports for it."""

    def run() -> str:
        registry = load_with_fake_plugins(**{name: PLUGIN_SOURCES.get(name), "good": PLUGIN_SOURCES["good"]})
        status = {p.name: p for p in registry.plugins}
        if status["good"].status != "ok" or not {"Identity", "ReLU", "Dropout"} <= set(registry.layers):
            raise AssertionError(f"the other plugins did not load: {registry.plugins}")
        faulty = status[name]
        if faulty.status != "failed":
            raise AssertionError(f"plugin {name} was not isolated: {faulty}")
        if any(info is faulty for info in registry.providers.values()):
            raise AssertionError(f"the failed plugin {name} still registered something")
        return f"status failed: {faulty.error}"

    return run


# -- the table ---------------------------------------------------------------------------------
def _cases() -> list[Case]:
    from corenet_batchnorm.batchnorm import BatchNormalization
    from corenet_dropout.dropout import Dropout
    from corenet_recurrent.rnn import RNN
    from corenet_reg_l1l2.constraints import L2_Regularizer

    from corenet.data.iris import IrisData
    from corenet.data.mnist import MNISTData

    x24, x_img = np.zeros((2, 4)), np.zeros((2, 1, 2, 2))
    nan_row = np.array([[1.0, np.nan, 2.0, 3.0]])
    c = Case
    return [
        # constructing layers
        c("fc-zero", "construction", "`FullyConnected(0, 3)`", lambda: FullyConnected(0, 3), ValueError,
          ("input_size must be a positive integer", "0")),
        c("fc-float", "construction", "`FullyConnected(4.5, 3)`", lambda: FullyConnected(4.5, 3), ValueError,
          ("input_size", "4.5")),
        c("conv-kernels", "construction", "`Conv((1, 1), (1, 3, 3), 0)` (no kernels)",
          lambda: Conv((1, 1), (1, 3, 3), 0), ValueError, ("num_kernels", "0")),
        c("conv-stride", "construction", "`Conv((1, 1, 1), (1, 3, 3), 2)` (three strides for 2-D)",
          lambda: Conv((1, 1, 1), (1, 3, 3), 2), ValueError, ("stride_shape", "(1, 1, 1)")),
        c("conv-shape", "construction", "`Conv(1, (3,), 2)` (kernel without its size)",
          lambda: Conv(1, (3,), 2), ValueError, ("convolution_shape", "(channels, m)")),
        c("pool-window", "construction", "`Pooling((2, 2), (0, 2))`", lambda: Pooling((2, 2), (0, 2)),
          ValueError, ("pooling_shape", "positive")),
        c("dropout-zero", "construction", "`Dropout(0)` (keeps nothing)", lambda: Dropout(0), ValueError,
          ("probability", "(0, 1]")),
        c("dropout-percent", "construction", "`Dropout(50)` (a percentage)", lambda: Dropout(50), ValueError,
          ("(0, 1]", "50")),
        c("bn-channels", "construction", "`BatchNormalization(0)`", lambda: BatchNormalization(0), ValueError,
          ("channels must be a positive integer",)),
        c("rnn-hidden", "construction", "`RNN(3, 0, 2)`", lambda: RNN(3, 0, 2), ValueError,
          ("hidden_size", "positive")),
        # optimizers, regularizers, initializers
        c("sgd-negative", "optimizer", "`Sgd(-0.1)`", lambda: Sgd(-0.1), ValueError,
          ("learning_rate", "> 0", "-0.1")),
        c("sgd-nan", "optimizer", "`Sgd(float('nan'))`", lambda: Sgd(float("nan")), ValueError,
          ("learning_rate", "nan")),
        c("sgd-string", "optimizer", "`Sgd('0.01')` (a string)", lambda: Sgd("0.01"), ValueError,
          ("learning_rate must be a number", "'0.01'")),
        c("momentum-rate", "optimizer", "`SgdWithMomentum(0.01, 1.2)`", lambda: SgdWithMomentum(0.01, 1.2),
          ValueError, ("momentum_rate", "[0, 1)", "1.2")),
        c("adam-rho", "optimizer", "`Adam(1e-3, 0.9, 1.0)`", lambda: Adam(1e-3, 0.9, 1.0), ValueError,
          ("rho", "[0, 1)")),
        c("regularizer-string", "optimizer", "`Sgd(0.1).add_regularizer('l2')`",
          lambda: Sgd(0.1).add_regularizer("l2"), TypeError, ("calculate_gradient", "'l2'")),
        c("update-shape", "optimizer", "`Sgd(0.1).calculate_update(np.ones(3), np.ones(4))`",
          lambda: Sgd(0.1).calculate_update(np.ones(3), np.ones(4)), ValueError, ("(4,)", "(3,)")),
        c("update-none", "optimizer", "`Sgd(0.1).calculate_update(w, None)` (no gradient computed)",
          lambda: Sgd(0.1).calculate_update(np.ones(3), None), ValueError, ("gradient", "None")),
        c("adam-shared", "optimizer", "one `Adam` updating tensors of two shapes (shared, not copied)",
          shared_adam, ValueError, ("(3,)", "(2, 2)", "its own optimizer")),
        c("l2-negative", "optimizer", "`L2_Regularizer(-1)`", lambda: L2_Regularizer(-1), ValueError,
          ("alpha", ">= 0")),
        c("he-fan", "initializer", "`He().initialize((3, 3), 0, 3)` (fan_in 0)",
          lambda: He().initialize((3, 3), 0, 3), ValueError, ("He", "fan_in must be a positive number")),
        c("constant-string", "initializer", "`Constant('0.1')`", lambda: Constant("0.1"), ValueError,
          ("Constant", "real number")),
        c("uniform-shape", "initializer", "`UniformRandom().initialize((3, -1), 3, 1)`",
          lambda: UniformRandom().initialize((3, -1), 3, 1), ValueError, ("weights_shape", "(3, -1)")),
        c("default-dtype", "initializer", "`corenet.set_default_dtype(np.int32)`",
          lambda: corenet.set_default_dtype(np.int32), ValueError, ("float32 or float64", "int32")),
        # forward inputs
        c("fc-features", "forward", "`FullyConnected(4, 3).forward(np.zeros((2, 5)))`",
          lambda: FullyConnected(4, 3).forward(np.zeros((2, 5))), ShapeError,
          ("FullyConnected(4, 3)", "expects 4 input features but got 5", "(2, 5)")),
        c("fc-vector", "forward",
          "one sample without a batch axis: `FullyConnected(4, 3).forward(np.zeros(4))`",
          lambda: FullyConnected(4, 3).forward(np.zeros(4)), ShapeError, ("1-D", "x[None, :]")),
        c("fc-image", "forward", "an image batch into `FullyConnected(4, 3)` (no Flatten)",
          lambda: FullyConnected(4, 3).forward(x_img), ShapeError, ("4-D", "(2, 1, 2, 2)", "Flatten")),
        c("empty-batch", "forward", "`ReLU().forward(np.zeros((0, 3)))` (empty batch)",
          lambda: ReLU().forward(np.zeros((0, 3))), ShapeError, ("ReLU()", "empty batch", "(0, 3)")),
        c("object-array", "forward", "an object array `np.array([[1, None]], dtype=object)`",
          lambda: ReLU().forward(np.array([[1, None]], dtype=object)), ShapeError, ("dtype object",)),
        c("string-array", "forward", "strings `[['1', '2']]` (read from a CSV without conversion)",
          lambda: FullyConnected(2, 1).forward([["1", "2"]]), ShapeError,
          ("FullyConnected(2, 1)", "strings")),
        c("complex-array", "forward", "a complex array into `SoftMax`",
          lambda: SoftMax().forward(np.ones((2, 3)) * 1j), ShapeError, ("complex128",)),
        c("ragged-list", "forward", "a ragged list `[[1, 2], [3]]`", lambda: ReLU().forward([[1, 2], [3]]),
          ShapeError, ("ReLU()", "rows differ in length")),
        c("none-input", "forward", "`Flatten().forward(None)`", lambda: Flatten().forward(None), ShapeError,
          ("Flatten()", "got None")),
        c("nan-input", "forward", "a NaN input with `corenet.set_checks(nan=True)`",
          with_nan_checks(lambda: ReLU().forward(nan_row)), NonFiniteError,
          ("1 NaN", "(0, 1)", "set_checks")),
        c("inf-error", "backward", "an inf error tensor with `corenet.set_checks(nan=True)`",
          with_nan_checks(lambda: forward_then_backward(ReLU(), x24, np.full((2, 4), np.inf))),
          NonFiniteError, ("error tensor", "8 inf")),
        c("softmax-rank", "forward", "`SoftMax().forward(np.zeros((2, 3, 4)))`",
          lambda: SoftMax().forward(np.zeros((2, 3, 4))), ShapeError, ("(batch, classes)", "3-D")),
        c("conv-channels", "forward", "2-channel images into `Conv(1, (3, 3, 3), 2)`",
          lambda: Conv(1, (3, 3, 3), 2).forward(np.zeros((1, 2, 5, 5))), ShapeError,
          ("expects 3 input channels but got 2",)),
        c("conv-rank", "forward", "a 1-D signal into the 2-D `Conv(1, (1, 3, 3), 2)`",
          lambda: Conv(1, (1, 3, 3), 2).forward(np.zeros((1, 1, 5))), ShapeError, ("4-D", "(1, 1, 5)")),
        c("pool-window-large", "forward", "a 2x2 image into `Pooling(2, 3)`",
          lambda: Pooling(2, 3).forward(np.zeros((1, 1, 2, 2))), ShapeError, ("3x3 window", "2x2 input")),
        c("pool-rank", "forward", "`Pooling(2, 2).forward(np.zeros((2, 4, 4)))` (no channel axis)",
          lambda: Pooling(2, 2).forward(np.zeros((2, 4, 4))), ShapeError, ("(batch, channels, y, x)", "3-D")),
        c("bn-wrong-channels", "forward", "`BatchNormalization(3).forward(np.zeros((4, 2)))`",
          lambda: BatchNormalization(3).forward(np.zeros((4, 2))), ShapeError,
          ("expects 3 channels but got 2",)),
        c("rnn-features", "forward", "`RNN(3, 4, 2).forward(np.zeros((5, 2)))`",
          lambda: RNN(3, 4, 2).forward(np.zeros((5, 2))), ShapeError,
          ("expects 3 input features but got 2",)),
        # backward
        c("backward-first", "backward", "`FullyConnected(4, 3).backward(...)` before any forward",
          lambda: FullyConnected(4, 3).backward(np.zeros((2, 3))), ShapeError,
          ("backward called before forward",)),
        c("error-shape", "backward", "an error tensor shaped like the input, not the output",
          lambda: forward_then_backward(FullyConnected(4, 3), x24, x24), ShapeError,
          ("(2, 3)", "got (2, 4)")),
        c("flatten-error", "backward", "`Flatten` backward with a (2, 3) error after a (2, 1, 2, 2) input",
          lambda: forward_then_backward(Flatten(), x_img, np.zeros((2, 3))), ShapeError,
          ("(2, 4)", "(2, 3)")),
        c("dropout-first", "backward", "`Dropout(0.5).backward(...)` before any forward",
          lambda: Dropout(0.5).backward(x24), ShapeError, ("Dropout(0.5)", "before forward")),
        c("pool-error", "backward", "`Pooling(2, 2)` backward with the input's shape",
          lambda: forward_then_backward(Pooling(2, 2), np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 4, 4))),
          ShapeError, ("(1, 1, 2, 2)", "(1, 1, 4, 4)")),
        # parameters
        c("fc-weights", "parameters",
          "`layer.weights = np.zeros((4, 3))` for `FullyConnected(4, 3)` (no bias row)",
          lambda: assign_then_forward(FullyConnected(4, 3), "weights", np.zeros((4, 3)), x24), ShapeError,
          ("weights must have shape (5, 3)", "got (4, 3)")),
        c("conv-bias", "parameters", "`conv.bias = np.zeros(3)` for a 2-kernel `Conv`",
          lambda: assign_then_forward(Conv(1, (1, 3, 3), 2), "bias", np.zeros(3), np.zeros((1, 1, 4, 4))),
          ShapeError, ("bias must have 2 entries",)),
        c("bn-gamma", "parameters", "`bn.weights = np.ones(2)` for `BatchNormalization(3)`",
          lambda: assign_then_forward(BatchNormalization(3), "weights", np.ones(2), np.zeros((4, 3))),
          ShapeError, ("weights has 2 entries", "3")),
        c("optimizer-class", "parameters", "`layer.optimizer = Adam` (the class, not `Adam(...)`)",
          lambda: set_attribute(FullyConnected(2, 2), "optimizer", Adam), TypeError,
          ("the class Adam", "Adam(...)")),
        # the loss
        c("ce-shape", "loss", "`CrossEntropyLoss().forward` with 3-class predictions and 4-class labels",
          lambda: CrossEntropyLoss().forward(np.full((2, 3), 1 / 3), np.zeros((2, 4))), ShapeError,
          ("(2, 3)", "(2, 4)")),
        c("ce-logits", "loss", "raw scores (negative) into `CrossEntropyLoss` (SoftMax forgotten)",
          lambda: CrossEntropyLoss().forward(np.array([[-1.5, 2.0]]), np.array([[0, 1]])), ValueError,
          ("probabilities", "-1.5", "SoftMax layer missing")),
        c("ce-first", "loss", "`CrossEntropyLoss().backward(labels)` before forward",
          lambda: CrossEntropyLoss().backward(np.zeros((2, 3))), ShapeError, ("before forward",)),
        # building and training a network
        c("net-initializer-class", "network",
          "`NeuralNetwork(Sgd(0.1), He, Constant(0.1))` (class, not `He()`)",
          lambda: NeuralNetwork(Sgd(0.1), He, Constant(0.1)), TypeError, ("weights_initializer", "class He")),
        c("append-class", "network", "`net.append_layer(ReLU)` (class, not `ReLU()`)",
          lambda: small_net().append_layer(ReLU), TypeError, ("class ReLU", "ReLU(...)")),
        c("append-string", "network", "`net.append_layer('relu')`", lambda: small_net().append_layer("relu"),
          TypeError, ("forward() and backward()", "'relu'")),
        c("no-data-layer", "network", "`net.train(10)` without a data layer",
          lambda: train(net_with(data_layer=None)), CorenetError, ("needs a data_layer",)),
        c("data-array", "network", "`net.data_layer = np.zeros((4, 4))` (an array, not a data layer)",
          lambda: train(net_with(data_layer=np.zeros((4, 4)))), TypeError, ("data_layer", "next()")),
        c("loss-class", "network", "`net.loss_layer = CrossEntropyLoss` (class, not an instance)",
          lambda: train(net_with(loss_layer=CrossEntropyLoss)), TypeError, ("class CrossEntropyLoss",)),
        c("no-layers", "network", "`net.train(5)` on a network without layers",
          lambda: train(net_with(layers=[])), CorenetError, ("no layers", "append_layer")),
        c("next-single", "network", "`data_layer.next()` returning only the inputs",
          lambda: train(net_with(data_layer=Batches(None, None, result=np.zeros((6, 4))))), CorenetError,
          ("(input_tensor, label_tensor)", "ndarray of shape (6, 4)")),
        c("batch-mismatch", "network", "`data_layer.next()` returning 6 inputs but 5 labels",
          lambda: train(small_net(labels=one_hot([0, 1, 2, 0, 1], 3))), ShapeError,
          ("6 inputs but 5 labels", "(6, 4)", "(5, 3)")),
        c("label-classes", "network", "4-class labels for a 3-class network",
          lambda: train(small_net(labels=one_hot([0, 1, 2, 3, 0, 1], 4))), ShapeError,
          ("loss layer: CrossEntropyLoss", "(6, 3)", "(6, 4)")),
        c("data-features", "network", "5 features from the data layer for `FullyConnected(4, 5)`",
          lambda: train(small_net(inputs=np.zeros((6, 5)))), ShapeError,
          ("layer 0 (FullyConnected)", "expects 4 input features but got 5")),
        c("iterations-negative", "network", "`net.train(-1)`", lambda: small_net().train(-1), ValueError,
          ("iterations", "-1")),
        c("iterations-float", "network", "`net.train(2.5)`", lambda: small_net().train(2.5), ValueError,
          ("non-negative integer", "2.5")),
        c("phase", "network", "`net.phase = 'validation'`",
          lambda: set_attribute(small_net(), "phase", "validation"), ValueError,
          ("phase must be", "'validation'")),
        c("net-backward-first", "network", "`net.backward()` before `net.forward()`",
          lambda: small_net().backward(), CorenetError, ("backward called before forward",)),
        c("test-features", "network", "`net.test(np.zeros((2, 7)))` on a 4-feature network",
          lambda: small_net().test(np.zeros((2, 7))), ShapeError, ("layer 0 (FullyConnected)", "got 7")),
        c("learning-rate-1e6", "network", "training with `Sgd(1e6)` (the loss overflows)",
          lambda: train(small_net(Sgd(1e6)), 200, all="ignore"), DivergenceError,
          ("training stopped at iteration", "first non-finite output from layer", "Lower the learning rate")),
        c("nan-data", "network", "a NaN in the training data (checks off)",
          lambda: train(small_net(inputs=np.vstack([nan_row, np.ones((5, 4))])), all="ignore"),
          DivergenceError, ("iteration 1 of 1", "the input batch from the data layer holds NaN/inf")),
        c("nan-data-checked", "network", "a NaN in the training data with `corenet.set_checks(nan=True)`",
          with_nan_checks(lambda: train(small_net(inputs=np.vstack([nan_row, np.ones((5, 4))])))),
          NonFiniteError, ("layer 0 (FullyConnected)", "1 NaN")),
        c("checks-value", "network", "`corenet.set_checks(nan='yes')`", lambda: corenet.set_checks(nan="yes"),
          TypeError, ("True or False", "'yes'")),
        # registry and plugins
        c("registry-name", "plugins", "`get_registry().get('layers', 'Dense')` (Keras' name)",
          lambda: repo_registry().get("layers", "Dense"), RegistryError,
          ("unknown layer 'Dense'", "FullyConnected")),
        c("registry-kind", "plugins", "`get_registry().get('widgets', 'x')`",
          lambda: repo_registry().get("widgets", "x"), RegistryError, ("unknown component kind",)),
        c("plugin-import", "plugins", "a plugin raising while it is imported", plugin_fault("import"), None,
          ("RuntimeError", "boom at import")),
        c("plugin-missing", "plugins", "an entry point naming a module that is not installed",
          plugin_fault("missing"), None, ("ModuleNotFoundError", "corenet_missing")),
        c("plugin-non-class", "plugins", "a plugin registering a lambda as a layer",
          plugin_fault("non_class"), None, ("must be registered as classes",)),
        c("plugin-no-methods", "plugins", "a plugin registering a layer class without `backward()`",
          plugin_fault("no_methods"), None, ("Half has no backward",)),
        c("plugin-duplicate", "plugins", "a plugin registering `ReLU` again", plugin_fault("duplicate"), None,
          ("'ReLU' is registered by both corenet and corenet-duplicate",)),
        c("plugin-signature", "plugins", "a hook implementation with a wrong argument name",
          plugin_fault("signature"), None, ("PluginValidationError", "add")),
        c("plugin-hook-raises", "plugins", "a registration hook raising", plugin_fault("hook_raises"), None,
          ("ValueError", "cannot register today")),
        c("plugin-bad-name", "plugins", "a plugin registering under the name `42`",
          plugin_fault("bad_name"), None, ("non-empty string", "42")),
        # checkpoints
        c("load-missing", "checkpoint", "`corenet.load('missing.pkl', data)`",
          in_temporary_folder(lambda: corenet.load("missing.pkl", None)), CheckpointError, ("missing.pkl",)),
        c("load-text", "checkpoint", "loading a text file",
          in_temporary_folder(lambda: load_written(b"hello")), CheckpointError,
          ("checkpoint.pkl", "not a corenet checkpoint")),
        c("load-truncated", "checkpoint", "loading a checkpoint cut in half",
          in_temporary_folder(load_truncated), CheckpointError, ("checkpoint.pkl", "truncated")),
        c("load-gadget", "checkpoint", "loading a pickle that would call `os.system`",
          in_temporary_folder(lambda: load_written(_System())), CheckpointError,
          ("checkpoint.pkl", "system", "nothing from the file was run")),
        c("load-dict", "checkpoint", "loading a pickled dict",
          in_temporary_folder(lambda: load_written({"a": 1})),
          CheckpointError, ("holds a dict, not a NeuralNetwork",)),
        c("save-folder", "checkpoint", "`corenet.save('nodir/net.pkl', net)` (folder missing)",
          in_temporary_folder(lambda: corenet.save("nodir/net.pkl", small_net())), CheckpointError,
          ("nodir", "does not exist")),
        # data layers
        c("iris-batch", "data", "`IrisData(0)`", lambda: IrisData(0), ValueError, ("batch_size", "0")),
        c("mnist-path", "data", "`MNISTData(10, 'nope')` (no such folder)", lambda: MNISTData(10, "nope"),
          FileNotFoundError, ("nope",)),
    ]


CASES = _cases()


def run_case(case: Case) -> tuple[Exception | None, str]:
    """Run one case: (the exception raised, or None for a reported plugin fault; the message a user sees)."""
    try:
        reported = case.action()
    except Exception as exc:  # the point of every case
        return exc, str(exc)
    if case.error is None and isinstance(reported, str):
        return None, reported
    raise AssertionError(f"{case.slug}: no error for {case.bad}")


def _clean(message: str) -> str:
    message = re.sub(r" at 0x[0-9a-fA-F]+", "", message)
    message = message.replace(tempfile.gettempdir(), "$TMP")
    return " ".join(message.split()).replace("|", "\\|")


def render_table() -> str:
    """The markdown document: one row per case with the message captured by running it."""
    lines = [
        "# Reliability: bad inputs and the errors they produce",
        "",
        "corenet is used by learners, so every mistake should produce an error that teaches and",
        "nothing should corrupt state silently:",
        "",
        "- Layers check rank, sizes and dtype in `forward` and `backward` and raise `corenet.ShapeError`",
        "  (a `ValueError`) naming the layer, the expected and the received shape; inside a network the",
        "  message starts with `layer <index> (<class>)`. A rejected input leaves the layer unchanged.",
        "- `corenet.set_checks(nan=True)` (off by default: one extra pass per array) makes every layer and",
        "  the loss refuse NaN/inf inputs and errors with `corenet.NonFiniteError`, a `ShapeError`.",
        "- `NeuralNetwork.train` checks its data layer, loss layer and each batch (inputs and labels in",
        "  equal number) before any update, and stops with `corenet.DivergenceError` (a",
        "  `FloatingPointError`) naming the iteration and the first layer with a non-finite value when",
        "  the loss becomes NaN/inf, before that iteration's update.",
        "- SoftMax/CrossEntropyLoss stay finite for logits of +-1e4 (probabilities never underflow to an",
        "  exact 0), BatchNormalization handles constant channels, Sigmoid saturates without overflow",
        "  and Adam takes all-zero gradients (`tests/test_numerical_safety.py`); hypothesis checks the",
        "  shape contracts and gradients of Conv, Pooling, Flatten, BatchNormalization and",
        "  FullyConnected and save/load round trips of random networks (`tests/test_properties.py`).",
        "",
        "Every row below is a test (`tests/test_reliability_table.py`); the table is generated by",
        "`python scripts/reliability_table.py --write` from the messages the cases produce, and a test",
        "fails when it is out of date. Plugin faults are not raised: the faulty plugin is isolated, the",
        "rest loads, and `corenet plugins` shows it as failed with the error below.",
        "",
        "| # | area | bad input | exception | what the user sees |",
        "|---|---|---|---|---|",
    ]
    for index, case in enumerate(CASES, 1):
        exc, message = run_case(case)
        kind = "reported" if exc is None else type(exc).__name__
        lines.append(f"| {index} | {case.area} | {case.bad.replace('|', chr(92) + '|')} | `{kind}` | "
                     f"{_clean(message)} |")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", CASES, ids=[case.slug for case in CASES])
def test_bad_input(case: Case):
    exc, message = run_case(case)
    if case.error is None:
        assert exc is None, f"{case.slug} raised {exc!r} instead of isolating the plugin"
    else:
        assert isinstance(exc, case.error), f"{case.slug}: expected {case.error.__name__}, got {exc!r}"
    for fragment in case.fragments:
        assert fragment in message, f"{case.slug}: {fragment!r} not in {message!r}"


def test_table_has_at_least_40_distinct_cases():
    assert len(CASES) >= 40
    assert len({case.slug for case in CASES}) == len(CASES)
    assert len({case.bad for case in CASES}) == len(CASES)


def test_checks_are_restored_after_the_table():
    for case in CASES:
        run_case(case)
    assert corenet.get_checks() == {"nan": False}
    assert corenet.get_default_dtype() == np.float64


def test_docs_table_is_current():
    if not DOC.exists():
        pytest.fail(f"{DOC} is missing: run python scripts/reliability_table.py --write")
    assert DOC.read_text() == render_table(), (
        f"{DOC} is out of date: run python scripts/reliability_table.py --write"
    )


if __name__ == "__main__":  # pragma: no cover - the script imports this module instead
    sys.stdout.write(render_table())
