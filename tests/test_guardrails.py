"""Training guardrails and input checks: the NaN guard names the iteration and the layer,
bad data layers are reported before the first update, ``corenet.set_checks(nan=True)``
covers every registered layer, and a rejected input leaves a layer as it was."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import corenet
from corenet.errors import CorenetError, DivergenceError, NonFiniteError, ShapeError
from corenet.initializers import Constant, He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Adam, Sgd, SgdWithMomentum
from corenet.testing import FixedBatch

GUARD = re.compile(
    r"training stopped at iteration (\d+) of (\d+): the loss became (nan|inf|-inf) "
    r"\(first non-finite output from layer (\d+) \((\w+)\)\)"
)


def one_hot(indices, classes: int) -> np.ndarray:
    labels = np.zeros((len(indices), classes))
    labels[np.arange(len(indices)), indices] = 1.0
    return labels


def network(optimizer, inputs=None, labels=None, extra=()) -> NeuralNetwork:
    np.random.seed(0)
    net = NeuralNetwork(optimizer, He(), Constant(0.1))
    for layer in (FullyConnected(4, 8), ReLU(), *extra, FullyConnected(8, 3), SoftMax()):
        net.append_layer(layer)
    inputs = np.random.standard_normal((12, 4)) if inputs is None else inputs
    labels = one_hot(np.arange(12) % 3, 3) if labels is None else labels
    net.data_layer = FixedBatch(inputs, labels)  # no last_input: the guard must not depend on it
    net.loss_layer = CrossEntropyLoss()
    return net


def snapshot(net: NeuralNetwork) -> list:
    return [copy.deepcopy(layer.__dict__) for layer in net.layers]


def assert_same_state(before: list, net: NeuralNetwork) -> None:
    for old, layer in zip(before, net.layers):
        assert old.keys() == layer.__dict__.keys()
        for key, value in old.items():
            current = layer.__dict__[key]
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(current, value, err_msg=f"{layer!r}.{key}")


def first_non_finite_layer(net: NeuralNetwork, tensor) -> int:
    """Independent check of the guard's verdict: forward copies of the layers."""
    for index, layer in enumerate(copy.deepcopy(net.layers)):
        tensor = layer.forward(tensor)
        if not np.all(np.isfinite(tensor)):
            return index
    raise AssertionError("every output is finite")


class TestNaNGuard:
    @pytest.mark.parametrize("optimizer", [Sgd(1e6), SgdWithMomentum(1e6, 0.9)], ids=["sgd", "momentum"])
    def test_learning_rate_1e6_stops_naming_iteration_and_layer(self, optimizer):
        net = network(optimizer)
        with np.errstate(all="ignore"), pytest.raises(DivergenceError) as info:
            net.train(500)
        found = GUARD.search(str(info.value))
        assert found, str(info.value)
        iteration, total, _, layer, name = found.groups()
        assert int(total) == 500
        assert int(iteration) == len(net.loss) + 1  # the failing iteration's loss was not recorded
        assert 1 < int(iteration) < 500
        assert np.all(np.isfinite(net.loss))
        assert name == type(net.layers[int(layer)]).__name__
        with np.errstate(all="ignore"):
            assert first_non_finite_layer(net, net.data_layer.input_tensor) == int(layer)
        assert "Lower the learning rate" in str(info.value)

    def test_the_error_is_a_floating_point_and_corenet_error(self):
        assert issubclass(DivergenceError, FloatingPointError)
        assert issubclass(DivergenceError, CorenetError)
        assert corenet.DivergenceError is DivergenceError

    def test_no_update_after_the_non_finite_loss(self):
        net = network(Sgd(1e6))
        with np.errstate(all="ignore"), pytest.raises(DivergenceError):
            net.train(500)
        before = snapshot(net)
        calls = net.data_layer.calls
        with np.errstate(all="ignore"), pytest.raises(DivergenceError, match="iteration 1 of 3"):
            net.train(3)  # still diverged: stops at once, the weights untouched
        assert net.data_layer.calls == calls + 1
        assert_same_state(before, net)

    def test_the_diagnosis_leaves_layers_and_the_random_generator_alone(self):
        from corenet_batchnorm.batchnorm import BatchNormalization
        from corenet_dropout.dropout import Dropout

        net = network(Sgd(0.1), extra=(Dropout(0.5), BatchNormalization(8)))
        net.train(2)
        net.forward()
        before = snapshot(net)
        np.random.seed(123)
        expected = np.random.random(5)
        np.random.seed(123)
        verdict = net._first_non_finite()
        np.testing.assert_array_equal(np.random.random(5), expected)
        assert "finite" in verdict  # every output finite here: the loss layer is blamed
        assert_same_state(before, net)

    def test_non_finite_weights_are_named(self):
        net = network(Adam(1e-3))
        net.train(2)
        net.layers[2].weights[0, 0] = np.nan
        with np.errstate(all="ignore"), pytest.raises(DivergenceError) as info:
            net.train(1)
        message = str(info.value)
        assert "layer 2 (FullyConnected) has non-finite weights: an earlier update diverged" in message
        assert "iteration 1 of 1" in str(info.value)

    def test_nan_in_the_data_is_blamed_on_the_data(self):
        inputs = np.random.standard_normal((12, 4))
        inputs[5, 2] = np.nan
        net = network(Sgd(0.1), inputs=inputs)
        with np.errstate(all="ignore"), pytest.raises(DivergenceError, match="input batch from the data"):
            net.train(1)
        assert net.loss == []

    def test_overflowing_regularization_is_named(self):
        class Huge:
            def calculate_gradient(self, weights):
                return np.zeros_like(weights)

            def norm(self, weights):
                return float("inf")

        optimizer = Sgd(0.1)
        optimizer.add_regularizer(Huge())
        net = network(optimizer)
        with pytest.raises(DivergenceError, match=r"regularization loss of layer 0 \(FullyConnected\)"):
            net.train(1)

    def test_a_finite_run_is_untouched(self):
        net = network(Adam(1e-2))
        net.train(30)
        assert len(net.loss) == 30 and net.loss[-1] < net.loss[0]


