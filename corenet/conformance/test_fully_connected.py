"""Conformance group TestFullyConnected: y = [x, 1] @ W, weights (input_size + 1, output_size)."""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.errors import ShapeError
from corenet.initializers import Constant, UniformRandom
from corenet.layers.fully_connected import FullyConnected
from corenet.optimizers import Sgd
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

TOLERANCE = 1e-5


class RecordingInitializer:
    """Returns a distinct constant per call and records the arguments it was given."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.calls: list[tuple] = []

    def initialize(self, weights_shape, fan_in, fan_out):
        self.calls.append((tuple(weights_shape), fan_in, fan_out))
        return np.full(weights_shape, self.value)


class TestFullyConnected:
    batch, input_size, output_size = 9, 4, 3

    def setup_method(self) -> None:
        np.random.seed(1337)
        self.input_tensor = np.random.standard_normal((self.batch, self.input_size))
        self.label_tensor = np.random.standard_normal((self.batch, self.output_size))

    def test_trainable_and_phase_flags(self):
        layer = FullyConnected(4, 3)
        assert layer.trainable is True
        assert layer.testing_phase is False
        assert layer.optimizer is None

    def test_default_weights_shape_and_range(self):
        layer = FullyConnected(self.input_size, self.output_size)
        assert layer.weights.shape == (self.input_size + 1, self.output_size)
        assert layer.weights.dtype == np.float64
        assert layer.weights.min() >= 0.0 and layer.weights.max() < 1.0

    def test_forward_shape_and_value(self):
        layer = FullyConnected(self.input_size, self.output_size)
        output = layer.forward(self.input_tensor)
        assert output.shape == (self.batch, self.output_size)
        expected = np.hstack([self.input_tensor, np.ones((self.batch, 1))]) @ layer.weights
        np.testing.assert_allclose(output, expected, rtol=1e-12)

    def test_last_weight_row_is_the_bias(self):
        layer = FullyConnected(2, 3)
        layer.weights = np.vstack([np.zeros((2, 3)), [[1.0, -2.0, 3.0]]])
        output = layer.forward(np.random.random((5, 2)))
        np.testing.assert_array_equal(output, np.tile([1.0, -2.0, 3.0], (5, 1)))

    def test_backward_values(self):
        layer = FullyConnected(self.input_size, self.output_size)
        layer.forward(self.input_tensor)
        error = np.random.standard_normal((self.batch, self.output_size))
        error_previous = layer.backward(error)
        assert error_previous.shape == (self.batch, self.input_size)
        np.testing.assert_allclose(error_previous, error @ layer.weights[:-1].T, rtol=1e-12)
        assert layer.gradient_weights.shape == layer.weights.shape
        np.testing.assert_allclose(layer.gradient_weights[:-1], self.input_tensor.T @ error, rtol=1e-12)
        np.testing.assert_allclose(layer.gradient_weights[-1], error.sum(axis=0), rtol=1e-12)

    def test_gradient_check_input(self):
        layers = [FullyConnected(self.input_size, self.output_size), L2Loss()]
        assert gradient_check(layers, self.input_tensor, self.label_tensor) <= TOLERANCE

    def test_gradient_check_weights(self):
        layers = [FullyConnected(self.input_size, self.output_size), L2Loss()]
        assert gradient_check_weights(layers, self.input_tensor, self.label_tensor) <= TOLERANCE

    def test_gradient_check_two_layers_weights_of_first(self):
        layers = [FullyConnected(self.input_size, 6), FullyConnected(6, self.output_size), L2Loss()]
        x, label = self.input_tensor, self.label_tensor
        assert gradient_check(layers, x, label) <= TOLERANCE
        assert gradient_check_weights(layers, x, label, layer_index=0) <= TOLERANCE
        assert gradient_check_weights(layers, x, label, layer_index=1) <= TOLERANCE

    def test_update_with_optimizer_uses_old_weights_for_the_error(self):
        layer = FullyConnected(self.input_size, self.output_size)
        layer.optimizer = Sgd(0.5)
        old = layer.weights.copy()
        layer.forward(self.input_tensor)
        error = np.random.standard_normal((self.batch, self.output_size))
        error_previous = layer.backward(error)
        np.testing.assert_allclose(error_previous, error @ old[:-1].T, rtol=1e-12)
        np.testing.assert_allclose(layer.weights, old - 0.5 * layer.gradient_weights, rtol=1e-12)

    def test_no_update_without_optimizer(self):
        layer = FullyConnected(self.input_size, self.output_size)
        old = layer.weights.copy()
        layer.forward(self.input_tensor)
        layer.backward(np.ones((self.batch, self.output_size)))
        np.testing.assert_array_equal(layer.weights, old)

    def test_training_reduces_loss(self):
        layer = FullyConnected(self.input_size, self.output_size)
        layer.optimizer = Sgd(1e-2)
        loss = L2Loss()
        losses = []
        for _ in range(30):
            losses.append(loss.forward(layer.forward(self.input_tensor), self.label_tensor))
            layer.backward(loss.backward(self.label_tensor))
        assert losses[-1] < 0.5 * losses[0]

    def test_initialize_shapes_fans_and_bias_row(self):
        layer = FullyConnected(self.input_size, self.output_size)
        weights_init, bias_init = RecordingInitializer(0.25), RecordingInitializer(-3.0)
        layer.initialize(weights_init, bias_init)
        n_in, n_out = self.input_size, self.output_size
        assert weights_init.calls == [((n_in, n_out), n_in, n_out)]
        assert bias_init.calls == [((1, n_out), n_in, n_out)]
        assert layer.weights.shape == (self.input_size + 1, self.output_size)
        np.testing.assert_array_equal(layer.weights[:-1], 0.25)
        np.testing.assert_array_equal(layer.weights[-1], -3.0)

    def test_initialize_with_core_initializers(self):
        layer = FullyConnected(6, 2)
        layer.initialize(UniformRandom(), Constant(0.5))
        assert layer.weights.shape == (7, 2)
        np.testing.assert_array_equal(layer.weights[-1], 0.5)
        assert 0.0 <= layer.weights[:-1].min() and layer.weights[:-1].max() < 1.0

    def test_forward_uses_assigned_weights_integer_arrays_too(self):
        layer = FullyConnected(2, 2)
        layer.weights = np.array([[1, 0], [0, 2], [3, 4]])
        np.testing.assert_allclose(layer.forward(np.array([[1.0, 1.0]])), [[4.0, 6.0]])

    def test_integer_and_bool_inputs_compute_as_floats(self):
        layer = FullyConnected(3, 2)
        out_int = layer.forward(np.array([[1, 2, 3]]))
        assert out_int.dtype == np.float64
        np.testing.assert_allclose(out_int, layer.forward(np.array([[1.0, 2.0, 3.0]])))
        assert layer.forward(np.array([[True, False, True]])).dtype == np.float64

    def test_float32_stays_float32(self):
        corenet.set_default_dtype(np.float32)
        try:
            layer = FullyConnected(4, 3)
            layer.optimizer = Sgd(0.1)
        finally:
            corenet.set_default_dtype(np.float64)
        assert layer.weights.dtype == np.float32
        output = layer.forward(self.input_tensor.astype(np.float32))
        assert output.dtype == np.float32
        error = layer.backward(np.ones_like(output))
        assert error.dtype == np.float32
        assert layer.gradient_weights.dtype == np.float32
        assert layer.weights.dtype == np.float32

    def test_repeated_calls_do_not_accumulate(self):
        layer = FullyConnected(4, 3)
        layer.forward(self.input_tensor)
        layer.backward(np.ones((self.batch, 3)))
        first = layer.gradient_weights.copy()
        layer.forward(self.input_tensor)
        layer.backward(np.ones((self.batch, 3)))
        np.testing.assert_array_equal(layer.gradient_weights, first)

    # -- errors ------------------------------------------------------------------------------
    def test_wrong_feature_count_names_layer_and_both_sizes(self):
        layer = FullyConnected(4, 3)
        with pytest.raises(ShapeError) as info:
            layer.forward(np.zeros((2, 5)))
        message = str(info.value)
        assert "FullyConnected(4, 3)" in message
        assert "expects 4" in message and "got 5" in message

    @pytest.mark.parametrize("shape", [(4,), (2, 4, 1), ()])
    def test_wrong_rank_is_refused(self, shape):
        with pytest.raises(ShapeError, match=r"FullyConnected\(4, 3\).*2-D"):
            FullyConnected(4, 3).forward(np.zeros(shape))

    def test_empty_batch_is_refused(self):
        with pytest.raises(ShapeError, match="empty batch"):
            FullyConnected(4, 3).forward(np.zeros((0, 4)))

    def test_backward_before_forward(self):
        with pytest.raises(ShapeError, match=r"FullyConnected\(4, 3\).*backward called before forward"):
            FullyConnected(4, 3).backward(np.zeros((2, 3)))

    def test_wrong_error_shape(self):
        layer = FullyConnected(4, 3)
        layer.forward(np.zeros((2, 4)))
        with pytest.raises(ShapeError) as info:
            layer.backward(np.zeros((2, 4)))
        assert "FullyConnected(4, 3)" in str(info.value)
        assert "(2, 3)" in str(info.value) and "(2, 4)" in str(info.value)

    def test_non_numeric_input_is_refused(self):
        with pytest.raises(ShapeError, match="FullyConnected"):
            FullyConnected(1, 1).forward(np.array([["a"]]))

    @pytest.mark.parametrize("sizes", [(0, 3), (3, -1), (2.5, 3), (True, 3), ("4", 3)])
    def test_constructor_rejects_bad_sizes(self, sizes):
        with pytest.raises(ValueError, match="_size must be a positive integer"):
            FullyConnected(*sizes)

    # -- PyTorch parity ---------------------------------------------------------------------
    def test_matches_torch_linear(self):
        torch = pytest.importorskip("torch")
        layer = FullyConnected(self.input_size, self.output_size)
        layer.weights = np.random.standard_normal((self.input_size + 1, self.output_size))
        linear = torch.nn.Linear(self.input_size, self.output_size).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.weights[:-1].T.copy()))
            linear.bias.copy_(torch.from_numpy(layer.weights[-1].copy()))
        x = torch.tensor(self.input_tensor, dtype=torch.float64, requires_grad=True)
        y = linear(x)
        error = np.random.standard_normal((self.batch, self.output_size))
        y.backward(torch.from_numpy(error))

        output = layer.forward(self.input_tensor)
        error_previous = layer.backward(error)
        np.testing.assert_allclose(output, y.detach().numpy(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(error_previous, x.grad.numpy(), rtol=0, atol=1e-8)
        gradient = layer.gradient_weights
        np.testing.assert_allclose(gradient[:-1], linear.weight.grad.numpy().T, rtol=0, atol=1e-8)
        np.testing.assert_allclose(gradient[-1], linear.bias.grad.numpy(), rtol=0, atol=1e-8)
