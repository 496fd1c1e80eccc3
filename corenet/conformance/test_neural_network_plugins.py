"""TestNeuralNetwork, plugin part: phases and regularization with the regularization plugins.

Each test needs some of corenet-reg-l1l2, corenet-dropout and corenet-batchnorm and
skips cleanly when they are not installed, so the core group passes without plugins.
"""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.base import Phase
from corenet.data.iris import IrisData
from corenet.initializers import Constant, He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.flatten import Flatten
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Adam, Sgd
from corenet.testing import calculate_accuracy


def plugin_class(module: str, name: str) -> type:
    return getattr(pytest.importorskip(module), name)


def BatchNormalization(channels: int):  # noqa: N802 (reads like the class it builds)
    return plugin_class("corenet_batchnorm.batchnorm", "BatchNormalization")(channels)


def Dropout(probability: float):  # noqa: N802
    return plugin_class("corenet_dropout.dropout", "Dropout")(probability)


def regularizer(kind: str, alpha: float):
    return plugin_class("corenet_reg_l1l2.constraints", f"{kind}_Regularizer")(alpha)


class ImageIris:
    """IrisData with inputs shaped (b, 4, 1): a 1-D 'signal' for Conv."""

    def __init__(self, batch_size: int) -> None:
        self.data = IrisData(batch_size, random=False)
        self.last_input = None

    def next(self):
        input_tensor, label_tensor = self.data.next()
        self.last_input = input_tensor[:, :, None]
        return self.last_input, label_tensor


def iris_network(layers, iterations: int, optimizer=None) -> tuple[NeuralNetwork, float]:
    np.random.seed(0)
    net = NeuralNetwork(optimizer or Adam(5e-3, 0.9, 0.999), He(), Constant(0.1))
    net.data_layer = IrisData(50)
    net.loss_layer = CrossEntropyLoss()
    for layer in layers:
        net.append_layer(layer)
    net.train(iterations)
    test_input, test_label = net.data_layer.get_test_set()
    return net, calculate_accuracy(net.test(test_input), test_label)


class TestNeuralNetworkPlugins:
    # -- phases --------------------------------------------------------------------------------
    def test_phase_reaches_batchnorm_and_dropout(self):
        layers = [BatchNormalization(4), FullyConnected(4, 3), Dropout(0.5), SoftMax()]
        net, _ = iris_network(layers, 2)
        assert net.phase is Phase.test and all(layer.testing_phase for layer in net.layers)  # after test()
        net.train(1)
        assert net.phase is Phase.train and not any(layer.testing_phase for layer in net.layers)
        net.phase = Phase.test
        assert layers[0].testing_phase and layers[2].testing_phase

    def test_iris_with_batchnorm(self):
        net, accuracy = iris_network(
            [BatchNormalization(4), FullyConnected(4, 8), ReLU(), FullyConnected(8, 3), SoftMax()], 300)
        assert accuracy > 0.8, f"Iris test accuracy with BatchNormalization {accuracy:.3f}"
        test_input, _ = net.data_layer.get_test_set()
        np.testing.assert_array_equal(net.test(test_input), net.test(test_input))

    def test_iris_with_dropout(self):
        net, accuracy = iris_network(
            [FullyConnected(4, 16), ReLU(), Dropout(0.7), FullyConnected(16, 3), SoftMax()], 300)
        assert accuracy > 0.8, f"Iris test accuracy with Dropout {accuracy:.3f}"
        test_input, _ = net.data_layer.get_test_set()
        np.testing.assert_array_equal(net.test(test_input), net.test(test_input))

    # -- regularization --------------------------------------------------------------------------
    @staticmethod
    def layer_factories() -> dict:
        from corenet.layers.conv import Conv

        factories = {
            "FullyConnected": (lambda: [FullyConnected(4, 3)], False),
            "Conv": (lambda: [Conv((1,), (4, 1), 3), Flatten()], True),
        }
        registry = corenet.get_registry()
        for name in ("RNN", "LSTM"):
            if name in registry.layers:
                factories[name] = (lambda cls=registry.layers[name]: [cls(4, 4, 3)], False)
        return factories

    @pytest.mark.parametrize("kind", ["L1", "L2"])
    @pytest.mark.parametrize("layer_name", ["FullyConnected", "Conv", "RNN", "LSTM"])
    def test_regularization_loss_is_added(self, layer_name, kind):
        regularizer(kind, 1.0)  # skips without corenet-reg-l1l2
        factories = self.layer_factories()
        if layer_name not in factories:
            pytest.skip(f"{layer_name} is not installed")
        build, image_input = factories[layer_name]
        losses, norms = [], []
        for regularized in (False, True):
            optimizer = Sgd(1e-3)
            if regularized:
                optimizer.add_regularizer(regularizer(kind, 8e-2))
            net = NeuralNetwork(optimizer, Constant(0.5), Constant(0.1))
            net.data_layer = ImageIris(100) if image_input else IrisData(100, random=False)
            net.loss_layer = CrossEntropyLoss()
            for layer in (*build(), SoftMax()):
                net.append_layer(layer)
            norms.append(net.regularization_loss())
            net.train(1)
            losses.append(net.loss[0])
        assert norms[0] == 0.0 and norms[1] > 0.0
        assert losses[1] > losses[0], f"regularization loss of {layer_name} is not added to the loss"
        assert losses[1] - losses[0] == pytest.approx(norms[1], rel=1e-9)
