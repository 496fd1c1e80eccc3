"""A network's first layer may skip its unused input gradient (BaseLayer.needs_input_gradient)."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest

from corenet import network as network_module
from corenet.initializers import He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.conv import Conv
from corenet.layers.flatten import Flatten
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Adam


class _Batches:
    def __init__(self, seed: int, shape: tuple[int, ...], classes: int) -> None:
        rng = np.random.default_rng(seed)
        self.inputs = [rng.standard_normal(shape) for _ in range(4)]
        self.labels = [np.eye(classes)[rng.integers(0, classes, shape[0])] for _ in range(4)]
        self.calls = 0

    def next(self):
        index = self.calls % len(self.inputs)
        self.calls += 1
        return self.inputs[index], self.labels[index]


def _network(first) -> NeuralNetwork:
    np.random.seed(3)
    net = NeuralNetwork(Adam(1e-3), He(), He())
    net.loss_layer = CrossEntropyLoss()
    if isinstance(first, Conv):
        layers = [first, ReLU(), Flatten(), FullyConnected(3 * 6 * 5, 4), SoftMax()]
    else:
        layers = [first, ReLU(), FullyConnected(7, 4), SoftMax()]
    for layer in layers:
        net.append_layer(layer)
    return net


@pytest.mark.parametrize("make_first, shape", [
    (lambda: Conv((1, 1), (1, 3, 3), 3), (5, 1, 6, 5)),
    (lambda: FullyConnected(6, 7), (5, 6)),
])
def test_training_is_identical_with_and_without_the_skip(monkeypatch, make_first, shape):
    skipping = _network(make_first())
    skipping.data_layer = _Batches(1, shape, 4)
    skipping.train(6)

    monkeypatch.setattr(network_module, "_without_input_gradient", lambda layer: contextlib.nullcontext())
    full = _network(make_first())
    full.data_layer = _Batches(1, shape, 4)
    full.train(6)

    assert skipping.loss == full.loss
    for ours, theirs in zip(skipping.layers, full.layers):
        for name in getattr(ours, "parameter_names", ()):
            np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name))


@pytest.mark.parametrize("layer, shape", [
    (Conv((1, 1), (1, 3, 3), 3), (5, 1, 6, 5)),
    (FullyConnected(6, 7), (5, 6)),
])
def test_flag_is_restored_and_standalone_layers_return_their_error(layer, shape):
    net = _network(layer)
    net.data_layer = _Batches(2, shape, 4)
    net.train(1)
    first = net.layers[0]
    assert first.needs_input_gradient is True
    assert "needs_input_gradient" not in vars(first)
    output = first.forward(np.ones(shape))
    error = first.backward(np.ones(output.shape))
    assert error.shape == shape


@pytest.mark.parametrize("make_layer, shape", [
    (lambda: Conv((2, 1), (2, 3, 3), 3), (4, 2, 5, 6)),
    (lambda: Conv((1,), (2, 3), 3), (4, 2, 7)),
    (lambda: FullyConnected(6, 7), (4, 6)),
])
def test_layer_without_input_gradient_returns_none_with_the_same_weight_gradient(make_layer, shape):
    np.random.seed(0)
    layer = make_layer()
    other = copy.deepcopy(layer)
    x = np.random.standard_normal(shape)
    error = np.random.standard_normal(layer.forward(x).shape)
    expected = layer.backward(error)
    assert expected.shape == shape
    other.needs_input_gradient = False
    other.forward(x)
    assert other.backward(error) is None
    np.testing.assert_array_equal(other.gradient_weights, layer.gradient_weights)
