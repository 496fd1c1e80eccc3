"""corenet.testing's shared helpers: FixedBatch and check_gradients (each can fail)."""

from __future__ import annotations

import numpy as np
import pytest

from corenet.initializers import Constant, He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.conv import Conv
from corenet.layers.fully_connected import FullyConnected
from corenet.layers.pooling import Pooling
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Sgd
from corenet.testing import FixedBatch, check_gradients


def test_fixed_batch_yields_the_same_batch_as_fresh_copies():
    inputs, labels = np.arange(6.0).reshape(3, 2), np.eye(3)
    data = FixedBatch(inputs, labels)
    first_x, first_y = data.next()
    first_x[0, 0] = 99.0  # a layer writing into its input does not change the next batch
    second_x, second_y = data.next()
    np.testing.assert_array_equal(second_x, inputs)
    np.testing.assert_array_equal(second_y, labels)
    assert data.calls == 2 and second_x is not inputs
    data.input_tensor = np.float32(inputs)
    assert data.next()[0].dtype == np.float32


def test_fixed_batch_trains_a_network():
    np.random.seed(0)
    net = NeuralNetwork(Sgd(0.05), He(), Constant(0.1))
    net.loss_layer = CrossEntropyLoss()
    for layer in (FullyConnected(2, 8), ReLU(), FullyConnected(8, 3), SoftMax()):
        net.append_layer(layer)
    rng = np.random.RandomState(1)
    net.data_layer = FixedBatch(rng.standard_normal((6, 2)), np.eye(3)[[0, 1, 2, 0, 1, 2]])
    net.train(60)
    assert net.loss[-1] < 0.5 * net.loss[0] and net.data_layer.calls == 60


def test_check_gradients_checks_the_input_and_every_parameter():
    np.random.seed(0)
    x = np.random.RandomState(2).standard_normal((2, 2, 5, 4))
    errors = check_gradients(Conv((1, 2), (2, 3, 3), 3), x)
    assert set(errors) == {"input", "weights", "bias"} and max(errors.values()) < 1e-7
    assert set(check_gradients(Pooling((2, 2), (2, 2)), x + np.arange(x.size).reshape(x.shape))) == {"input"}
    chain = [FullyConnected(4, 5), ReLU(), FullyConnected(5, 3)]
    errors = check_gradients(chain, np.random.RandomState(3).standard_normal((3, 4)))
    assert set(errors) == {"input", "weights", "layers[2].weights"}
    only = check_gradients(FullyConnected(4, 2), np.ones((2, 4)), parameters=())
    assert set(only) == {"input"}


class _WrongBackward(FullyConnected):
    """FullyConnected whose input gradient is twice the true one (its weight gradient stays right)."""

    def backward(self, error_tensor):
        return 2.0 * super().backward(error_tensor)


def test_check_gradients_fails_on_a_wrong_gradient_and_names_it():
    np.random.seed(0)
    with pytest.raises(AssertionError, match=r"gradient check failed .*: input 0\.33") as info:
        check_gradients(_WrongBackward(3, 2), np.random.RandomState(4).standard_normal((2, 3)))
    assert "weights" not in str(info.value)