class TestBeforeTheFirstStep:
    @staticmethod
    def assert_nothing_happened(net: NeuralNetwork, before: list) -> None:
        assert net.loss == []
        assert_same_state(before, net)
        for layer in net.layers:
            if getattr(layer, "trainable", False):
                assert layer.parameter_optimizer("weights").iteration == 0

    def test_missing_data_layer(self):
        net = network(Adam(1e-3))
        net.data_layer = None
        before = snapshot(net)
        with pytest.raises(CorenetError, match="needs a data_layer"):
            net.train(5)
        self.assert_nothing_happened(net, before)

    @pytest.mark.parametrize("labels", [8, 13], ids=["fewer-labels", "more-labels"])
    def test_mismatched_batch_sizes(self, labels):
        net = network(Adam(1e-3), labels=one_hot(np.arange(labels) % 3, 3))
        before = snapshot(net)
        with pytest.raises(ShapeError, match=f"next\\(\\) returned 12 inputs but {labels} labels"):
            net.train(5)
        self.assert_nothing_happened(net, before)
        assert net.data_layer.calls == 1

    def test_data_layer_without_next(self):
        net = network(Adam(1e-3))
        net.data_layer = [np.zeros((2, 4)), np.zeros((2, 3))]
        with pytest.raises(TypeError, match=r"next\(\) method"):
            net.train(1)

    def test_labels_without_batch_axis(self):
        net = network(Adam(1e-3), labels=np.float64(1.0))
        with pytest.raises(ShapeError, match="label tensor without a batch axis"):
            net.train(1)

    def test_wrong_label_width_is_reported_by_the_loss_layer(self):
        net = network(Adam(1e-3), labels=one_hot(np.arange(12) % 4, 4))
        before = snapshot(net)
        with pytest.raises(ShapeError, match=r"loss layer: CrossEntropyLoss.*\(12, 3\).*\(12, 4\)"):
            net.train(1)
        self.assert_nothing_happened(net, before)

    def test_non_callable_callback(self):
        net = network(Adam(1e-3))
        with pytest.raises(TypeError, match="callback"):
            net.train(1, callback="print")
        assert net.data_layer.calls == 0


# -- corenet.set_checks(nan=True) ---------------------------------------------------------------
def registered_layers():
    """(name, factory, good input) for every layer the registry offers."""
    from corenet.layers.conv import Conv
    from corenet.layers.flatten import Flatten
    from corenet.layers.pooling import Pooling

    cases = {
        "FullyConnected": (lambda: FullyConnected(3, 2), (4, 3)),
        "ReLU": (ReLU, (4, 3)),
        "SoftMax": (SoftMax, (4, 3)),
        "Flatten": (Flatten, (2, 1, 3, 3)),
        "Conv": (lambda: Conv(1, (1, 3, 3), 2), (2, 1, 4, 4)),
        "Pooling": (lambda: Pooling(2, 2), (2, 1, 4, 4)),
    }
    registry = corenet.get_registry()
    plugin_cases = {
        "Dropout": (lambda: registry.layers["Dropout"](0.5), (4, 3)),
        "BatchNormalization": (lambda: registry.layers["BatchNormalization"](3), (4, 3)),
        "TanH": (lambda: registry.layers["TanH"](), (4, 3)),
        "Sigmoid": (lambda: registry.layers["Sigmoid"](), (4, 3)),
        "RNN": (lambda: registry.layers["RNN"](3, 4, 2), (5, 3)),
        "LSTM": (lambda: registry.layers["LSTM"](3, 4, 2), (5, 3)),
    }
    cases.update({name: case for name, case in plugin_cases.items() if name in registry.layers})
    ours = {"corenet", "corenet-dropout", "corenet-batchnorm", "corenet-recurrent", "corenet-reg-l1l2",
            "corenet-lenet"}
    missing = {name for name in registry.layers if registry.provider("layers", name).distribution in ours}
    assert not missing - set(cases), f"add a set_checks case for {missing - set(cases)}"
    return [(name, *case) for name, case in sorted(cases.items())]


