"""TestLeNet: LeNet's architecture, optimizer, forward shapes, learning, and the save/load round trip.

Tests ``impl("LeNet")`` (the ``build()`` function) with ``impl("save")`` and
``impl("load")`` (the NeuralNetwork module's functions). Contract: what the exercise
asks (SoftMax and ReLU, Adam 5e-4 with L2 4e-4, a working network, save/load with
pickle leaving the data layer out). Reference: API.md's exact architecture and training
beside corenet's LeNet from the same weights, training continuing after load.
Corenet: corenet's own classes and helpers.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from corenet.checking.doubles import FixedBatch, one_hot
from corenet.checking.expect import expect, expect_close, expect_equal, expect_shape, fail

pytestmark = pytest.mark.contract
ARCHITECTURE = ["Conv", "ReLU", "Pooling", "Conv", "ReLU", "Pooling", "Flatten",
                "FullyConnected", "ReLU", "FullyConnected", "ReLU", "FullyConnected", "SoftMax"]


class GeneratorData:
    """A data layer holding a generator, as the course's are: pickle cannot save it."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.batches = iter(lambda: (images.copy(), labels.copy()), None)

    def next(self):
        return next(self.batches)


def batch(size: int = 8, seed: int = 1):
    rng = np.random.RandomState(seed)
    return rng.uniform(0.0, 1.0, (size, 1, 28, 28)), one_hot(rng.randint(0, 10, size), 10)


@pytest.fixture
def build(impl):
    return impl("LeNet")


@pytest.fixture
def net(build):
    np.random.seed(0)
    return build()


def kinds(net) -> list[str]:
    return [type(layer).__name__ for layer in net.layers]


def regularizer_of(optimizer):
    """The regularizer an optimizer stores (``regularizer``, or whatever member has calculate_gradient and norm)."""
    found = getattr(optimizer, "regularizer", None)
    if found is None:
        found = next((value for value in vars(optimizer).values()
                      if hasattr(value, "calculate_gradient") and hasattr(value, "norm")), None)
    return found


def save_and_load(save, load, net, path, data_layer):
    """save(path, net) then load(path, data_layer), failing with a named reason."""
    try:
        save(str(path), net)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        fail(f"save(filename, net) failed with {type(exc).__name__}: {exc}; the data layer (it holds a generator) "
             f"must be left out: NeuralNetwork.__getstate__ drops data_layer")
    return load(str(path), data_layer)


