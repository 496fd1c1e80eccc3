"""The core's own hook implementations: core components register like any plugin."""

from __future__ import annotations

from corenet import initializers, losses, optimizers
from corenet.hookspecs import REFERENCE_TIER, hookimpl, package_path

#: conformance group -> (test files in corenet/conformance, bonus weight, the registry names it tests)
TEST_GROUPS = {
    "TestFullyConnected": (["test_fully_connected.py"], 0.0, ("FullyConnected",)),
    "TestReLU": (["test_relu.py"], 0.0, ("ReLU",)),
    "TestSoftMax": (["test_softmax.py"], 0.0, ("SoftMax",)),
    "TestCrossEntropyLoss": (["test_cross_entropy.py"], 0.0, ("CrossEntropyLoss",)),
    "TestOptimizers": (["test_optimizers.py"], 0.0, ("Sgd", "SgdWithMomentum", "Adam")),
    "TestInitializers": (["test_initializers.py"], 0.0, ("Constant", "UniformRandom", "Xavier", "He")),
    "TestFlatten": (["test_flatten.py"], 0.0, ("Flatten",)),
    "TestConv": (["test_conv.py"], 0.0, ("Conv",)),
    "TestPooling": (["test_pooling.py"], 0.0, ("Pooling",)),
    # the second file adds phase and regularization checks; it skips when those plugins are absent
    "TestNeuralNetwork": (["test_neural_network.py", "test_neural_network_plugins.py"], 0.0,
                          ("NeuralNetwork", "save", "load")),
}


@hookimpl
def corenet_register_layers(register):
    from corenet.layers.activations import ReLU, SoftMax
    from corenet.layers.conv import Conv
    from corenet.layers.flatten import Flatten
    from corenet.layers.fully_connected import FullyConnected
    from corenet.layers.pooling import Pooling

    for layer in (FullyConnected, ReLU, SoftMax, Flatten, Conv, Pooling):
        register(layer, **REFERENCE_TIER)


@hookimpl
def corenet_register_optimizers(register):
    for optimizer in (optimizers.Sgd, optimizers.SgdWithMomentum, optimizers.Adam):
        register(optimizer, **REFERENCE_TIER)


@hookimpl
def corenet_register_initializers(register):
    for initializer in (initializers.Constant, initializers.UniformRandom, initializers.Xavier, initializers.He):
        register(initializer, **REFERENCE_TIER)


@hookimpl
def corenet_register_losses(register):
    register(losses.CrossEntropyLoss, **REFERENCE_TIER)


@hookimpl
def corenet_register_datasets(register):
    from corenet.data.digits import DigitData
    from corenet.data.iris import IrisData
    from corenet.data.mnist import MNISTData
    from corenet.data.synthetic import RandomData

    register(IrisData, "iris", **REFERENCE_TIER)
    register(DigitData, "digits", **REFERENCE_TIER)
    register(MNISTData, "mnist", **REFERENCE_TIER)
    register(RandomData, "random", **REFERENCE_TIER)


@hookimpl
def corenet_register_test_groups(register):
    for name, (filenames, weight, names) in TEST_GROUPS.items():
        register(name, [package_path(__file__, "conformance", f) for f in filenames], weight, names=names)