LAYERS = registered_layers()


@pytest.fixture
def nan_checks():
    previous = corenet.set_checks(nan=True)
    yield
    corenet.set_checks(**previous)


def test_checks_are_off_by_default_and_restorable():
    assert corenet.get_checks() == {"nan": False}
    assert corenet.set_checks(nan=True) == {"nan": False}
    assert corenet.set_checks(nan=False) == {"nan": True}
    assert corenet.set_checks() == {"nan": False}
    assert {"set_checks", "get_checks", "NonFiniteError"} <= set(corenet.__all__)


@pytest.mark.parametrize("name, factory, shape", LAYERS, ids=[case[0] for case in LAYERS])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_every_layer_refuses_non_finite_input_when_checked(nan_checks, name, factory, shape, bad):
    layer = factory()
    x = np.random.standard_normal(shape)
    x.reshape(-1)[1] = bad
    with pytest.raises(NonFiniteError) as info:
        layer.forward(x)
    message = str(info.value)
    assert message.startswith(repr(layer)) and "the input" in message and str(shape) in message


@pytest.mark.parametrize("name, factory, shape", LAYERS, ids=[case[0] for case in LAYERS])
def test_every_layer_refuses_non_finite_error_when_checked(nan_checks, name, factory, shape):
    layer = factory()
    output = layer.forward(np.random.standard_normal(shape))
    error = np.ones(output.shape)
    error.reshape(-1)[-1] = np.nan
    with pytest.raises(NonFiniteError, match="error tensor"):
        layer.backward(error)


@pytest.mark.parametrize("name, factory, shape", LAYERS, ids=[case[0] for case in LAYERS])
def test_unchecked_layers_pass_non_finite_values_on(name, factory, shape):
    x = np.random.standard_normal(shape)
    x.reshape(-1)[0] = np.nan
    with np.errstate(all="ignore"):
        output = factory().forward(x)
    assert not np.all(np.isfinite(output))


def test_checked_loss_refuses_nan_labels(nan_checks):
    with pytest.raises(NonFiniteError, match="CrossEntropyLoss: the label"):
        CrossEntropyLoss().forward(np.full((2, 2), 0.5), np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_checked_network_names_the_layer(nan_checks):
    inputs = np.random.standard_normal((12, 4))
    inputs[3, 1] = np.inf
    net = network(Sgd(0.1), inputs=inputs)
    with pytest.raises(NonFiniteError, match=r"^layer 0 \(FullyConnected\): .* 0 NaN and 1 inf values"):
        net.train(1)
    assert net.loss == []


@pytest.mark.parametrize("name, factory, shape", LAYERS, ids=[case[0] for case in LAYERS])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.uint8])
def test_integer_and_boolean_inputs_are_computed_as_floats(name, factory, shape, dtype):
    x = (np.arange(int(np.prod(shape))).reshape(shape) % 3).astype(dtype)
    np.random.seed(4)
    output = factory().forward(x)
    np.random.seed(4)
    expected = factory().forward(x.astype(np.float64))
    assert output.dtype == np.float64
    np.testing.assert_array_equal(output, expected)


# -- a rejected input leaves the layer as it was ---------------------------------------------------
def forwarded(factory, x):
    """A layer built and run forward on ``x`` with fixed seeds (identical every call): (layer, output)."""
    np.random.seed(1)
    layer = factory()
    np.random.seed(2)
    return layer, layer.forward(x)


@pytest.mark.parametrize("name, factory, shape", LAYERS, ids=[case[0] for case in LAYERS])
def test_rejected_input_does_not_corrupt_the_layer(name, factory, shape):
    x = np.random.standard_normal(shape)
    (layer, output), (twin, _) = forwarded(factory, x), forwarded(factory, x)
    wrong_size = np.zeros((*shape[:-1], shape[-1] + 1))
    for bad in (np.zeros((0, *shape[1:])), np.full(shape, "1"), None, np.ones(shape) * 1j,
                np.zeros((1,) * 6), wrong_size):
        try:
            layer.forward(bad)
        except ShapeError:
            continue
        assert bad is wrong_size, f"{name} accepted {bad!r:.40}"
        layer, _ = forwarded(factory, x)  # a layer that takes any size: start again
    error = np.random.standard_normal(output.shape)
    np.testing.assert_array_equal(layer.backward(error), twin.backward(error))
    for key, value in twin.__dict__.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(layer.__dict__[key], value, err_msg=key)
