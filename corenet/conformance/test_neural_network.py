"""Conformance group TestNeuralNetwork: building, phases, training, testing, pickling, save/load.

The network under test is ``impl("NeuralNetwork")`` (with ``impl("save")``/``impl("load")``);
the layers, optimizers and initializers in it are corenet's reference components, so a
failure here is the network's.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from corenet.checking.doubles import ArrayInitializer, FixedBatch, known_values, one_hot
from corenet.checking.expect import expect, expect_close, expect_equal
from corenet.data.digits import DigitData
from corenet.data.iris import IrisData
from corenet.errors import CorenetError, ShapeError
from corenet.testing import ReferenceL2, calculate_accuracy

pytestmark = pytest.mark.contract
APPEND_HINT = ("append_layer gives a trainable layer a deep copy of the network's optimizer and initializes it "
               "with the network's weights and bias initializers")


class GeneratorData(FixedBatch):
    """Like FixedBatch but holds a generator, which pickle cannot handle (as in the course)."""

    def __init__(self, input_tensor: np.ndarray, label_tensor: np.ndarray) -> None:
        super().__init__(input_tensor, label_tensor)
        self.generator = (i for i in range(3))


class Reference:
    """corenet's reference components by attribute: ``ref.FullyConnected``."""

    def __init__(self, impl) -> None:
        self._impl = impl

    def __getattr__(self, name: str):
        return self._impl.reference(name)


@pytest.fixture
def NeuralNetwork(impl):
    return impl("NeuralNetwork")


@pytest.fixture
def ref(impl) -> Reference:
    return Reference(impl)


def fixed_batch(batch: int = 6, features: int = 4, classes: int = 3) -> FixedBatch:
    rng = np.random.RandomState(0)
    return FixedBatch(rng.standard_normal((batch, features)), one_hot(rng.randint(0, classes, batch), classes))


def small_net(NeuralNetwork, ref, optimizer=None, data=None, weights_initializer=None,  # noqa: N803
              bias_initializer=None):
    net = NeuralNetwork(optimizer or ref.Sgd(1e-2), weights_initializer or ref.Xavier(),
                        bias_initializer or ref.Constant(0.1))
    net.data_layer = data or fixed_batch()
    net.loss_layer = ref.CrossEntropyLoss()
    for layer in (ref.FullyConnected(4, 5), ref.ReLU(), ref.FullyConnected(5, 3), ref.SoftMax()):
        net.append_layer(layer)
    return net


def iris_net(NeuralNetwork, ref, seed: int):  # noqa: N803
    np.random.seed(seed)
    net = NeuralNetwork(ref.Adam(1e-2, 0.9, 0.999), ref.He(), ref.Constant(0.1))
    net.data_layer = IrisData(33)
    net.loss_layer = ref.CrossEntropyLoss()
    for layer in (ref.FullyConnected(4, 16), ref.ReLU(), ref.FullyConnected(16, 3), ref.SoftMax()):
        net.append_layer(layer)
    return net


def trainable(net) -> list:
    return [layer for layer in net.layers if getattr(layer, "trainable", False)]