class TestLeNet:
    # == contract ====================================================================================
    def test_builds_a_network_of_conv_relu_and_softmax(self, net):
        names = kinds(net)
        expect(names and names[-1] == "SoftMax", f"build() network's last layer is {names[-1:]}, expected SoftMax")
        expect("ReLU" in names, f"build() network has no ReLU layer: {names}")
        expect(names.count("Conv") >= 2 and "FullyConnected" in names,
               f"build() network should have two Conv stages and fully connected layers, got {names}")
        expect_equal(type(getattr(net, "loss_layer", None)).__name__, "CrossEntropyLoss", "build().loss_layer's class")

    def test_forward_maps_images_to_class_probabilities(self, net):
        tensor, _ = batch(3)
        for layer in net.layers:
            tensor = layer.forward(tensor)
        expect_shape(tensor, (3, 10), "output of build()'s layers for a (3, 1, 28, 28) batch")
        expect_close(np.sum(tensor, axis=1), np.ones(3), "row sums of the output", "the SoftMax output sums to 1",
                     rtol=1e-9, atol=1e-12)

    def test_adam_with_learning_rate_5e_4_and_l2_4e_4(self, net):
        optimizer = getattr(net, "optimizer", None)
        expect_equal(type(optimizer).__name__, "Adam", "build().optimizer's class")
        regularizer = regularizer_of(optimizer)
        expect(regularizer is not None, "build()'s Adam has no regularizer: add_regularizer(L2_Regularizer(4e-4))")
        expect_equal(type(regularizer).__name__, "L2_Regularizer", "the optimizer's regularizer class")
        expect_close(regularizer.calculate_gradient(np.ones(3)), np.full(3, 4e-4),
                     "the L2 regularizer's gradient of ones (its alpha)", rtol=1e-9, atol=0)
        probe = copy.deepcopy(optimizer)  # Adam's first step moves every weight by learning_rate (g / |g|)
        expect_close(probe.calculate_update(np.zeros(3), np.ones(3)), np.full(3, -5e-4),
                     "the first Adam step from zero weights with gradient ones (minus its learning rate)", rtol=1e-6,
                     atol=0)

    def test_training_decreases_the_loss(self, net):
        images, labels = batch(16)
        net.data_layer = FixedBatch(images, labels)
        net.train(1)
        first = net.loss[0]
        net.train(9)
        expect(net.loss[-1] < 0.9 * first, f"10 training steps on one batch took the loss from {first:.4g} to "
               f"{net.loss[-1]:.4g}, expected below {0.9 * first:.4g}")

    def test_save_and_load_round_trip(self, net, impl, tmp_path):
        save, load = impl("save"), impl("load")
        images, labels = batch()
        net.data_layer = GeneratorData(images, labels)
        net.train(2)
        before = np.array(net.test(images))
        data_layer = FixedBatch(images, labels)
        loaded = save_and_load(save, load, net, tmp_path / "lenet.pkl", data_layer)
        expect(getattr(loaded, "data_layer", None) is data_layer,
               "load(filename, data_layer) must set the given data layer on the loaded network")
        expect_close(loaded.test(images), before, "predictions of the loaded network", rtol=1e-12, atol=1e-14)
        loaded.train(1)  # the loaded network trains with its own optimizer and the new data layer
        expect(data_layer.calls >= 1, "the loaded network did not draw its batch from the given data layer")

    # == reference ===================================================================================
    @pytest.mark.reference
    def test_architecture_is_api_md_lenet(self, net):
        expect_equal(kinds(net), ARCHITECTURE, "build()'s layer classes")
        tensor, _ = batch(3)
        shapes = []
        for layer in net.layers:
            tensor = layer.forward(tensor)
            shapes.append(tuple(np.shape(tensor)))
        expect_equal(shapes, [(3, 6, 28, 28), (3, 6, 28, 28), (3, 6, 14, 14), (3, 16, 14, 14), (3, 16, 14, 14),
                              (3, 16, 7, 7), (3, 784), (3, 120), (3, 120), (3, 84), (3, 84), (3, 10), (3, 10)],
                     "the output shape of every layer", "'same' padding: 28 -> 14 -> 7 only in the poolings")

    @pytest.mark.reference
    def test_training_agrees_with_the_reference_lenet(self, net, impl):
        np.random.seed(1)
        twin = impl.reference("LeNet")()
        for index, (ours, theirs) in enumerate(zip(net.layers, twin.layers)):
            for name in ("weights", "bias"):
                if hasattr(theirs, name) and getattr(theirs, "trainable", False):
                    value = np.asarray(getattr(ours, name), dtype=np.float64)
                    what = f"layer {index} ({type(ours).__name__}) {name}"
                    expect_shape(value, np.shape(getattr(theirs, name)), what)
                    setattr(theirs, name, value.copy())
        images, labels = batch(8)
        net.data_layer, twin.data_layer = FixedBatch(images, labels), FixedBatch(images, labels)
        expect_close(net.test(images), twin.test(images), "predictions before training (same weights)", rtol=1e-9,
                     atol=1e-12)
        net.train(3)
        twin.train(3)
        expect_close(net.loss, twin.loss, "the loss (data + regularization) of 3 training steps", rtol=1e-7, atol=0)
        expect_close(net.test(images), twin.test(images), "predictions after 3 training steps", rtol=1e-6, atol=1e-9)

    @pytest.mark.reference
    def test_training_continues_identically_after_load(self, net, impl, tmp_path):
        images, labels = batch()
        net.data_layer = GeneratorData(images, labels)
        net.train(2)
        loaded = save_and_load(impl("save"), impl("load"), net, tmp_path / "lenet.pkl", FixedBatch(images, labels))
        net.data_layer = FixedBatch(images, labels)
        net.train(2)
        loaded.train(2)
        expect_close(loaded.loss, net.loss, "the loss of 2 more training steps after save/load",
                     "save keeps the optimizer with its Adam moments and step count, and the initializers",
                     rtol=1e-12, atol=0)

    # == corenet extras ==============================================================================
    @pytest.mark.corenet
    def test_corenet_classes_and_parameter_optimizers(self, net):
        from corenet_reg_l1l2.constraints import L2_Regularizer

        from corenet.optimizers import Adam

        assert (net.optimizer.learning_rate, net.optimizer.mu, net.optimizer.rho) == (5e-4, 0.9, 0.999)
        copies = []
        for layer in net.layers:
            if not layer.trainable:
                continue
            for name in layer.parameter_names:
                optimizer = layer.parameter_optimizer(name)
                assert isinstance(optimizer, Adam) and optimizer.learning_rate == 5e-4
                assert isinstance(optimizer.regularizer, L2_Regularizer) and optimizer.regularizer.alpha == 4e-4
                copies.append(optimizer)
        assert len(copies) == 7  # weights+bias of both Conv, weights of three FC
        assert len({id(c) for c in copies}) == 7 and all(c is not net.optimizer for c in copies)

    @pytest.mark.corenet
    def test_regularization_loss_is_l2_of_every_parameter(self, net):
        expected = 0.0
        for layer in net.layers:
            if layer.trainable:
                for name in layer.parameter_names:
                    expected += 4e-4 * float(np.sum(getattr(layer, name) ** 2))
        assert net.regularization_loss() == pytest.approx(expected, rel=1e-12)
        assert expected > 0

    @pytest.mark.corenet
    def test_he_initializers(self, net):
        from corenet.initializers import He

        assert isinstance(net.weights_initializer, He) and isinstance(net.bias_initializer, He)
        fc = net.layers[7]
        assert np.std(fc.weights[:-1]) == pytest.approx(np.sqrt(2 / 784), rel=0.03)
        conv2 = net.layers[3]
        assert np.std(conv2.weights) == pytest.approx(np.sqrt(2 / (6 * 5 * 5)), rel=0.05)
        assert abs(np.mean(fc.weights[:-1])) < 0.005

    @pytest.mark.corenet
    def test_checkpoint_keeps_optimizer_and_initializers(self, net, tmp_path):
        from corenet.initializers import He
        from corenet.network import load, save

        images, labels = batch()
        net.data_layer = FixedBatch(images, labels)
        net.train(2)
        save(tmp_path / "lenet.ckpt", net)
        loaded = load(tmp_path / "lenet.ckpt", FixedBatch(images, labels))
        assert loaded.loss == net.loss
        assert loaded.optimizer.learning_rate == 5e-4 and loaded.optimizer.regularizer.alpha == 4e-4
        assert isinstance(loaded.weights_initializer, He) and isinstance(loaded.bias_initializer, He)
        np.testing.assert_array_equal(loaded.test(images), net.test(images))
