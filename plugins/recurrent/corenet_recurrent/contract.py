"""The tests every recurrent layer (RNN, LSTM) must pass.

The conformance files subclass :class:`RecurrentContract` (``class TestRNN(RecurrentContract)``
with ``layer_class = RNN``); pytest collects the inherited test methods. The
name does not start with ``Test``, so this base is never collected on its own.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from corenet.errors import ShapeError
from corenet.initializers import Constant, Xavier
from corenet.optimizers import Adam, Sgd, SgdWithMomentum
from corenet.testing import L2Loss, gradient_check, gradient_check_weights
from corenet_recurrent.testing import (
    FixedState,
    RecordingInitializer,
    TorchMirror,
    array_bytes,
    reference_forward,
)

GRADIENT_TOLERANCE = 1e-5
TORCH_TOLERANCE = 1e-8


class _Stream:
    """A data layer that always yields the same (input, label) pair."""

    def __init__(self, x: np.ndarray, labels: np.ndarray) -> None:
        self.x, self.labels = x, labels

    def next(self):
        return self.x, self.labels


def _regularizer(kind: str):
    """The registered regularizer class ``kind`` (plugin reg_l1l2), or skip the test without it."""
    from corenet.plugins import get_registry

    regularizers = get_registry().regularizers
    if kind not in regularizers:
        pytest.skip(f"{kind} is not installed (plugin corenet-reg-l1l2)")
    return regularizers[kind]


class RecurrentContract:
    """Shared behaviour of RNN and LSTM: shapes, state, gradients, optimizers, errors, memory, PyTorch."""

    layer_class: type
    input_size, hidden_size, output_size = 3, 4, 2
    time = 6

    # -- helpers -------------------------------------------------------------
    def make(self, seed: int = 0):
        np.random.seed(seed)
        return self.layer_class(self.input_size, self.hidden_size, self.output_size)

    def sequence(self, seed: int = 1, time: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        steps = time or self.time
        return rng.normal(size=(steps, self.input_size)), rng.uniform(size=(steps, self.output_size))

    @property
    def gates(self) -> int:
        return self.layer_class.gates

    # -- construction ----------------------------------------------------------
    def test_shapes_and_defaults(self):
        layer = self.make()
        n = self.input_size + self.hidden_size + 1
        assert layer.weights.shape == (n, self.gates * self.hidden_size)
        assert layer.output_weights.shape == (self.hidden_size + 1, self.output_size)
        assert layer.gradient_weights.shape == layer.weights.shape
        assert layer.gradient_output_weights.shape == layer.output_weights.shape
        assert layer.trainable is True and layer.testing_phase is False
        assert layer.memorize is False and layer.optimizer is None
        assert layer.weights.dtype == np.float64

    @pytest.mark.parametrize("argument", [0, 1, 2])
    @pytest.mark.parametrize("value", [0, -3, 2.5, True, "4"])
    def test_rejects_bad_sizes(self, argument, value):
        sizes = [self.input_size, self.hidden_size, self.output_size]
        sizes[argument] = value
        name = ("input_size", "hidden_size", "output_size")[argument]
        message = rf"{self.layer_class.__name__}: {name} must be a positive integer"
        with pytest.raises(ValueError, match=message):
            self.layer_class(*sizes)

    def test_hidden_size_zero_refused(self):
        with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
            self.layer_class(self.input_size, 0, self.output_size)

    # -- forward -------------------------------------------------------------------
    def test_output_shape_and_range(self):
        layer = self.make()
        x, _ = self.sequence()
        y = layer.forward(x * 10)
        assert y.shape == (self.time, self.output_size)
        assert np.all((y >= 0) & (y <= 1))

    def test_matches_step_by_step_reference(self):
        layer = self.make()
        x, _ = self.sequence()
        expected, final = reference_forward(layer, x)
        np.testing.assert_allclose(layer.forward(x), expected, rtol=0, atol=1e-12)
        for ours, theirs in zip(layer.state, final):
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)

    def test_float32_in_float32_out(self):
        layer = self.make()
        x, labels = self.sequence()
        y = layer.forward(x.astype(np.float32))
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, reference_forward(layer, x)[0], atol=1e-5)
        assert layer.backward((y - labels).astype(np.float32)).dtype == np.float32
        assert layer.gradient_weights.dtype == np.float32

    def test_integer_input_computed_as_float(self):
        layer = self.make()
        x = np.arange(self.time * self.input_size).reshape(self.time, self.input_size) % 3 - 1
        y = layer.forward(x)
        assert y.dtype == np.float64
        np.testing.assert_allclose(y, reference_forward(layer, x.astype(float))[0], atol=1e-12)

    def test_forward_uses_assigned_weights(self):
        layer = self.make()
        x, _ = self.sequence()
        before = layer.forward(x)
        layer.weights = np.ones(layer.weights_shape, dtype=int)  # integer arrays work too
        shape = layer.output_weights_shape
        layer.output_weights = np.arange(shape[0] * shape[1]).reshape(shape) % 2
        after = layer.forward(x)
        assert not np.allclose(before, after)
        np.testing.assert_allclose(after, reference_forward(layer, x)[0], atol=1e-12)

    def test_memorize_off_restarts_from_zero(self):
        layer = self.make()
        x, _ = self.sequence()
        first = layer.forward(x)
        np.testing.assert_array_equal(layer.forward(x), first)

    def test_memorize_on_continues_the_sequence(self):
        layer = self.make()
        x, _ = self.sequence(time=10)
        whole = layer.forward(x)
        layer.memorize = True
        layer.reset_state()
        halves = np.vstack([layer.forward(x[:4]), layer.forward(x[4:])])
        np.testing.assert_allclose(halves, whole, rtol=0, atol=1e-12)
        assert len(layer.state) == layer.state_parts
        # without memorize the second half starts from zeros and differs
        layer.memorize = False
        assert not np.allclose(layer.forward(x[4:]), whole[4:])

    def test_reset_state_forgets(self):
        layer = self.make()
        x, _ = self.sequence()
        layer.memorize = True
        fresh = layer.forward(x)
        assert not np.allclose(layer.forward(x), fresh)
        layer.reset_state()
        assert layer.state is None
        np.testing.assert_array_equal(layer.forward(x), fresh)

    def test_state_assignment_is_checked(self):
        layer = self.make()
        with pytest.raises(ShapeError, match=r"state must be"):
            layer.state = tuple(np.zeros(self.hidden_size + 1) for _ in range(layer.state_parts))
        with pytest.raises(ShapeError, match=r"state must be"):
            layer.state = tuple(np.zeros(self.hidden_size) for _ in range(layer.state_parts + 1))

    # -- gradients -------------------------------------------------------------------
    @pytest.mark.parametrize("parameter", [None, "weights", "output_weights"])
    def test_gradient(self, parameter):
        layer = self.make()
        x, labels = self.sequence()
        layers = [layer, L2Loss()]
        if parameter is None:
            error = gradient_check(layers, x, labels)
        else:
            error = gradient_check_weights(layers, x, labels, parameter=parameter)
        assert error <= GRADIENT_TOLERANCE

    @pytest.mark.parametrize("parameter", [None, "weights", "output_weights"])
    def test_gradient_of_second_memorized_call(self, parameter):
        layer = self.make()
        first, _ = self.sequence(seed=5)
        x, labels = self.sequence(seed=6)
        layer.memorize = True
        layer.forward(first)
        carried = layer.state
        assert all(np.abs(part).max() > 1e-3 for part in carried)
        layers = [FixedState(layer, carried), L2Loss()]  # every forward restarts from the carried state
        if parameter is None:
            error = gradient_check(layers, x, labels)
        else:
            error = gradient_check_weights(layers, x, labels, parameter=parameter)
        assert error <= GRADIENT_TOLERANCE

    def test_weight_gradient_depends_on_whole_sequence(self):
        layer = self.make()
        x, _ = self.sequence()
        layer.forward(x)
        error = np.zeros((self.time, self.output_size))
        error[-1] = 1.0  # only the last output matters: BPTT must still reach the first input
        dx = layer.backward(error)
        assert np.abs(dx[0]).max() > 0
        assert np.abs(layer.gradient_weights[: self.input_size]).max() > 0

    # -- optimizers ------------------------------------------------------------------
    def test_each_weight_set_has_its_own_optimizer_copy(self):
        layer = self.make()
        optimizer = Adam(1e-3)
        layer.optimizer = optimizer
        assert layer.optimizer is optimizer
        copies = [layer.parameter_optimizer(name) for name in ("weights", "output_weights")]
        assert copies[0] is not copies[1] and optimizer not in copies
        x, labels = self.sequence()
        layer.backward(layer.forward(x) - labels)
        assert copies[0].first_moment.shape == layer.weights.shape
        assert copies[1].first_moment.shape == layer.output_weights.shape
        assert optimizer.first_moment is None

    def test_backward_updates_both_weight_sets(self):
        layer = self.make()
        layer.optimizer = Sgd(0.5)
        before = layer.weights.copy(), layer.output_weights.copy()
        x, labels = self.sequence()
        layer.backward(layer.forward(x) - labels)
        np.testing.assert_allclose(layer.weights, before[0] - 0.5 * layer.gradient_weights, atol=1e-15)
        np.testing.assert_allclose(layer.output_weights, before[1] - 0.5 * layer.gradient_output_weights,
                                   atol=1e-15)
        assert np.abs(layer.gradient_weights).max() > 0 and np.abs(layer.gradient_output_weights).max() > 0

    def test_no_optimizer_no_update(self):
        layer = self.make()
        before = layer.weights.copy(), layer.output_weights.copy()
        x, labels = self.sequence()
        layer.backward(layer.forward(x) - labels)
        np.testing.assert_array_equal(layer.weights, before[0])
        np.testing.assert_array_equal(layer.output_weights, before[1])

    # -- initialize ----------------------------------------------------------------------
    def test_initialize_fans_and_bias_shapes(self):
        layer = self.make()
        weights_init, bias_init = RecordingInitializer(0.25), RecordingInitializer(-0.5)
        layer.initialize(weights_init, bias_init)
        columns = self.gates * self.hidden_size
        fan_in = self.input_size + self.hidden_size
        h, out = self.hidden_size, self.output_size
        assert weights_init.calls == [((fan_in, columns), fan_in, columns), ((h, out), h, out)]
        assert bias_init.calls == [((1, columns), fan_in, columns), ((1, out), h, out)]
        assert np.all(layer.weights[:-1] == 0.25) and np.all(layer.weights[-1] == -0.5)
        assert np.all(layer.output_weights[:-1] == 0.25) and np.all(layer.output_weights[-1] == -0.5)
        assert layer.weights.shape == layer.weights_shape

    def test_initialize_draws_from_the_global_generator(self):
        layer = self.make()
        np.random.seed(3)
        layer.initialize(Xavier(), Constant(0.1))
        first = layer.weights.copy()
        np.random.seed(3)
        layer.initialize(Xavier(), Constant(0.1))
        np.testing.assert_array_equal(layer.weights, first)
        assert np.all(layer.weights[-1] == 0.1)

    # -- regularization --------------------------------------------------------------------
    @pytest.mark.parametrize("kind", ["L1_Regularizer", "L2_Regularizer"])
    def test_regularization_loss(self, kind):
        regularizer = _regularizer(kind)
        layer = self.make()
        assert layer.calculate_regularization_loss() == 0.0
        optimizer = Sgd(0.1)
        optimizer.add_regularizer(regularizer(0.3))
        layer.optimizer = optimizer
        norm = (lambda w: np.abs(w).sum()) if kind == "L1_Regularizer" else (lambda w: (w**2).sum())
        expected = 0.3 * (norm(layer.weights) + norm(layer.output_weights))
        assert layer.calculate_regularization_loss() == pytest.approx(expected, rel=1e-12)

    @pytest.mark.parametrize("kind", ["L1_Regularizer", "L2_Regularizer"])
    def test_network_loss_includes_regularization(self, kind):
        regularizer = _regularizer(kind)
        from corenet.network import NeuralNetwork

        alpha = 0.05
        optimizer = Sgd(1e-3)
        optimizer.add_regularizer(regularizer(alpha))
        net = NeuralNetwork(optimizer, Xavier(), Constant(0.1))
        x, labels = self.sequence()
        net.data_layer = _Stream(x, labels)
        net.loss_layer = L2Loss()
        layer = self.make()
        net.append_layer(layer)
        weights, output_weights = layer.weights.copy(), layer.output_weights.copy()
        loss = net.forward()
        data_loss = 0.5 * np.sum((reference_forward(layer, x)[0] - labels) ** 2)
        norm = (lambda w: np.abs(w).sum()) if kind == "L1_Regularizer" else (lambda w: (w**2).sum())
        penalty = alpha * (norm(weights) + norm(output_weights))
        assert penalty > 1e-3
        assert loss == pytest.approx(data_loss + penalty, rel=1e-12)
        net.backward()  # the update subtracts lr * regularizer gradient on top of the step
        shrink = alpha * (np.sign(weights) if kind == "L1_Regularizer" else weights)
        expected = weights - 1e-3 * layer.gradient_weights - 1e-3 * shrink
        np.testing.assert_allclose(layer.weights, expected, atol=1e-15)

    # -- bad input ----------------------------------------------------------------------
    def test_wrong_feature_count_names_layer_and_sizes(self):
        layer = self.make()
        with pytest.raises(ShapeError) as caught:
            layer.forward(np.zeros((self.time, self.input_size + 2)))
        message = str(caught.value)
        assert repr(layer) in message
        assert f"expects {self.input_size} input features but got {self.input_size + 2}" in message

    @pytest.mark.parametrize("shape", [(2, 6, 3), (6,)])
    def test_wrong_rank_says_time_features(self, shape):
        layer = self.make()
        with pytest.raises(ShapeError, match=r"takes \(time, features\)") as caught:
            layer.forward(np.zeros(shape))
        assert repr(layer) in str(caught.value) and str(shape) in str(caught.value)

    def test_empty_sequence_refused(self):
        with pytest.raises(ShapeError, match="empty"):
            self.make().forward(np.zeros((0, self.input_size)))

    def test_backward_before_forward(self):
        with pytest.raises(ShapeError, match="backward called before forward"):
            self.make().backward(np.zeros((self.time, self.output_size)))

    def test_error_of_wrong_shape(self):
        layer = self.make()
        layer.forward(self.sequence()[0])
        with pytest.raises(ShapeError, match=r"expects an error of shape \(6, 2\)"):
            layer.backward(np.zeros((self.time + 1, self.output_size)))

    def test_assigned_weights_of_wrong_shape(self):
        layer = self.make()
        layer.weights = np.zeros((2, 2))
        with pytest.raises(ShapeError, match=r"weights must have shape"):
            layer.forward(self.sequence()[0])

    # -- memory -------------------------------------------------------------------------
    def test_memory_stays_flat_over_10000_calls(self):
        layer = self.make()
        layer.optimizer = Adam(1e-3)
        layer.memorize = True
        x, labels = self.sequence(time=5)
        for _ in range(10):
            layer.backward(layer.forward(x) - labels)
        size, names = array_bytes(layer), sorted(vars(layer))
        for _ in range(10_000):
            layer.backward(layer.forward(x) - labels)
        assert array_bytes(layer) == size
        assert sorted(vars(layer)) == names
        assert np.all(np.isfinite(layer.weights))

    def test_pickle_round_trip(self):
        layer = self.make()
        layer.memorize = True
        x, _ = self.sequence()
        layer.forward(x)
        clone = pickle.loads(pickle.dumps(layer))
        np.testing.assert_array_equal(clone.forward(x), layer.forward(x))

    # -- PyTorch --------------------------------------------------------------------------
    @pytest.mark.parametrize("carried", [False, True], ids=["zero-state", "carried-state"])
    def test_matches_torch_outputs_and_gradients(self, carried):
        torch = pytest.importorskip("torch")
        layer = self.make()
        x, _ = self.sequence(time=8)
        error = np.random.default_rng(4).normal(size=(8, self.output_size))
        state = None
        if carried:
            layer.memorize = True
            layer.forward(self.sequence(seed=9, time=5)[0])
            state = layer.state
        y = layer.forward(x)
        dx = layer.backward(error)
        mirror = TorchMirror(layer)
        xt = torch.tensor(x, requires_grad=True)
        yt, final = mirror.forward(xt, state)
        (yt * torch.from_numpy(error)).sum().backward()
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=TORCH_TOLERANCE)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=TORCH_TOLERANCE)
        gradient_weights, gradient_output_weights = mirror.gradients()
        np.testing.assert_allclose(layer.gradient_weights, gradient_weights, rtol=0, atol=TORCH_TOLERANCE)
        np.testing.assert_allclose(layer.gradient_output_weights, gradient_output_weights, rtol=0,
                                   atol=TORCH_TOLERANCE)
        for ours, theirs in zip(layer.state, final):
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=TORCH_TOLERANCE)

    @pytest.mark.parametrize("memorize", [False, True])
    @pytest.mark.parametrize("kind", ["adam", "momentum"])
    def test_training_matches_torch(self, kind, memorize):
        torch = pytest.importorskip("torch")
        layer = self.make()
        mirror = TorchMirror(layer)
        if kind == "adam":
            layer.optimizer = Adam(0.02, 0.9, 0.999)
            optimizer = torch.optim.Adam(mirror.parameters(), lr=0.02, betas=(0.9, 0.999), eps=1e-8)
        else:
            # ours: v <- mu v - lr g; w + v. torch (dampening 0): b <- mu b + g; w - lr b; v = -lr b.
            layer.optimizer = SgdWithMomentum(0.05, 0.9)
            optimizer = torch.optim.SGD(mirror.parameters(), lr=0.05, momentum=0.9, dampening=0)
        layer.memorize = memorize
        state = None
        start = layer.weights.copy()
        for step in range(20):
            x, labels = self.sequence(seed=100 + step)
            layer.backward(layer.forward(x) - labels)  # L = 0.5 ||y - labels||^2
            optimizer.zero_grad()
            yt, final = mirror.forward(torch.from_numpy(x), state if memorize else None)
            (0.5 * ((yt - torch.from_numpy(labels)) ** 2).sum()).backward()
            optimizer.step()
            state = final
        weights, output_weights = mirror.weights()
        assert np.abs(layer.weights - start).max() > 1e-2  # it did train
        np.testing.assert_allclose(layer.weights, weights, rtol=0, atol=TORCH_TOLERANCE)
        np.testing.assert_allclose(layer.output_weights, output_weights, rtol=0, atol=TORCH_TOLERANCE)