class TestNeuralNetwork:
    def setup_method(self) -> None:
        np.random.seed(123)

    # -- contract: building ---------------------------------------------------------------------
    def test_constructor_attributes(self, NeuralNetwork, ref):
        optimizer = ref.Sgd(0.1)
        net = NeuralNetwork(optimizer, ref.Xavier(), ref.Constant(0.2))
        expect(getattr(net, "optimizer", None) is optimizer, "NeuralNetwork(optimizer, ...).optimizer is not the "
               "optimizer it was given")
        for name in ("layers", "loss"):
            expect_equal(getattr(net, name, None), [], f"a new network's {name}", "start with an empty list")
        for name in ("data_layer", "loss_layer"):
            expect(hasattr(net, name), f"NeuralNetwork has no attribute {name!r}")

    def test_append_layer_deep_copies_optimizer(self, NeuralNetwork, ref):
        net = NeuralNetwork(ref.Adam(1e-3, 0.9, 0.999), ref.Xavier(), ref.Constant(0.1))
        first, relu, second = ref.FullyConnected(4, 5), ref.ReLU(), ref.FullyConnected(5, 3)
        for layer in (first, relu, second):
            net.append_layer(layer)
        expect(net.layers == [first, relu, second], "net.layers does not hold the appended layers in order")
        for layer in (first, second):
            expect(layer.optimizer is not None, "a trainable layer has no optimizer after append_layer", APPEND_HINT)
            expect(layer.optimizer is not net.optimizer, "a layer got the network's optimizer itself", APPEND_HINT)
            expect_equal(layer.optimizer.learning_rate, 1e-3, "the layer's optimizer's learning rate")
        expect(first.optimizer is not second.optimizer, "two layers share one optimizer object", APPEND_HINT)

    def test_append_layer_copies_carry_the_regularizer(self, NeuralNetwork, ref):
        optimizer = ref.Sgd(0.1)
        optimizer.add_regularizer(ReferenceL2(0.5))
        net = NeuralNetwork(optimizer, ref.Xavier(), ref.Constant(0.1))
        layer = ref.FullyConnected(2, 2)
        net.append_layer(layer)
        expect(isinstance(layer.optimizer.regularizer, ReferenceL2), "the layer's optimizer copy lost the "
               "regularizer", APPEND_HINT)
        expect_equal(layer.optimizer.regularizer.alpha, 0.5, "the copied regularizer's alpha")

    def test_append_layer_initializes_trainable_layers(self, NeuralNetwork, ref):
        net = NeuralNetwork(ref.Sgd(0.1), ArrayInitializer(1), ArrayInitializer(2))
        layer = ref.FullyConnected(3, 4)
        net.append_layer(layer)
        expect_close(layer.weights[:-1], known_values((3, 4), 1), "weights of an appended FullyConnected",
                     APPEND_HINT)
        expect_close(layer.weights[-1], known_values((1, 4), 2)[0], "bias row of an appended FullyConnected",
                     APPEND_HINT)

    # -- contract: phase ------------------------------------------------------------------------
    def test_train_and_test_set_the_phase_of_every_layer(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref)
        net.test(np.zeros((2, 4)))
        expect(all(layer.testing_phase for layer in net.layers), "after test(), a layer's testing_phase is False",
               "test() switches every layer to the testing phase")
        net.train(1)
        expect(not any(layer.testing_phase for layer in net.layers), "after train(), a layer's testing_phase is "
               "True", "train() switches every layer back to the training phase")

    def test_phase_property(self, NeuralNetwork, ref):
        expect(isinstance(getattr(NeuralNetwork, "phase", None), property), "NeuralNetwork has no property phase",
               "the exercise asks for a property phase that sets the phase of every layer")
        net = small_net(NeuralNetwork, ref)
        net.test(np.zeros((2, 4)))
        testing = net.phase
        net.train(1)
        training = net.phase
        net.phase = testing
        expect(all(layer.testing_phase for layer in net.layers), "setting net.phase to the testing phase left a "
               "layer's testing_phase False")
        net.phase = training
        expect(not any(layer.testing_phase for layer in net.layers), "setting net.phase to the training phase "
               "left a layer's testing_phase True")

    # -- contract: running ----------------------------------------------------------------------
    def test_forward_returns_the_data_loss(self, NeuralNetwork, ref):
        data = fixed_batch()
        net = small_net(NeuralNetwork, ref, data=data)
        loss = net.forward()
        activation = data.input_tensor
        for layer in net.layers:
            activation = layer.forward(activation)
        expect_close(loss, ref.CrossEntropyLoss().forward(activation, data.label_tensor), "net.forward()",
                     "forward draws a batch from data_layer.next(), runs every layer and returns the loss layer's "
                     "value", rtol=1e-12)

    def test_forward_adds_the_regularization_loss(self, NeuralNetwork, ref):
        optimizer = ref.Sgd(1e-2)
        optimizer.add_regularizer(ReferenceL2(0.25))
        data = fixed_batch()
        net, plain = small_net(NeuralNetwork, ref, optimizer, data), small_net(NeuralNetwork, ref, ref.Sgd(1e-2), data)
        for source, target in zip(trainable(net), trainable(plain)):
            target.weights = np.array(source.weights)
        penalty = 0.25 * sum(np.sum(np.asarray(layer.weights) ** 2) for layer in trainable(net))
        expect_close(net.forward() - plain.forward(), penalty, "forward()'s loss minus the loss without "
                     "regularizer", "add each trainable layer's regularizer.norm(weights) to the data loss",
                     rtol=1e-10)

    def test_backward_propagates_and_updates(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref, ref.Sgd(0.5))
        before = [np.array(layer.weights) for layer in trainable(net)]
        net.forward()
        net.backward()
        for index, (layer, old) in enumerate(zip(trainable(net), before)):
            expect(layer.gradient_weights is not None, f"trainable layer {index} has no gradient after backward()",
                   "backward starts at loss_layer.backward(label) and runs every layer's backward in reverse")
            expect_close(layer.weights, old - 0.5 * layer.gradient_weights, f"trainable layer {index}'s weights "
                         "after backward() with Sgd(0.5)", rtol=1e-12)

    def test_train_records_one_loss_per_iteration_and_learns(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref, ref.Adam(5e-2, 0.9, 0.999))
        net.train(40)
        expect_equal(len(net.loss), 40, "len(net.loss) after train(40)", "append one loss per iteration")
        expect(all(np.ndim(value) == 0 for value in net.loss), "net.loss holds something other than numbers")
        expect_equal(net.data_layer.calls, 40, "data_layer.next() calls during train(40)")
        expect(net.loss[-1] < 0.2 * net.loss[0], f"40 Adam iterations took the loss only from {net.loss[0]:.4g} "
               f"to {net.loss[-1]:.4g}")
        net.train(5)
        expect_equal(len(net.loss), 45, "len(net.loss) after train(40) and train(5)", "keep earlier losses")

    def test_train_zero_iterations(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref)
        net.train(0)
        expect_equal(net.loss, [], "net.loss after train(0)")

    def test_test_predicts_without_loss_or_update(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref)
        before = [np.array(layer.weights) for layer in trainable(net)]
        prediction = net.test(np.random.standard_normal((7, 4)))
        expect_close(np.sum(prediction, axis=1), np.ones(7), "row sums of test()'s prediction",
                     "test(input) runs every layer (ending in the SoftMax) and returns the last output")
        expect_equal(net.loss, [], "net.loss after test()", "test() computes no loss")
        for layer, old in zip(trainable(net), before):
            expect_close(layer.weights, old, "weights after test()", "test() makes no update", rtol=0, atol=0)

    def test_training_is_deterministic_when_seeded(self, NeuralNetwork, ref):
        runs = []
        for seed in (4, 4, 5):
            net = iris_net(NeuralNetwork, ref, seed)
            net.train(20)
            runs.append(list(net.loss))
        expect_close(runs[1], runs[0], "losses of two runs with the same seed",
                     "draw every random number from np.random so np.random.seed repeats a run", rtol=0, atol=0)
        expect(runs[2] != runs[0], "runs with different seeds gave identical losses")

    def test_l2_regularization_shrinks_the_weights(self, NeuralNetwork, ref):
        def weight_norm(alpha: float) -> float:
            np.random.seed(3)
            optimizer = ref.SgdWithMomentum(1e-2, 0.9)
            if alpha:
                optimizer.add_regularizer(ReferenceL2(alpha))
            net = small_net(NeuralNetwork, ref, optimizer, weights_initializer=ref.UniformRandom())
            net.train(60)
            return sum(float(np.sum(np.asarray(layer.weights) ** 2)) for layer in trainable(net))

        plain, regularized = weight_norm(0.0), weight_norm(1.0)
        expect(regularized < 0.75 * plain, f"L2(1.0) left the squared weights at {regularized:.4g} "
               f"(without: {plain:.4g})", "the layers' optimizer copies must keep the regularizer")

    def test_iris_fully_connected_over_90_percent(self, NeuralNetwork, ref):
        net = iris_net(NeuralNetwork, ref, 0)
        net.train(300)
        test_input, test_label = net.data_layer.get_test_set()
        accuracy = calculate_accuracy(net.test(test_input), test_label)
        expect(accuracy > 0.9, f"Iris test accuracy {accuracy:.1%} after 300 Adam iterations, expected > 90%")
        expect(np.mean(net.loss[-10:]) < 0.25 * np.mean(net.loss[:10]), "the Iris training loss hardly fell")

    def test_digits_convolutional_over_85_percent(self, NeuralNetwork, ref):
        np.random.seed(0)
        net = NeuralNetwork(ref.Adam(5e-3, 0.9, 0.999), ref.He(), ref.Constant(0.1))
        net.data_layer = DigitData(50)
        net.loss_layer = ref.CrossEntropyLoss()
        for layer in (ref.Conv((1, 1), (1, 3, 3), 4), ref.ReLU(), ref.Flatten(), ref.FullyConnected(4 * 8 * 8, 10),
                      ref.SoftMax()):
            net.append_layer(layer)
        net.train(150)
        test_input, test_label = net.data_layer.get_test_set()
        accuracy = calculate_accuracy(net.test(test_input), test_label)
        expect(accuracy > 0.85, f"digits test accuracy {accuracy:.1%} with a small Conv network, expected > 85%")

    # -- contract: pickling, save and load --------------------------------------------------------
    def test_getstate_drops_the_data_layer(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref)
        net.train(2)
        state = net.__getstate__()
        expect(state.get("data_layer", None) is None, "__getstate__() keeps the data layer",
               "set data_layer to None in the returned state (a generator cannot be pickled)")
        expect(net.data_layer is not None, "__getstate__() removed the data layer from the network itself",
               "change a copy of __dict__")

    def test_setstate_restores_the_data_layer_as_none(self, NeuralNetwork, ref):
        net = NeuralNetwork.__new__(NeuralNetwork)
        state = small_net(NeuralNetwork, ref).__dict__.copy()
        state["data_layer"] = fixed_batch()
        net.__setstate__(state)
        expect(net.data_layer is None, "__setstate__(state) did not set data_layer to None")
        expect_equal(len(net.layers), 4, "number of layers after __setstate__")

    def test_pickle_round_trip(self, NeuralNetwork, ref):
        data = GeneratorData(fixed_batch().input_tensor, fixed_batch().label_tensor)
        net = small_net(NeuralNetwork, ref, ref.Adam(1e-2, 0.9, 0.999), data)
        net.train(5)
        restored = pickle.loads(pickle.dumps(net))  # would fail if the generator were pickled
        expect(restored.data_layer is None, "a pickled and restored network kept a data layer")
        expect(net.data_layer is data, "pickling the network removed its data layer")
        expect_equal(restored.loss, net.loss, "the restored network's loss list")
        x = np.random.standard_normal((5, 4))
        expect_close(restored.test(x), net.test(x), "predictions of the restored network", rtol=0, atol=0)
        restored.data_layer = FixedBatch(data.input_tensor, data.label_tensor)
        restored.train(3)
        net.train(3)
        expect_close(restored.loss, net.loss, "losses after training the original and the restored network 3 "
                     "more iterations", "keep the optimizers' state (Adam's moments) in the pickle", rtol=1e-12)

    def test_save_and_load(self, NeuralNetwork, impl, ref, tmp_path):
        save, load = impl("save"), impl("load")
        if impl.is_foreign("save") != impl.is_foreign("NeuralNetwork"):
            pytest.skip("save/load are checked together with the NeuralNetwork they come with")
        net = small_net(NeuralNetwork, ref, ref.Adam(1e-2, 0.9, 0.999))
        net.train(3)
        path = tmp_path / "network.pkl"
        save(str(path), net)
        expect(path.is_file(), "save(filename, net) wrote no file")
        data = fixed_batch()
        restored = load(str(path), data)
        expect(restored.data_layer is data, "load(filename, data_layer) did not set the given data layer")
        x = np.random.standard_normal((5, 4))
        expect_close(restored.test(x), net.test(x), "predictions of the loaded network", rtol=0, atol=0)
        restored.train(2)
        net.train(2)
        expect_close(restored.loss[-2:], net.loss[-2:], "losses of 2 more iterations, loaded vs original network",
                     "save the optimizers with their state", rtol=1e-12)

    # -- reference ------------------------------------------------------------------------------
    @pytest.mark.reference
    @pytest.mark.parametrize("regularized", [False, True])
    def test_trains_like_the_reference(self, NeuralNetwork, impl, ref, regularized):
        x = np.random.standard_normal((5, 4))
        runs = []
        for cls in (NeuralNetwork, impl.reference("NeuralNetwork")):
            optimizer = ref.Adam(1e-2, 0.9, 0.999)
            if regularized:
                optimizer.add_regularizer(ReferenceL2(0.05))
            net = small_net(cls, ref, optimizer, weights_initializer=ArrayInitializer(1),
                            bias_initializer=ArrayInitializer(2))
            net.train(8)
            runs.append((list(net.loss), net.test(x)))
        what = "with L2(0.05)" if regularized else "without regularizer"
        expect_close(runs[0][0], runs[1][0], f"losses of 8 Adam iterations {what} vs corenet's reference network",
                     rtol=1e-9)
        expect_close(runs[0][1], runs[1][1], f"predictions after training {what} vs corenet's reference network",
                     rtol=1e-9)

    @pytest.mark.reference
    def test_trains_like_torch(self, NeuralNetwork, ref):
        torch = pytest.importorskip("torch")
        data = fixed_batch()
        net = small_net(NeuralNetwork, ref, ref.Adam(1e-2, 0.9, 0.999), data, ArrayInitializer(1),
                        ArrayInitializer(2))
        net.train(8)
        model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
        with torch.no_grad():
            for linear, (fan_in, fan_out) in ((model[0], (4, 5)), (model[2], (5, 3))):
                linear.weight.copy_(torch.from_numpy(known_values((fan_in, fan_out), 1).T.copy()))
                linear.bias.copy_(torch.from_numpy(known_values((1, fan_out), 2)[0]))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
        inputs = torch.from_numpy(data.input_tensor)
        targets = torch.from_numpy(np.argmax(data.label_tensor, axis=1))
        losses = []
        for _ in range(8):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs), targets, reduction="sum")
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        expect_close(net.loss, losses, "losses of 8 Adam iterations vs the same network in PyTorch", rtol=1e-7)

    # -- corenet --------------------------------------------------------------------------------
    @pytest.mark.corenet
    def test_initializers_and_empty_slots(self, NeuralNetwork, ref):
        w_init, b_init = ref.Xavier(), ref.Constant(0.2)
        net = NeuralNetwork(ref.Sgd(0.1), w_init, b_init)
        assert net.weights_initializer is w_init and net.bias_initializer is b_init
        assert net.data_layer is None and net.loss_layer is None

    @pytest.mark.corenet
    def test_append_layer_refuses_non_layers(self, NeuralNetwork, ref):
        net = NeuralNetwork(ref.Sgd(0.1), ref.Xavier(), ref.Constant(0.1))
        with pytest.raises(TypeError, match="forward"):
            net.append_layer("FullyConnected")

    @pytest.mark.corenet
    def test_every_tensor_gets_its_own_optimizer_state(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref, ref.Adam(1e-2, 0.9, 0.999))
        net.train(3)
        assert net.optimizer.iteration == 0  # the network's own optimizer is only a template
        for layer in (net.layers[0], net.layers[2]):
            assert layer.parameter_optimizer("weights").iteration == 3
        first = net.layers[0].parameter_optimizer("weights")
        second = net.layers[2].parameter_optimizer("weights")
        assert first is not second and first.first_moment.shape != second.first_moment.shape

    @pytest.mark.corenet
    def test_phase_values(self, NeuralNetwork, ref):
        from corenet.base import Phase

        net = small_net(NeuralNetwork, ref)
        assert net.phase is Phase.train
        net.phase = Phase.test
        assert net.phase is Phase.test and all(layer.testing_phase for layer in net.layers)
        net.phase = "train"
        assert net.phase is Phase.train and not any(layer.testing_phase for layer in net.layers)
        net.phase = True
        assert net.phase is Phase.test
        with pytest.raises(ValueError, match="phase"):
            net.phase = "validation"

    @pytest.mark.corenet
    def test_regularization_loss_method_and_float_losses(self, NeuralNetwork, ref):
        optimizer = ref.Sgd(1e-2)
        optimizer.add_regularizer(ReferenceL2(0.25))
        net = small_net(NeuralNetwork, ref, optimizer)
        penalty = 0.25 * sum(np.sum(layer.weights**2) for layer in trainable(net))
        assert net.regularization_loss() == pytest.approx(penalty, rel=1e-12)
        net.train(2)
        assert all(isinstance(value, float) for value in net.loss)

    @pytest.mark.corenet
    def test_train_calls_the_callback(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref)
        seen = []
        net.train(4, callback=lambda iteration, loss: seen.append((iteration, loss)))
        assert [iteration for iteration, _ in seen] == [0, 1, 2, 3]
        assert [loss for _, loss in seen] == net.loss

    @pytest.mark.corenet
    @pytest.mark.parametrize("iterations", [-1, 2.5, True, "3"])
    def test_train_refuses_bad_iteration_counts(self, NeuralNetwork, ref, iterations):
        with pytest.raises(ValueError, match="iterations"):
            small_net(NeuralNetwork, ref).train(iterations)

    @pytest.mark.corenet
    def test_getstate_shares_the_layers(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref)
        assert net.__getstate__()["layers"] is net.layers

    @pytest.mark.corenet
    def test_pickle_keeps_optimizer_iterations(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref, ref.Adam(1e-2, 0.9, 0.999))
        net.train(5)
        restored = pickle.loads(pickle.dumps(net))
        assert restored.layers[0].parameter_optimizer("weights").iteration == 5

    @pytest.mark.corenet
    def test_wrong_feature_count_names_the_layer_and_both_sizes(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref)
        with pytest.raises(ShapeError) as info:
            net.test(np.zeros((2, 6)))
        message = str(info.value)
        assert "layer 0" in message and "FullyConnected(4, 5)" in message
        assert "expects 4" in message and "got 6" in message

    @pytest.mark.corenet
    def test_wrong_feature_count_from_the_data_layer(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref, data=fixed_batch(features=7))
        with pytest.raises(ShapeError, match=r"FullyConnected\(4, 5\) expects 4 input features but got 7"):
            net.train(1)

    @pytest.mark.corenet
    def test_backward_before_forward(self, NeuralNetwork, ref):
        with pytest.raises(CorenetError, match="backward called before forward"):
            small_net(NeuralNetwork, ref).backward()

    @pytest.mark.corenet
    def test_forward_needs_data_and_loss_layers(self, NeuralNetwork, ref):
        net = small_net(NeuralNetwork, ref)
        net.data_layer = None
        with pytest.raises(CorenetError, match="data_layer"):
            net.forward()
        net = small_net(NeuralNetwork, ref)
        net.loss_layer = None
        with pytest.raises(CorenetError, match="loss_layer"):
            net.train(1)

    @pytest.mark.corenet
    def test_non_finite_loss_names_the_first_failing_layer(self, NeuralNetwork, ref):
        data = fixed_batch()
        data.input_tensor = np.full((6, 4), 1e308)
        net = small_net(NeuralNetwork, ref, data=data, weights_initializer=ref.UniformRandom(),
                        bias_initializer=ref.Constant(0.0))
        with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            FloatingPointError, match=r"first non-finite output from layer 0 \(FullyConnected\)"
        ):
            net.train(1)
        assert net.loss == []
