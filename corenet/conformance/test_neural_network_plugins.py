"""TestNeuralNetwork, plugin part: phases and regularization with the regularization plugins' layers.

The network under test is ``impl("NeuralNetwork")``; BatchNormalization, Dropout, the
regularizers, RNN and LSTM are corenet's reference implementations. Each test skips cleanly
when the plugin it needs is not installed, so the group passes on the core alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from corenet.checking.expect import expect, expect_close
from corenet.data.iris import IrisData
from corenet.testing import calculate_accuracy

pytestmark = pytest.mark.contract


class ImageIris:
    """IrisData with inputs shaped (b, 4, 1): a 1-D 'signal' for Conv."""

    def __init__(self, batch_size: int) -> None:
        self.data = IrisData(batch_size, random=False)

    def next(self):
        input_tensor, label_tensor = self.data.next()
        return input_tensor[:, :, None], label_tensor


@pytest.fixture
def NeuralNetwork(impl):
    return impl("NeuralNetwork")


def iris_network(NeuralNetwork, impl, layers, iterations: int):  # noqa: N803
    np.random.seed(0)
    net = NeuralNetwork(impl.reference("Adam")(5e-3, 0.9, 0.999), impl.reference("He")(),
                        impl.reference("Constant")(0.1))
    net.data_layer = IrisData(50)
    net.loss_layer = impl.reference("CrossEntropyLoss")()
    for layer in layers:
        net.append_layer(layer)
    net.train(iterations)
    test_input, test_label = net.data_layer.get_test_set()
    return net, calculate_accuracy(net.test(test_input), test_label)


def layer_stack(impl, name: str) -> tuple[list, bool]:
    """The layers (before the SoftMax) that put ``name`` into a 4-feature, 3-class network, and whether the
    data must be shaped as a 1-D signal."""
    cls = impl.reference(name)
    if name == "Conv":
        return [cls((1,), (4, 1), 3), impl.reference("Flatten")()], True
    if name == "FullyConnected":
        return [cls(4, 3)], False
    return [cls(4, 4, 3)], False


def regularized_losses(NeuralNetwork, impl, name: str, kind: str) -> list[float]:  # noqa: N803
    """The first training loss of the same network without and with a regularizer ``kind`` (alpha 0.08)."""
    regularizer = impl.reference(f"{kind}_Regularizer")
    losses = []
    for regularized in (False, True):
        optimizer = impl.reference("Sgd")(1e-3)
        if regularized:
            optimizer.add_regularizer(regularizer(8e-2))
        net = NeuralNetwork(optimizer, impl.reference("Constant")(0.5), impl.reference("Constant")(0.1))
        layers, image_input = layer_stack(impl, name)
        net.data_layer = ImageIris(100) if image_input else IrisData(100, random=False)
        net.loss_layer = impl.reference("CrossEntropyLoss")()
        for layer in (*layers, impl.reference("SoftMax")()):
            net.append_layer(layer)
        net.train(1)
        losses.append(float(net.loss[0]))
    return losses


class TestNeuralNetworkPlugins:
    # -- contract -------------------------------------------------------------------------------
    def test_phase_reaches_batchnorm_and_dropout(self, NeuralNetwork, impl):
        batchnorm, dropout = impl.reference("BatchNormalization")(4), impl.reference("Dropout")(0.5)
        layers = [batchnorm, impl.reference("FullyConnected")(4, 3), dropout, impl.reference("SoftMax")()]
        net, _ = iris_network(NeuralNetwork, impl, layers, 2)
        expect(batchnorm.testing_phase and dropout.testing_phase, "after test(), BatchNormalization or Dropout "
               "is not in the testing phase", "test() sets testing_phase on every layer")
        net.train(1)
        expect(not (batchnorm.testing_phase or dropout.testing_phase), "after train(), BatchNormalization or "
               "Dropout is still in the testing phase")

    def test_iris_with_batchnorm(self, NeuralNetwork, impl):
        FullyConnected = impl.reference("FullyConnected")  # noqa: N806
        layers = [impl.reference("BatchNormalization")(4), FullyConnected(4, 8), impl.reference("ReLU")(),
                  FullyConnected(8, 3), impl.reference("SoftMax")()]
        net, accuracy = iris_network(NeuralNetwork, impl, layers, 300)
        expect(accuracy > 0.8, f"Iris test accuracy with BatchNormalization is {accuracy:.1%}, expected > 80%")
        test_input, _ = net.data_layer.get_test_set()
        expect_close(net.test(test_input), net.test(test_input), "two test() predictions of the same input",
                     "test() must use the testing phase (BatchNormalization's moving averages)", rtol=0, atol=0)

    def test_iris_with_dropout(self, NeuralNetwork, impl):
        FullyConnected = impl.reference("FullyConnected")  # noqa: N806
        layers = [FullyConnected(4, 16), impl.reference("ReLU")(), impl.reference("Dropout")(0.7),
                  FullyConnected(16, 3), impl.reference("SoftMax")()]
        net, accuracy = iris_network(NeuralNetwork, impl, layers, 300)
        expect(accuracy > 0.8, f"Iris test accuracy with Dropout is {accuracy:.1%}, expected > 80%")
        test_input, _ = net.data_layer.get_test_set()
        expect_close(net.test(test_input), net.test(test_input), "two test() predictions of the same input",
                     "test() must use the testing phase (no dropout)", rtol=0, atol=0)

    @pytest.mark.parametrize("kind", ["L1", "L2"])
    @pytest.mark.parametrize("layer_name", ["FullyConnected", "Conv", "RNN", "LSTM"])
    def test_regularization_loss_is_added(self, NeuralNetwork, impl, layer_name, kind):
        plain, regularized = regularized_losses(NeuralNetwork, impl, layer_name, kind)
        expect(regularized > plain, f"with {kind}_Regularizer(0.08) the loss of a network with {layer_name} is "
               f"{regularized:.6g}, without {plain:.6g}", f"add the regularization loss of every trainable layer "
               f"({layer_name} included) to the loss")

    # -- reference ------------------------------------------------------------------------------
    @pytest.mark.reference
    @pytest.mark.parametrize("kind", ["L1", "L2"])
    @pytest.mark.parametrize("layer_name", ["FullyConnected", "Conv", "RNN", "LSTM"])
    def test_regularization_loss_matches_the_reference(self, NeuralNetwork, impl, layer_name, kind):
        ours = regularized_losses(NeuralNetwork, impl, layer_name, kind)
        theirs = regularized_losses(impl.reference("NeuralNetwork"), impl, layer_name, kind)
        expect_close(ours, theirs, f"first loss with {layer_name}, without and with {kind}_Regularizer(0.08), vs "
                     "corenet's reference network", "sum regularizer.norm over every weight tensor the layer's "
                     "optimizer updates (the layer's calculate_regularization_loss)", rtol=1e-9)
