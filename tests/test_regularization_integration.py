"""Cross-plugin integration: reg_l1l2, dropout and batchnorm inside optimizers and networks.

Every test skips cleanly when a plugin it needs is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from corenet.base import Phase
from corenet.initializers import Constant, He, UniformRandom, Xavier
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Adam, Sgd, SgdWithMomentum
from corenet.testing import FixedBatch, calculate_accuracy


def reg_l1l2():
    return pytest.importorskip("corenet_reg_l1l2.constraints")


def dropout_layer(probability: float):
    return pytest.importorskip("corenet_dropout.dropout").Dropout(probability)


def batchnorm_layer(channels: int):
    return pytest.importorskip("corenet_batchnorm.batchnorm").BatchNormalization(channels)


def iris_data(batch_size: int):
    return pytest.importorskip("corenet.data.iris").IrisData(batch_size, random=True)


def fixed_batch(batch: int = 12, features: int = 4, classes: int = 3) -> FixedBatch:
    """The same batch on every next(), so losses can be recomputed by hand."""
    rng = np.random.RandomState(3)
    inputs = rng.standard_normal((batch, features))
    labels = np.zeros((batch, classes))
    labels[np.arange(batch), rng.randint(0, classes, batch)] = 1
    return FixedBatch(inputs, labels)


# -- optimizer + regularizer arithmetic, pinned by hand -----------------------------------------
# w0 = [1, -2, 0.5], gradients g1 = [0.5, 0.5, -1] then g2 = [-1, 0.5, 2], lr = 0.1, alpha = 0.5.
# Each step: w <- step(w, g) - lr * R'(w) with R'(w) = alpha*w (L2) or alpha*sign(w) (L1), R' on the
# weights before the step. Worked out with scalar arithmetic, e.g. Sgd + L2:
#   step 1: 0.95*w0 - 0.1*g1 = [0.9, -1.95, 0.575];  step 2: 0.95*w1 - 0.1*g2 = [0.955, -1.9025, 0.34625]
# SgdWithMomentum(0.1, 0.9) + L2: v1 = -0.1*g1 = [-0.05, -0.05, 0.1], w1 as for Sgd;
#   v2 = 0.9*v1 - 0.1*g2 = [0.055, -0.095, -0.11];  w2 = 0.95*w1 + v2 = [0.91, -1.9475, 0.43625]
# Adam(0.1, 0.9, 0.999), eps 1e-8: step 1 has m^ = g1, r^ = g1^2 (so lr*g/(|g| + eps)); step 2 has
#   m^ = (0.09*g1 + 0.1*g2)/0.19, r^ = (0.000999*g1^2 + 0.001*g2^2)/0.001999, e.g. first entry
#   w1 = 0.95 - 0.1*0.5/(0.5 + 1e-8),  m^ = -0.055/0.19,  r^ = 0.00124975/0.001999,
#   w2 = 0.95*w1 - 0.1*m^/(sqrt(r^) + 1e-8) = 0.8441103541405652
W0 = [1.0, -2.0, 0.5]
G1 = [0.5, 0.5, -1.0]
G2 = [-1.0, 0.5, 2.0]
PINNED = {
    ("Sgd", "L1"): [0.95, -2.0, 0.3],
    ("Sgd", "L2"): [0.955, -1.9025, 0.34625],
    ("SgdWithMomentum", "L1"): [0.905, -2.045, 0.39],
    ("SgdWithMomentum", "L2"): [0.91, -1.9475, 0.43625],
    ("Adam", "L1"): [0.8366103542405652, -2.0999999959999998, 0.4633896465279252],
    ("Adam", "L2"): [0.8441103541405652, -1.9999999960999992, 0.5096396465779252],
}
OPTIMIZERS = {
    "Sgd": lambda: Sgd(0.1),
    "SgdWithMomentum": lambda: SgdWithMomentum(0.1, 0.9),
    "Adam": lambda: Adam(0.1, 0.9, 0.999),
}


@pytest.mark.parametrize(("optimizer_name", "regularizer_name"), sorted(PINNED))
def test_optimizer_with_regularizer_two_steps_pinned(optimizer_name, regularizer_name):
    constraints = reg_l1l2()
    optimizer = OPTIMIZERS[optimizer_name]()
    optimizer.add_regularizer(getattr(constraints, f"{regularizer_name}_Regularizer")(0.5))
    weights = optimizer.calculate_update(np.array(W0), np.array(G1))
    weights = optimizer.calculate_update(weights, np.array(G2))
    np.testing.assert_allclose(weights, PINNED[optimizer_name, regularizer_name], rtol=0, atol=1e-12)


@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
def test_zero_alpha_is_the_plain_optimizer(optimizer_name):
    constraints = reg_l1l2()
    plain, regularized = OPTIMIZERS[optimizer_name](), OPTIMIZERS[optimizer_name]()
    regularized.add_regularizer(constraints.L2_Regularizer(0.0))
    results = []
    for optimizer in (plain, regularized):
        weights = optimizer.calculate_update(np.array(W0), np.array(G1))
        results.append(optimizer.calculate_update(weights, np.array(G2)))
    np.testing.assert_array_equal(results[0], results[1])


# -- the network's loss includes every layer's regularization loss --------------------------------
def build_net(optimizer, data, with_batchnorm: bool = True) -> NeuralNetwork:
    np.random.seed(21)
    net = NeuralNetwork(optimizer, Xavier(), Constant(0.1))
    net.data_layer = data
    net.loss_layer = CrossEntropyLoss()
    if with_batchnorm:
        net.append_layer(batchnorm_layer(4))
    for layer in (FullyConnected(4, 6), ReLU(), FullyConnected(6, 3), SoftMax()):
        net.append_layer(layer)
    return net


def parameter_norm(net: NeuralNetwork, regularizer) -> float:
    """Σ regularizer.norm over every parameter tensor of every trainable layer."""
    total = 0.0
    for layer in net.layers:
        if layer.trainable:
            total += sum(regularizer.norm(getattr(layer, name)) for name in layer.parameter_names)
    return total


@pytest.mark.parametrize("regularizer_name", ["L1", "L2"])
def test_regularized_loss_exceeds_plain_loss_by_the_norms(regularizer_name):
    constraints = reg_l1l2()
    regularizer = getattr(constraints, f"{regularizer_name}_Regularizer")(0.05)
    optimizer = Adam(1e-3, 0.9, 0.999)
    optimizer.add_regularizer(regularizer)
    regularized = build_net(optimizer, fixed_batch())
    plain = build_net(Adam(1e-3, 0.9, 0.999), fixed_batch())
    expected = parameter_norm(regularized, regularizer)  # weights the first iteration sees
    assert expected == pytest.approx(parameter_norm(plain, regularizer))  # same initial weights
    regularized.train(1)
    plain.train(1)
    assert regularized.loss[0] > plain.loss[0]
    assert regularized.loss[0] - plain.loss[0] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("regularizer_name", ["L1", "L2"])
def test_forward_is_data_loss_plus_norms_after_training(regularizer_name):
    constraints = reg_l1l2()
    regularizer = getattr(constraints, f"{regularizer_name}_Regularizer")(0.02)
    optimizer = SgdWithMomentum(1e-2, 0.9)
    optimizer.add_regularizer(regularizer)
    data = fixed_batch()
    net = build_net(optimizer, data)
    net.train(5)
    norms = parameter_norm(net, regularizer)
    assert net.regularization_loss() == pytest.approx(norms, rel=1e-12)
    loss = net.forward()
    activation = data.input_tensor
    for layer in net.layers:
        activation = layer.forward(activation)
    data_loss = CrossEntropyLoss().forward(activation, data.label_tensor)
    assert loss == pytest.approx(data_loss + norms, rel=1e-12)


def test_regularization_shrinks_the_weights_in_a_network():
    constraints = reg_l1l2()

    def trained_norm(alpha: float) -> float:
        optimizer = Sgd(1e-2)
        if alpha:
            optimizer.add_regularizer(constraints.L2_Regularizer(alpha))
        net = build_net(optimizer, fixed_batch(), with_batchnorm=False)
        net.train(50)
        return parameter_norm(net, constraints.L2_Regularizer(1.0))

    assert trained_norm(1.0) < 0.8 * trained_norm(0.0)


# -- BatchNormalization and Dropout in a network on Iris ----------------------------------------
def iris_net() -> NeuralNetwork:
    np.random.seed(0)
    net = NeuralNetwork(Adam(5e-3, 0.9, 0.999), He(), Constant(0.1))
    net.data_layer = iris_data(50)
    net.loss_layer = CrossEntropyLoss()
    for layer in (batchnorm_layer(4), FullyConnected(4, 16), ReLU(), dropout_layer(0.8),
                  FullyConnected(16, 3), SoftMax()):
        net.append_layer(layer)
    return net


def test_batchnorm_and_dropout_network_on_iris():
    net = iris_net()
    net.train(300)
    test_input, test_label = net.data_layer.get_test_set()
    first = net.test(test_input)
    second = net.test(test_input)
    np.testing.assert_array_equal(first, second)  # testing phase: no dropout, fixed statistics
    assert net.phase is Phase.test and all(layer.testing_phase for layer in net.layers)
    accuracy = calculate_accuracy(first, test_label)
    assert accuracy > 0.8, f"Iris test accuracy {accuracy:.3f}"
    net.train(1)
    assert net.phase is Phase.train and not any(layer.testing_phase for layer in net.layers)


def test_training_phase_is_random_and_testing_phase_is_not():
    net = iris_net()
    net.train(5)
    test_input, _ = net.data_layer.get_test_set()
    net.phase = Phase.train
    batch_statistics = [net._propagate(test_input) for _ in range(2)]
    assert not np.array_equal(*batch_statistics)  # fresh dropout masks
    net.phase = Phase.test
    np.testing.assert_array_equal(net._propagate(test_input), net._propagate(test_input))


def test_batchnorm_network_saves_and_loads_with_its_moving_averages(tmp_path):
    from corenet.network import load, save

    net = iris_net()
    net.train(20)
    test_input, _ = net.data_layer.get_test_set()
    expected = net.test(test_input)
    save(tmp_path / "net.pkl", net)  # the restricted loader must admit the plugins' classes
    clone = load(tmp_path / "net.pkl", net.data_layer)
    np.testing.assert_array_equal(clone.test(test_input), expected)
    np.testing.assert_array_equal(clone.layers[0].moving_mean, net.layers[0].moving_mean)
    clone.train(2)  # and keeps training: optimizer copies and dropout survive the round trip
    assert len(clone.loss) == len(net.loss) + 2


def test_batchnorm_with_float32_network_stays_float32():
    from corenet.dtype import get_default_dtype, set_default_dtype

    previous = get_default_dtype()
    set_default_dtype(np.float32)
    try:
        net = NeuralNetwork(Adam(1e-3, 0.9, 0.999), UniformRandom(), Constant(0.1))
        layers = [batchnorm_layer(4), FullyConnected(4, 3), dropout_layer(0.5), SoftMax()]
        for layer in layers:
            net.append_layer(layer)
        data = fixed_batch()
        data.input_tensor = data.input_tensor.astype(np.float32)
        net.data_layer, net.loss_layer = data, CrossEntropyLoss()
        net.train(2)
        assert layers[0].weights.dtype == np.float32 and layers[0].bias.dtype == np.float32
        assert net.test(data.input_tensor).dtype == np.float32
    finally:
        set_default_dtype(previous)


# -- plugin selection ---------------------------------------------------------------------------
def registered_layers(load: str) -> list[str]:
    env = {**os.environ, "CORENET_LOAD_PLUGINS": load}
    result = subprocess.run(
        [sys.executable, "-c",
         "import corenet, json; print(json.dumps(sorted(corenet.get_registry().layers)))"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_only_core_plus_dropout_shows_dropout_and_not_batchnorm():
    pytest.importorskip("corenet_dropout")
    layers = registered_layers("dropout")
    assert "Dropout" in layers
    assert "BatchNormalization" not in layers
    assert "FullyConnected" in layers  # the core is always there


def test_core_alone_shows_neither_plugin_layer():
    layers = registered_layers("")
    assert "Dropout" not in layers and "BatchNormalization" not in layers
    assert "FullyConnected" in layers


def test_both_layer_plugins_when_selected():
    pytest.importorskip("corenet_dropout")
    pytest.importorskip("corenet_batchnorm")
    layers = registered_layers("dropout,batchnorm")
    assert {"Dropout", "BatchNormalization"} <= set(layers)
