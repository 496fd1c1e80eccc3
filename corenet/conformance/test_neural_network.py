"""Conformance group TestNeuralNetwork: building, phases, training, testing, pickling, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from corenet.base import Phase
from corenet.data.digits import DigitData
from corenet.data.iris import IrisData
from corenet.errors import CorenetError, ShapeError
from corenet.initializers import Constant, He, UniformRandom, Xavier
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.flatten import Flatten
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Adam, Sgd, SgdWithMomentum
from corenet.testing import ReferenceL2, calculate_accuracy


class FixedData:
    """A data layer returning the same batch every time."""

    def __init__(self, input_tensor: np.ndarray, label_tensor: np.ndarray) -> None:
        self.input_tensor, self.label_tensor = input_tensor, label_tensor
        self.last_input = None
        self.calls = 0

    def next(self):
        self.calls += 1
        self.last_input = self.input_tensor
        return self.input_tensor.copy(), self.label_tensor.copy()


class GeneratorData(FixedData):
    """Like FixedData but holds a generator, which pickle cannot handle (as in the course)."""

    def __init__(self, input_tensor: np.ndarray, label_tensor: np.ndarray) -> None:
        super().__init__(input_tensor, label_tensor)
        self.generator = (i for i in range(3))


def one_hot(indices: np.ndarray, classes: int) -> np.ndarray:
    labels = np.zeros((indices.size, classes))
    labels[np.arange(indices.size), indices] = 1.0
    return labels


def fixed_batch(batch: int = 6, features: int = 4, classes: int = 3) -> FixedData:
    rng = np.random.RandomState(0)
    return FixedData(rng.standard_normal((batch, features)), one_hot(rng.randint(0, classes, batch), classes))


def small_net(optimizer=None, data=None, weights_initializer=None, bias_initializer=None) -> NeuralNetwork:
    net = NeuralNetwork(
        optimizer or Sgd(1e-2), weights_initializer or Xavier(), bias_initializer or Constant(0.1)
    )
    net.data_layer = data or fixed_batch()
    net.loss_layer = CrossEntropyLoss()
    for layer in (FullyConnected(4, 5), ReLU(), FullyConnected(5, 3), SoftMax()):
        net.append_layer(layer)
    return net


def iris_net(seed: int) -> NeuralNetwork:
    np.random.seed(seed)
    net = NeuralNetwork(Adam(1e-2, 0.9, 0.999), He(), Constant(0.1))
    net.data_layer = IrisData(33)
    net.loss_layer = CrossEntropyLoss()
    for layer in (FullyConnected(4, 16), ReLU(), FullyConnected(16, 3), SoftMax()):
        net.append_layer(layer)
    return net


class TestNeuralNetwork:
    def setup_method(self) -> None:
        np.random.seed(123)

    # -- building -----------------------------------------------------------------------------
    def test_constructor_attributes(self):
        optimizer, w_init, b_init = Sgd(0.1), Xavier(), Constant(0.2)
        net = NeuralNetwork(optimizer, w_init, b_init)
        assert net.optimizer is optimizer
        assert net.weights_initializer is w_init and net.bias_initializer is b_init
        assert net.layers == [] and net.loss == []
        assert net.data_layer is None and net.loss_layer is None

    def test_append_layer_deep_copies_optimizer(self):
        net = NeuralNetwork(Adam(1e-3, 0.9, 0.999), Xavier(), Constant(0.1))
        first, relu, second = FullyConnected(4, 5), ReLU(), FullyConnected(5, 3)
        for layer in (first, relu, second):
            net.append_layer(layer)
        assert net.layers == [first, relu, second]
        for layer in (first, second):
            assert isinstance(layer.optimizer, Adam)
            assert layer.optimizer is not net.optimizer
            assert layer.optimizer.learning_rate == 1e-3
        assert first.optimizer is not second.optimizer
        assert getattr(relu, "optimizer", None) is None

    def test_append_layer_copies_carry_the_regularizer(self):
        optimizer = Sgd(0.1)
        optimizer.add_regularizer(ReferenceL2(0.5))
        net = NeuralNetwork(optimizer, Xavier(), Constant(0.1))
        layer = FullyConnected(2, 2)
        net.append_layer(layer)
        assert isinstance(layer.optimizer.regularizer, ReferenceL2)
        assert layer.optimizer.regularizer.alpha == 0.5

    def test_append_layer_initializes_trainable_layers(self):
        net = NeuralNetwork(Sgd(0.1), Constant(0.3), Constant(-0.2))
        layer = FullyConnected(3, 4)
        net.append_layer(layer)
        np.testing.assert_array_equal(layer.weights[:-1], 0.3)
        np.testing.assert_array_equal(layer.weights[-1], -0.2)

    def test_append_layer_refuses_non_layers(self):
        net = NeuralNetwork(Sgd(0.1), Xavier(), Constant(0.1))
        with pytest.raises(TypeError, match="forward"):
            net.append_layer("FullyConnected")

    def test_every_tensor_gets_its_own_optimizer_state(self):
        net = small_net(Adam(1e-2, 0.9, 0.999))
        net.train(3)
        assert net.optimizer.iteration == 0  # the network's own optimizer is only a template
        for layer in (net.layers[0], net.layers[2]):
            assert layer.parameter_optimizer("weights").iteration == 3
        first = net.layers[0].parameter_optimizer("weights")
        second = net.layers[2].parameter_optimizer("weights")
        assert first is not second and first.first_moment.shape != second.first_moment.shape

    # -- phase --------------------------------------------------------------------------------
    def test_phase_property(self):
        net = small_net()
        assert net.phase is Phase.train
        net.phase = Phase.test
        assert net.phase is Phase.test
        assert all(layer.testing_phase for layer in net.layers)
        net.phase = "train"
        assert net.phase is Phase.train
        assert not any(layer.testing_phase for layer in net.layers)
        net.phase = True
        assert net.phase is Phase.test
        with pytest.raises(ValueError, match="phase"):
            net.phase = "validation"

    def test_train_and_test_set_the_phase(self):
        net = small_net()
        net.test(np.zeros((2, 4)))
        assert net.phase is Phase.test and all(layer.testing_phase for layer in net.layers)
        net.train(1)
        assert net.phase is Phase.train and not any(layer.testing_phase for layer in net.layers)

    # -- running ------------------------------------------------------------------------------
    def test_forward_returns_the_data_loss(self):
        data = fixed_batch()
        net = small_net(data=data)
        loss = net.forward()
        activation = data.input_tensor
        for layer in net.layers:
            activation = layer.forward(activation)
        assert loss == pytest.approx(CrossEntropyLoss().forward(activation, data.label_tensor), rel=1e-12)

    def test_forward_adds_the_regularization_loss(self):
        optimizer = Sgd(1e-2)
        optimizer.add_regularizer(ReferenceL2(0.25))
        data = fixed_batch()
        net, plain = small_net(optimizer, data), small_net(Sgd(1e-2), data)
        for source, target in zip(net.layers, plain.layers):
            if source.trainable:
                target.weights = source.weights.copy()
        penalty = 0.25 * sum(np.sum(layer.weights**2) for layer in net.layers if layer.trainable)
        assert penalty > 0
        assert net.regularization_loss() == pytest.approx(penalty, rel=1e-12)
        assert net.forward() == pytest.approx(plain.forward() + penalty, rel=1e-12)

    def test_backward_propagates_and_updates(self):
        net = small_net(Sgd(0.5))
        before = [layer.weights.copy() for layer in net.layers if layer.trainable]
        net.forward()
        net.backward()
        for layer, old in zip([layer for layer in net.layers if layer.trainable], before):
            assert layer.gradient_weights is not None
            np.testing.assert_allclose(layer.weights, old - 0.5 * layer.gradient_weights, rtol=1e-12)

    def test_train_records_one_loss_per_iteration_and_learns(self):
        net = small_net(Adam(5e-2, 0.9, 0.999))
        net.train(40)
        assert len(net.loss) == 40
        assert all(isinstance(value, float) for value in net.loss)
        assert net.data_layer.calls == 40
        assert net.loss[-1] < 0.2 * net.loss[0]
        net.train(5)
        assert len(net.loss) == 45

    def test_train_calls_the_callback(self):
        net = small_net()
        seen = []
        net.train(4, callback=lambda iteration, loss: seen.append((iteration, loss)))
        assert [iteration for iteration, _ in seen] == [0, 1, 2, 3]
        assert [loss for _, loss in seen] == net.loss

    def test_train_zero_iterations(self):
        net = small_net()
        net.train(0)
        assert net.loss == []

    @pytest.mark.parametrize("iterations", [-1, 2.5, True, "3"])
    def test_train_refuses_bad_iteration_counts(self, iterations):
        with pytest.raises(ValueError, match="iterations"):
            small_net().train(iterations)

    def test_test_predicts_without_loss_or_update(self):
        net = small_net()
        before = [layer.weights.copy() for layer in net.layers if layer.trainable]
        prediction = net.test(np.random.standard_normal((7, 4)))
        assert prediction.shape == (7, 3)
        np.testing.assert_allclose(prediction.sum(axis=1), 1.0)
        assert net.loss == []
        for layer, old in zip([layer for layer in net.layers if layer.trainable], before):
            np.testing.assert_array_equal(layer.weights, old)

    def test_training_is_deterministic_when_seeded(self):
        np.random.seed(9)
        first = iris_net(4)
        first.train(20)
        second = iris_net(4)
        second.train(20)
        assert first.loss == second.loss
        third = iris_net(5)
        third.train(20)
        assert third.loss != first.loss

    def test_l2_regularization_shrinks_the_weights(self):
        def weight_norm(alpha: float) -> float:
            np.random.seed(3)
            optimizer = SgdWithMomentum(1e-2, 0.9)
            if alpha:
                optimizer.add_regularizer(ReferenceL2(alpha))
            net = small_net(optimizer, weights_initializer=UniformRandom())
            net.train(60)
            return sum(float(np.sum(layer.weights**2)) for layer in net.layers if layer.trainable)

        assert weight_norm(1.0) < 0.75 * weight_norm(0.0)

    # -- accuracy on the embedded data --------------------------------------------------------
    def test_iris_fully_connected_over_90_percent(self):
        net = iris_net(0)
        net.train(300)
        test_input, test_label = net.data_layer.get_test_set()
        accuracy = calculate_accuracy(net.test(test_input), test_label)
        assert accuracy > 0.9, f"Iris test accuracy {accuracy:.3f}"
        assert np.mean(net.loss[-10:]) < 0.25 * np.mean(net.loss[:10])

    def test_digits_convolutional_over_85_percent(self):
        from corenet.layers.conv import Conv

        np.random.seed(0)
        net = NeuralNetwork(Adam(5e-3, 0.9, 0.999), He(), Constant(0.1))
        net.data_layer = DigitData(50)
        net.loss_layer = CrossEntropyLoss()
        layers = (Conv((1, 1), (1, 3, 3), 4), ReLU(), Flatten(), FullyConnected(4 * 8 * 8, 10), SoftMax())
        for layer in layers:
            net.append_layer(layer)
        net.train(150)
        test_input, test_label = net.data_layer.get_test_set()
        prediction = net.test(test_input)
        assert prediction.shape == (test_input.shape[0], 10)
        accuracy = calculate_accuracy(prediction, test_label)
        assert accuracy > 0.85, f"Digits test accuracy {accuracy:.3f}"

    # -- pickling -----------------------------------------------------------------------------
    def test_getstate_drops_the_data_layer_without_touching_the_network(self):
        net = small_net()
        net.train(2)
        state = net.__getstate__()
        assert state["data_layer"] is None
        assert net.data_layer is not None
        assert state["layers"] is net.layers

    def test_setstate_restores_the_data_layer_as_none(self):
        net = NeuralNetwork.__new__(NeuralNetwork)
        state = small_net().__dict__.copy()
        state["data_layer"] = fixed_batch()
        net.__setstate__(state)
        assert net.data_layer is None
        assert len(net.layers) == 4

    def test_pickle_round_trip(self):
        data = GeneratorData(fixed_batch().input_tensor, fixed_batch().label_tensor)
        net = small_net(Adam(1e-2, 0.9, 0.999), data)
        net.train(5)
        restored = pickle.loads(pickle.dumps(net))  # would fail if the generator were pickled
        assert restored.data_layer is None
        assert net.data_layer is data
        assert restored.loss == net.loss
        assert [type(layer) for layer in restored.layers] == [type(layer) for layer in net.layers]
        x = np.random.standard_normal((5, 4))
        np.testing.assert_array_equal(restored.test(x), net.test(x))
        assert restored.layers[0].parameter_optimizer("weights").iteration == 5
        # training continues identically once a data layer is attached again
        restored.data_layer = FixedData(data.input_tensor, data.label_tensor)
        restored.train(3)
        net.train(3)
        assert restored.loss == net.loss

    # -- errors -------------------------------------------------------------------------------
    def test_wrong_feature_count_names_the_layer_and_both_sizes(self):
        net = small_net()
        with pytest.raises(ShapeError) as info:
            net.test(np.zeros((2, 6)))
        message = str(info.value)
        assert "layer 0" in message and "FullyConnected(4, 5)" in message
        assert "expects 4" in message and "got 6" in message

    def test_wrong_feature_count_from_the_data_layer(self):
        net = small_net(data=fixed_batch(features=7))
        with pytest.raises(ShapeError, match=r"FullyConnected\(4, 5\) expects 4 input features but got 7"):
            net.train(1)

    def test_backward_before_forward(self):
        with pytest.raises(CorenetError, match="backward called before forward"):
            small_net().backward()

    def test_forward_needs_data_and_loss_layers(self):
        net = small_net()
        net.data_layer = None
        with pytest.raises(CorenetError, match="data_layer"):
            net.forward()
        net = small_net()
        net.loss_layer = None
        with pytest.raises(CorenetError, match="loss_layer"):
            net.train(1)

    def test_non_finite_loss_names_the_first_failing_layer(self):
        data = fixed_batch()
        data.input_tensor = np.full((6, 4), 1e308)
        net = small_net(data=data, weights_initializer=UniformRandom(), bias_initializer=Constant(0.0))
        with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            FloatingPointError, match=r"first non-finite output from layer 0 \(FullyConnected\)"
        ):
            net.train(1)
        assert net.loss == []
