"""TestLeNet: LeNet's architecture, shapes, optimizer, initializers, save/load and one learning step."""

from __future__ import annotations

import numpy as np
import pytest
from corenet_lenet.lenet import build
from corenet_reg_l1l2.constraints import L2_Regularizer

from corenet.initializers import He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.flatten import Flatten
from corenet.layers.fully_connected import FullyConnected
from corenet.layers.pooling import Pooling
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork, load, save
from corenet.optimizers import Adam
from corenet.plugins import get_registry

Conv = get_registry().layers["Conv"]  # selected; CORENET_IMPL picks the tier


class FixedBatch:
    """A data layer that always returns the same batch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def next(self):
        return self.images, self.labels


def _batch(size: int = 8, seed: int = 1):
    rng = np.random.RandomState(seed)
    images = rng.uniform(0.0, 1.0, (size, 1, 28, 28))
    labels = np.eye(10)[rng.randint(0, 10, size)]
    return images, labels


@pytest.fixture
def net() -> NeuralNetwork:
    np.random.seed(0)
    return build()


class TestLeNet:
    def test_architecture(self, net):
        kinds = [type(layer) for layer in net.layers]
        assert kinds == [Conv, ReLU, Pooling, Conv, ReLU, Pooling, Flatten,
                         FullyConnected, ReLU, FullyConnected, ReLU, FullyConnected, SoftMax]
        conv1, conv2 = net.layers[0], net.layers[3]
        assert conv1.weights.shape == (6, 1, 5, 5) and conv1.bias.shape == (6,)
        assert conv2.weights.shape == (16, 6, 5, 5) and conv2.bias.shape == (16,)
        sizes = [(fc.input_size, fc.output_size) for fc in net.layers if isinstance(fc, FullyConnected)]
        assert sizes == [(784, 120), (120, 84), (84, 10)]
        assert isinstance(net.loss_layer, CrossEntropyLoss)

    def test_shapes_28_14_7(self, net):
        images, _ = _batch(3)
        shapes = []
        tensor = images
        for layer in net.layers:
            tensor = layer.forward(tensor)
            shapes.append(tensor.shape)
        assert shapes == [(3, 6, 28, 28), (3, 6, 28, 28), (3, 6, 14, 14), (3, 16, 14, 14), (3, 16, 14, 14),
                          (3, 16, 7, 7), (3, 784), (3, 120), (3, 120), (3, 84), (3, 84), (3, 10), (3, 10)]
        np.testing.assert_allclose(tensor.sum(axis=1), 1.0, rtol=1e-12)

    def test_optimizer_adam_with_l2(self, net):
        assert isinstance(net.optimizer, Adam)
        assert (net.optimizer.learning_rate, net.optimizer.mu, net.optimizer.rho) == (5e-4, 0.9, 0.999)
        assert isinstance(net.optimizer.regularizer, L2_Regularizer)
        assert net.optimizer.regularizer.alpha == 4e-4
        copies = []
        for layer in net.layers:
            if not layer.trainable:
                continue
            for name in layer.parameter_names:
                optimizer = layer.parameter_optimizer(name)
                assert isinstance(optimizer, Adam) and optimizer.learning_rate == 5e-4
                assert isinstance(optimizer.regularizer, L2_Regularizer)
                assert optimizer.regularizer.alpha == 4e-4
                copies.append(optimizer)
        assert len(copies) == 7  # weights+bias of both Conv, weights of three FC
        assert len({id(c) for c in copies}) == 7 and all(c is not net.optimizer for c in copies)

    def test_regularization_loss_is_l2_of_every_parameter(self, net):
        expected = 0.0
        for layer in net.layers:
            if layer.trainable:
                for name in layer.parameter_names:
                    expected += 4e-4 * float(np.sum(getattr(layer, name) ** 2))
        assert net.regularization_loss() == pytest.approx(expected, rel=1e-12)
        assert expected > 0

    def test_he_initializers(self, net):
        assert isinstance(net.weights_initializer, He) and isinstance(net.bias_initializer, He)
        fc = net.layers[7]
        assert np.std(fc.weights[:-1]) == pytest.approx(np.sqrt(2 / 784), rel=0.03)
        conv2 = net.layers[3]
        assert np.std(conv2.weights) == pytest.approx(np.sqrt(2 / (6 * 5 * 5)), rel=0.05)
        assert abs(np.mean(fc.weights[:-1])) < 0.005

    def test_save_load_round_trip(self, net, tmp_path):
        images, labels = _batch()
        net.data_layer = FixedBatch(images, labels)
        net.train(2)
        before = net.test(images)
        path = tmp_path / "lenet.ckpt"
        save(path, net)
        data_layer = FixedBatch(images, labels)
        loaded = load(path, data_layer)
        assert loaded.data_layer is data_layer
        np.testing.assert_array_equal(loaded.test(images), before)
        assert loaded.loss == net.loss
        assert loaded.optimizer.learning_rate == 5e-4 and loaded.optimizer.regularizer.alpha == 4e-4
        assert isinstance(loaded.weights_initializer, He) and isinstance(loaded.bias_initializer, He)
        # training continues identically (Adam moments and step counts were saved)
        net.train(2)
        loaded.train(2)
        assert loaded.loss == net.loss
        np.testing.assert_array_equal(loaded.layers[0].weights, net.layers[0].weights)

    def test_one_training_step_decreases_the_loss(self, net):
        images, labels = _batch(16)
        net.data_layer = FixedBatch(images, labels)
        net.train(1)
        first = net.loss[0]
        net.train(1)
        assert net.loss[1] < first
        net.train(8)
        assert net.loss[-1] < 0.9 * first
