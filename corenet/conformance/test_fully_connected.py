"""Conformance group TestFullyConnected: y = [x, 1] @ W, weights (input_size + 1, output_size)."""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.checking.agreement import train_side_by_side
from corenet.checking.doubles import ArrayInitializer, RecordingInitializer, known_values
from corenet.checking.expect import expect, expect_close, expect_equal, expect_gradient, expect_shape
from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

pytestmark = pytest.mark.contract
TOLERANCE = 1e-5
LAYOUT_HINT = "weights has shape (input_size + 1, output_size), the last row being the bias"


@pytest.fixture
def FullyConnected(impl):
    return impl("FullyConnected")


@pytest.fixture
def Sgd(impl):
    return impl.reference("Sgd")


class TestFullyConnected:
    batch, input_size, output_size = 9, 4, 3

    def setup_method(self) -> None:
        np.random.seed(1337)
        self.input_tensor = np.random.standard_normal((self.batch, self.input_size))
        self.label_tensor = np.random.standard_normal((self.batch, self.output_size))

    # -- contract -------------------------------------------------------------------------------
    def test_trainable_and_phase_flags(self, FullyConnected):
        layer = FullyConnected(4, 3)
        expect_equal(getattr(layer, "trainable", None), True, "FullyConnected(4, 3).trainable")
        expect_equal(getattr(layer, "testing_phase", None), False, "FullyConnected(4, 3).testing_phase")

    def test_default_weights_shape_and_range(self, FullyConnected):
        layer = FullyConnected(self.input_size, self.output_size)
        expect_shape(layer.weights, (self.input_size + 1, self.output_size), "FullyConnected(4, 3).weights",
                     LAYOUT_HINT)
        expect(layer.weights.min() >= 0.0 and layer.weights.max() < 1.0,
               "the default weights are not in [0, 1)", "draw them with np.random.uniform(0, 1, shape)")

    def test_forward_shape_and_value(self, FullyConnected):
        layer = FullyConnected(self.input_size, self.output_size)
        layer.weights = np.random.standard_normal((self.input_size + 1, self.output_size))
        output = layer.forward(self.input_tensor)
        expect_shape(output, (self.batch, self.output_size), "forward output")
        expected = np.hstack([self.input_tensor, np.ones((self.batch, 1))]) @ layer.weights
        expect_close(output, expected, "forward output", "compute [input, 1] @ weights")

    def test_last_weight_row_is_the_bias(self, FullyConnected):
        layer = FullyConnected(2, 3)
        layer.weights = np.vstack([np.zeros((2, 3)), [[1.0, -2.0, 3.0]]])
        output = layer.forward(np.random.random((5, 2)))
        expect_close(output, np.tile([1.0, -2.0, 3.0], (5, 1)), "forward output with zero weights", LAYOUT_HINT)

    def test_backward_values(self, FullyConnected):
        layer = FullyConnected(self.input_size, self.output_size)
        layer.forward(self.input_tensor)
        error = np.random.standard_normal((self.batch, self.output_size))
        error_previous = layer.backward(error)
        expect_shape(error_previous, (self.batch, self.input_size), "backward output",
                     "drop the bias column: the previous layer has input_size outputs")
        expect_close(error_previous, error @ layer.weights[:-1].T, "backward output (error for the previous layer)")
        expect_shape(layer.gradient_weights, layer.weights.shape, "gradient_weights")
        expect_close(layer.gradient_weights[:-1], self.input_tensor.T @ error, "gradient_weights without the bias row")
        expect_close(layer.gradient_weights[-1], error.sum(axis=0), "gradient_weights' bias row",
                     "the bias gradient is the error summed over the batch")

    def test_gradient_check_input(self, FullyConnected):
        layers = [FullyConnected(self.input_size, self.output_size), L2Loss()]
        expect_gradient(gradient_check(layers, self.input_tensor, self.label_tensor), "gradient w.r.t. the input")

    def test_gradient_check_weights(self, FullyConnected):
        layers = [FullyConnected(self.input_size, self.output_size), L2Loss()]
        expect_gradient(gradient_check_weights(layers, self.input_tensor, self.label_tensor), "gradient_weights",
                        "forward must use the array assigned to weights")

    def test_gradient_check_two_layers_weights_of_first(self, FullyConnected):
        layers = [FullyConnected(self.input_size, 6), FullyConnected(6, self.output_size), L2Loss()]
        x, label = self.input_tensor, self.label_tensor
        expect_gradient(gradient_check(layers, x, label), "gradient w.r.t. the input of two stacked layers")
        expect_gradient(gradient_check_weights(layers, x, label, layer_index=0), "first layer's gradient_weights")
        expect_gradient(gradient_check_weights(layers, x, label, layer_index=1), "second layer's gradient_weights")

    def test_update_with_optimizer_uses_old_weights_for_the_error(self, FullyConnected, Sgd):
        layer = FullyConnected(self.input_size, self.output_size)
        layer.optimizer = Sgd(0.5)
        old = np.array(layer.weights, dtype=np.float64)
        layer.forward(self.input_tensor)
        error = np.random.standard_normal((self.batch, self.output_size))
        error_previous = layer.backward(error)
        expect_close(error_previous, error @ old[:-1].T, "backward output with an optimizer set",
                     "compute the error for the previous layer with the weights before the update")
        expect_close(layer.weights, old - 0.5 * layer.gradient_weights, "weights after one Sgd(0.5) step",
                     "backward sets weights = optimizer.calculate_update(weights, gradient_weights)")

    def test_no_update_without_optimizer(self, FullyConnected):
        layer = FullyConnected(self.input_size, self.output_size)
        old = np.array(layer.weights, dtype=np.float64)
        layer.forward(self.input_tensor)
        layer.backward(np.ones((self.batch, self.output_size)))
        expect_close(layer.weights, old, "weights after backward without an optimizer", rtol=0, atol=0)

    def test_training_reduces_loss(self, FullyConnected, Sgd):
        layer = FullyConnected(self.input_size, self.output_size)
        layer.optimizer = Sgd(1e-2)
        loss = L2Loss()
        losses = []
        for _ in range(30):
            losses.append(loss.forward(layer.forward(self.input_tensor), self.label_tensor))
            layer.backward(loss.backward(self.label_tensor))
        expect(losses[-1] < 0.5 * losses[0],
               f"30 Sgd steps took the L2 loss only from {losses[0]:.4g} to {losses[-1]:.4g}")

    def test_initialize_fans_and_bias_row(self, FullyConnected):
        layer = FullyConnected(self.input_size, self.output_size)
        weights_init, bias_init = RecordingInitializer(0.25), RecordingInitializer(-3.0)
        layer.initialize(weights_init, bias_init)
        n_in, n_out = self.input_size, self.output_size
        expect(weights_init.calls, "initialize did not call weights_initializer.initialize")
        expect_equal(weights_init.calls[0][1:], (n_in, n_out), "(fan_in, fan_out) given to the weights initializer")
        expect_shape(layer.weights, (n_in + 1, n_out), "weights after initialize", LAYOUT_HINT)
        expect_close(layer.weights[:-1], np.full((n_in, n_out), 0.25), "weights (without the bias row) after "
                     "initialize", "take them from weights_initializer.initialize")
        expect_close(layer.weights[-1], np.full(n_out, -3.0), "bias row after initialize",
                     "take it from bias_initializer.initialize")

    def test_initialize_with_known_arrays(self, FullyConnected):
        layer = FullyConnected(5, 3)
        layer.initialize(ArrayInitializer(1), ArrayInitializer(2))
        expect_close(layer.weights[:-1], known_values((5, 3), 1), "weights after initialize",
                     "use the array the weights initializer returns as is")
        expect_close(layer.weights[-1], known_values((1, 3), 2)[0], "bias row after initialize")

    def test_forward_uses_assigned_weights(self, FullyConnected):
        layer = FullyConnected(2, 2)
        layer.weights = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
        expect_close(layer.forward(np.array([[1.0, 1.0]])), [[4.0, 6.0]], "forward output after assigning weights")

    # -- reference ------------------------------------------------------------------------------
    @pytest.mark.reference
    @pytest.mark.parametrize("optimizer", ["Sgd", "SgdWithMomentum", "Adam"])
    def test_trains_like_the_reference(self, FullyConnected, impl, optimizer):
        reference = impl.reference("FullyConnected")
        make_optimizer = {"Sgd": lambda: impl.reference("Sgd")(0.05),
                          "SgdWithMomentum": lambda: impl.reference("SgdWithMomentum")(0.05, 0.9),
                          "Adam": lambda: impl.reference("Adam")(0.05, 0.9, 0.999)}[optimizer]
        layers = []
        for cls in (FullyConnected, reference):
            layer = cls(self.input_size, self.output_size)
            layer.initialize(ArrayInitializer(3), ArrayInitializer(4))
            layer.optimizer = make_optimizer()
            layers.append(layer)
        train_side_by_side(*layers, self.input_tensor, self.label_tensor, steps=6,
                           what=f"FullyConnected with {optimizer}", attributes=("gradient_weights",))

    @pytest.mark.reference
    def test_repeated_calls_do_not_accumulate(self, FullyConnected):
        layer = FullyConnected(4, 3)
        layer.forward(self.input_tensor)
        layer.backward(np.ones((self.batch, 3)))
        first = np.array(layer.gradient_weights, dtype=np.float64)
        layer.forward(self.input_tensor)
        layer.backward(np.ones((self.batch, 3)))
        expect_close(layer.gradient_weights, first, "gradient_weights of a repeated identical step",
                     "compute the gradient afresh in every backward instead of adding to the last one")

    @pytest.mark.reference
    def test_trains_like_torch_linear(self, FullyConnected, impl):
        torch = pytest.importorskip("torch")
        layer = FullyConnected(self.input_size, self.output_size)
        layer.initialize(ArrayInitializer(5), ArrayInitializer(6))
        layer.optimizer = impl.reference("Adam")(0.05, 0.9, 0.999)
        linear = torch.nn.Linear(self.input_size, self.output_size).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(known_values((self.input_size, self.output_size), 5).T.copy()))
            linear.bias.copy_(torch.from_numpy(known_values((1, self.output_size), 6)[0]))
        optimizer = torch.optim.Adam(linear.parameters(), lr=0.05, betas=(0.9, 0.999), eps=1e-8)
        for step in range(1, 6):
            x = torch.tensor(self.input_tensor, dtype=torch.float64, requires_grad=True)
            y = linear(x)
            error = y.detach().numpy() - self.label_tensor
            optimizer.zero_grad()
            y.backward(torch.from_numpy(error))
            expect_close(layer.forward(self.input_tensor), y.detach().numpy(),
                         f"forward output at step {step} vs torch.nn.Linear")
            expect_close(layer.backward(error), x.grad.numpy(), f"backward output at step {step} vs torch.nn.Linear")
            optimizer.step()

    # -- corenet --------------------------------------------------------------------------------
    @pytest.mark.corenet
    def test_optimizer_starts_unset_and_weights_are_float64(self, FullyConnected):
        layer = FullyConnected(4, 3)
        assert layer.optimizer is None
        assert layer.weights.dtype == np.float64

    @pytest.mark.corenet
    def test_initialize_requests_exact_shapes(self, FullyConnected):
        layer = FullyConnected(self.input_size, self.output_size)
        weights_init, bias_init = RecordingInitializer(0.25), RecordingInitializer(-3.0)
        layer.initialize(weights_init, bias_init)
        n_in, n_out = self.input_size, self.output_size
        assert weights_init.calls == [((n_in, n_out), n_in, n_out)]
        assert bias_init.calls == [((1, n_out), n_in, n_out)]

    @pytest.mark.corenet
    def test_initialize_with_core_initializers(self, FullyConnected, impl):
        layer = FullyConnected(6, 2)
        layer.initialize(impl.reference("UniformRandom")(), impl.reference("Constant")(0.5))
        assert layer.weights.shape == (7, 2)
        np.testing.assert_array_equal(layer.weights[-1], 0.5)
        assert 0.0 <= layer.weights[:-1].min() and layer.weights[:-1].max() < 1.0

    @pytest.mark.corenet
    def test_forward_uses_assigned_integer_weights(self, FullyConnected):
        layer = FullyConnected(2, 2)
        layer.weights = np.array([[1, 0], [0, 2], [3, 4]])
        np.testing.assert_allclose(layer.forward(np.array([[1.0, 1.0]])), [[4.0, 6.0]])

    @pytest.mark.corenet
    def test_integer_and_bool_inputs_compute_as_floats(self, FullyConnected):
        layer = FullyConnected(3, 2)
        out_int = layer.forward(np.array([[1, 2, 3]]))
        assert out_int.dtype == np.float64
        np.testing.assert_allclose(out_int, layer.forward(np.array([[1.0, 2.0, 3.0]])))
        assert layer.forward(np.array([[True, False, True]])).dtype == np.float64

    @pytest.mark.corenet
    def test_float32_stays_float32(self, FullyConnected, Sgd):
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

    @pytest.mark.corenet
    def test_wrong_feature_count_names_layer_and_both_sizes(self, FullyConnected):
        layer = FullyConnected(4, 3)
        with pytest.raises(ShapeError) as info:
            layer.forward(np.zeros((2, 5)))
        message = str(info.value)
        assert "FullyConnected(4, 3)" in message
        assert "expects 4" in message and "got 5" in message

    @pytest.mark.corenet
    @pytest.mark.parametrize("shape", [(4,), (2, 4, 1), ()])
    def test_wrong_rank_is_refused(self, FullyConnected, shape):
        with pytest.raises(ShapeError, match=r"FullyConnected\(4, 3\).*2-D"):
            FullyConnected(4, 3).forward(np.zeros(shape))

    @pytest.mark.corenet
    def test_empty_batch_is_refused(self, FullyConnected):
        with pytest.raises(ShapeError, match="empty batch"):
            FullyConnected(4, 3).forward(np.zeros((0, 4)))

    @pytest.mark.corenet
    def test_backward_before_forward(self, FullyConnected):
        with pytest.raises(ShapeError, match=r"FullyConnected\(4, 3\).*backward called before forward"):
            FullyConnected(4, 3).backward(np.zeros((2, 3)))

    @pytest.mark.corenet
    def test_wrong_error_shape(self, FullyConnected):
        layer = FullyConnected(4, 3)
        layer.forward(np.zeros((2, 4)))
        with pytest.raises(ShapeError) as info:
            layer.backward(np.zeros((2, 4)))
        assert "FullyConnected(4, 3)" in str(info.value)
        assert "(2, 3)" in str(info.value) and "(2, 4)" in str(info.value)

    @pytest.mark.corenet
    def test_non_numeric_input_is_refused(self, FullyConnected):
        with pytest.raises(ShapeError, match="FullyConnected"):
            FullyConnected(1, 1).forward(np.array([["a"]]))

    @pytest.mark.corenet
    @pytest.mark.parametrize("sizes", [(0, 3), (3, -1), (2.5, 3), (True, 3), ("4", 3)])
    def test_constructor_rejects_bad_sizes(self, FullyConnected, sizes):
        with pytest.raises(ValueError, match="_size must be a positive integer"):
            FullyConnected(*sizes)
