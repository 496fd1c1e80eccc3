"""Conformance group TestBatchNorm: vectors, images, moving averages, reformat, gradients, PyTorch parity."""

from __future__ import annotations

import numpy as np
import pytest
from corenet_batchnorm.batchnorm import BatchNormalization as ReferenceBatchNormalization
from corenet_batchnorm.functional import EPSILON, compute_bn_gradients

import corenet
from corenet.errors import ShapeError
from corenet.initializers import Constant
from corenet.layers.flatten import Flatten
from corenet.layers.fully_connected import FullyConnected
from corenet.optimizers import Adam, Sgd
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

# the selected implementation: CORENET_IMPL picks the tier
BatchNormalization = corenet.get_registry().layers.get("BatchNormalization", ReferenceBatchNormalization)

INPUT_TOLERANCE = 1e-5
PARAMETER_TOLERANCE = 1e-6
TORCH_TOLERANCE = 1e-7


def channel_moments(tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance of (b, c) or (b, c, y, x), via the (b*y*x, c) layout."""
    if tensor.ndim > 2:
        tensor = np.moveaxis(tensor, 1, -1).reshape(-1, tensor.shape[1])
    return tensor.mean(axis=0), tensor.var(axis=0)


def reference_forward(x: np.ndarray, gamma, beta, mean, var) -> np.ndarray:
    """γ (x − mean) / sqrt(var + ε) + β with per-channel statistics, written out directly."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    normalised = (x - np.reshape(mean, shape)) / np.sqrt(np.reshape(var, shape) + EPSILON)
    return np.reshape(gamma, shape) * normalised + np.reshape(beta, shape)


class TestBatchNorm:
    batch_size, channels, spatial, categories = 20, 2, (3, 3), 5

    def setup_method(self) -> None:
        np.random.seed(0)
        self.input_size = self.channels * int(np.prod(self.spatial))
        self.input_tensor = np.abs(np.random.random((self.batch_size, self.input_size)))
        self.input_tensor_conv = np.random.uniform(-1, 1, (self.batch_size, self.channels, *self.spatial))
        self.label_tensor = np.zeros((self.batch_size, self.categories))
        classes = np.random.randint(0, self.categories, self.batch_size)
        self.label_tensor[np.arange(self.batch_size), classes] = 1

    def network(self, layer) -> list:
        """layer -> Flatten -> FullyConnected -> L2Loss, the course's gradient-check stack."""
        return [layer, Flatten(), FullyConnected(self.input_size, self.categories), L2Loss()]

    # -- construction ------------------------------------------------------------------
    def test_flags_and_initial_parameters(self):
        layer = BatchNormalization(4)
        assert layer.trainable is True
        assert layer.testing_phase is False
        np.testing.assert_array_equal(layer.weights, np.ones(4))
        np.testing.assert_array_equal(layer.bias, np.zeros(4))
        assert repr(layer) == "BatchNormalization(4)"

    def test_initialize_ignores_its_initializers(self):
        layer = BatchNormalization(3)
        layer.weights, layer.bias = np.full(3, 5.0), np.full(3, 7.0)
        layer.initialize(Constant(0.3), Constant(0.9))
        np.testing.assert_array_equal(layer.weights, np.ones(3))
        np.testing.assert_array_equal(layer.bias, np.zeros(3))

    @pytest.mark.parametrize("channels", [0, -2, 2.5, True, "3", None])
    def test_bad_channel_count_is_refused_naming_channels(self, channels):
        with pytest.raises(ValueError, match="channels"):
            BatchNormalization(channels)

    # -- training-phase forward ----------------------------------------------------------
    def test_forward_vector_shape_and_moments(self):
        output = BatchNormalization(self.input_size).forward(self.input_tensor)
        assert output.shape == self.input_tensor.shape
        mean, var = channel_moments(output)
        np.testing.assert_allclose(mean, 0.0, atol=1e-12)
        np.testing.assert_allclose(var, 1.0, atol=1e-9)

    def test_forward_image_shape_and_moments(self):
        output = BatchNormalization(self.channels).forward(self.input_tensor_conv)
        assert output.shape == self.input_tensor_conv.shape
        mean, var = channel_moments(output)
        np.testing.assert_allclose(mean, 0.0, atol=1e-12)
        np.testing.assert_allclose(var, 1.0, atol=1e-9)

    def test_forward_applies_gamma_and_beta(self):
        layer = BatchNormalization(self.channels)
        layer.weights, layer.bias = np.array([2.0, -0.5]), np.array([0.25, 3.0])
        output = layer.forward(self.input_tensor_conv)
        mean, var = channel_moments(self.input_tensor_conv)
        expected = reference_forward(self.input_tensor_conv, layer.weights, layer.bias, mean, var)
        np.testing.assert_allclose(output, expected, rtol=1e-12, atol=1e-12)

    def test_forward_one_dimensional_signals(self):
        x = np.random.standard_normal((6, 3, 7)) * 4 + 1
        output = BatchNormalization(3).forward(x)
        mean, var = channel_moments(x)
        expected = reference_forward(x, np.ones(3), np.zeros(3), mean, var)
        np.testing.assert_allclose(output, expected, atol=1e-12)

    def test_training_phase_always_uses_the_current_batch(self):
        layer = BatchNormalization(self.input_size)
        layer.forward(self.input_tensor)
        output = layer.forward(np.zeros_like(self.input_tensor))
        np.testing.assert_allclose(output, 0.0, atol=1e-12)  # a constant batch normalises to β = 0

    def test_large_offset_is_normalised_accurately(self):
        # mean 1e4, spread 1e-3: E[x²] − mean² keeps only about two significant digits
        x = 1e4 + 1e-3 * np.random.standard_normal((50, 3, 4, 4))
        layer = BatchNormalization(3)
        output = layer.forward(x)
        mean, var = channel_moments(output)
        input_var = x.transpose(1, 0, 2, 3).reshape(3, -1).var(axis=1)  # numpy's two-pass variance
        np.testing.assert_allclose(mean, 0.0, atol=1e-6)
        np.testing.assert_allclose(var, input_var / (input_var + EPSILON), rtol=1e-7)  # ε matters at var 1e-6
        np.testing.assert_allclose(layer.moving_variance, input_var, rtol=1e-7)

    # -- moving averages and the testing phase ---------------------------------------------
    def test_first_training_batch_sets_the_moving_averages(self):
        layer = BatchNormalization(self.channels)
        layer.forward(self.input_tensor_conv)
        mean, var = channel_moments(self.input_tensor_conv)
        np.testing.assert_allclose(layer.moving_mean, mean, rtol=1e-12)
        np.testing.assert_allclose(layer.moving_variance, var, rtol=1e-12)  # biased variance

    def test_moving_averages_decay_by_point_eight(self):
        layer = BatchNormalization(self.input_size)
        batches = [np.random.standard_normal((10, self.input_size)) * s + s for s in (1.0, 2.0, 3.0)]
        for batch in batches:
            layer.forward(batch)
        moments = [channel_moments(batch) for batch in batches]
        expected_mean = 0.8 * (0.8 * moments[0][0] + 0.2 * moments[1][0]) + 0.2 * moments[2][0]
        expected_var = 0.8 * (0.8 * moments[0][1] + 0.2 * moments[1][1]) + 0.2 * moments[2][1]
        np.testing.assert_allclose(layer.moving_mean, expected_mean, rtol=1e-12)
        np.testing.assert_allclose(layer.moving_variance, expected_var, rtol=1e-12)

    def test_testing_phase_uses_the_moving_averages(self):
        layer = BatchNormalization(self.input_size)
        layer.forward(self.input_tensor)
        layer.testing_phase = True
        output = layer.forward(np.zeros_like(self.input_tensor))
        mean, var = channel_moments(self.input_tensor)
        np.testing.assert_allclose(output, np.broadcast_to(-mean / np.sqrt(var), output.shape), rtol=1e-9)
        assert np.sum(np.var(output, axis=0)) == pytest.approx(0.0, abs=1e-20)

    def test_testing_phase_does_not_move_the_averages(self):
        layer = BatchNormalization(self.channels)
        layer.forward(self.input_tensor_conv)
        before = layer.moving_mean.copy(), layer.moving_variance.copy()
        layer.testing_phase = True
        first = layer.forward(self.input_tensor_conv + 5.0)
        second = layer.forward(self.input_tensor_conv + 5.0)
        np.testing.assert_array_equal(layer.moving_mean, before[0])
        np.testing.assert_array_equal(layer.moving_variance, before[1])
        np.testing.assert_array_equal(first, second)

    def test_testing_phase_image_matches_the_formula(self):
        layer = BatchNormalization(self.channels)
        layer.weights, layer.bias = np.array([1.5, 0.5]), np.array([-1.0, 2.0])
        layer.forward(self.input_tensor_conv)
        layer.forward(self.input_tensor_conv * 3 + 1)
        layer.testing_phase = True
        x = np.random.standard_normal(self.input_tensor_conv.shape)
        expected = reference_forward(x, layer.weights, layer.bias, layer.moving_mean, layer.moving_variance)
        np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)

    def test_testing_phase_before_any_training_uses_mean_zero_variance_one(self):
        layer = BatchNormalization(3)
        layer.testing_phase = True
        x = np.random.standard_normal((4, 3))
        np.testing.assert_allclose(layer.forward(x), x / np.sqrt(1 + EPSILON), rtol=1e-15)

    # -- reformat ----------------------------------------------------------------------------
    def test_reformat_image_to_vectors(self):
        layer = BatchNormalization(3)
        vectors = layer.reformat(np.arange(0, 5 * 3 * 6 * 4).reshape(5, 3, 6, 4))
        assert vectors.shape == (120, 3)
        assert np.sum(vectors, 1)[0] == 72
        assert np.sum(vectors, 0)[0] == 18660

    def test_reformat_vectors_to_the_last_image_shape(self):
        layer = BatchNormalization(3)
        layer.forward(np.arange(0, 5 * 3 * 6 * 4).reshape(5, 3, 6, 4))
        image = layer.reformat(np.arange(0, 5 * 3 * 6 * 4).reshape(120, 3))
        assert image.shape == (5, 3, 6, 4)
        assert np.sum(image, (0, 1, 2))[0] == 15750
        assert np.sum(image, (0, 2, 3))[0] == 21420

    def test_reformat_round_trip(self):
        layer = BatchNormalization(3)
        image = np.random.standard_normal((5, 3, 6, 4))
        np.testing.assert_array_equal(layer.reformat(layer.reformat(image)), image)

    def test_reformat_errors(self):
        layer = BatchNormalization(3)
        with pytest.raises(ShapeError, match="image input first"):
            layer.reformat(np.ones((12, 3)))
        layer.reformat(np.ones((2, 3, 2, 2)))
        with pytest.raises(ShapeError, match=r"\(8, 3\)"):
            layer.reformat(np.ones((9, 3)))
        with pytest.raises(ShapeError, match="channels"):
            layer.reformat(np.ones((2, 4, 2, 2)))

    # -- gradients -------------------------------------------------------------------------
    def test_gradient_vector(self):
        layers = self.network(BatchNormalization(self.input_size))
        assert gradient_check(layers, self.input_tensor, self.label_tensor) <= INPUT_TOLERANCE

    def test_gradient_image(self):
        layers = self.network(BatchNormalization(self.channels))
        assert gradient_check(layers, self.input_tensor_conv, self.label_tensor) <= INPUT_TOLERANCE

    @pytest.mark.parametrize("parameter", ["weights", "bias"])
    @pytest.mark.parametrize("layout", ["vector", "image"])
    def test_gradient_parameters(self, parameter, layout):
        channels, x = ((self.input_size, self.input_tensor) if layout == "vector"
                       else (self.channels, self.input_tensor_conv))
        layer = BatchNormalization(channels)
        layer.weights = np.random.uniform(0.5, 1.5, channels)  # away from the symmetric start
        layer.bias = np.random.uniform(-0.5, 0.5, channels)
        error = gradient_check_weights(self.network(layer), x, self.label_tensor, parameter=parameter)
        assert error <= PARAMETER_TOLERANCE

    def test_gradient_in_the_testing_phase(self):
        layer = BatchNormalization(self.channels)
        layer.forward(self.input_tensor_conv * 2 + 1)
        layer.testing_phase = True
        layers = self.network(layer)
        assert gradient_check(layers, self.input_tensor_conv, self.label_tensor) <= INPUT_TOLERANCE
        error = gradient_check_weights(layers, self.input_tensor_conv, self.label_tensor)
        assert error <= PARAMETER_TOLERANCE

    @pytest.mark.parametrize("layout", ["vector", "image"])
    def test_compute_bn_gradients_matches_backward(self, layout):
        channels, x = ((self.input_size, self.input_tensor) if layout == "vector"
                       else (self.channels, self.input_tensor_conv))
        layer = BatchNormalization(channels)
        layer.weights = np.random.uniform(0.5, 1.5, channels)
        layer.forward(x)
        error = np.random.standard_normal(x.shape)
        mean, var = channel_moments(x)
        expected = layer.backward(error)
        np.testing.assert_allclose(compute_bn_gradients(error, x, layer.weights, mean, var), expected,
                                   rtol=1e-10, atol=1e-12)
        if layout == "image":  # the course's way: on the (b*y*x, c) layout, then back
            helper = compute_bn_gradients(layer.reformat(error), layer.reformat(x), layer.weights, mean, var)
            np.testing.assert_allclose(layer.reformat(helper), expected, rtol=1e-10, atol=1e-12)

    def test_compute_bn_gradients_checks_its_arguments(self):
        with pytest.raises(ValueError, match="same"):
            compute_bn_gradients(np.ones((4, 2)), np.ones((4, 3)), np.ones(3), np.zeros(3), np.ones(3))
        with pytest.raises(ValueError, match="var has 2 entries"):
            compute_bn_gradients(np.ones((4, 3)), np.ones((4, 3)), np.ones(3), np.zeros(3), np.ones(2))

    # -- updates -------------------------------------------------------------------------
    def test_update_moves_away_from_normalised_output(self):
        layer = BatchNormalization(self.input_size)
        layer.optimizer = Sgd(1)
        for _ in range(10):
            output = layer.forward(self.input_tensor)
            layer.backward(-output)  # gradient descent on -0.5*|y|^2 grows the output
            new_output = layer.forward(self.input_tensor)
            assert np.sum(output**2) < np.sum(new_output**2)

    def test_sgd_update_uses_the_parameter_gradients(self):
        layer = BatchNormalization(self.channels)
        layer.optimizer = Sgd(0.1)
        layer.forward(self.input_tensor_conv)
        error = np.random.standard_normal(self.input_tensor_conv.shape)
        layer.backward(error)
        normalised = reference_forward(self.input_tensor_conv, np.ones(2), np.zeros(2),
                                       *channel_moments(self.input_tensor_conv))
        expected_gamma_gradient = np.sum(error * normalised, axis=(0, 2, 3))
        expected_beta_gradient = np.sum(error, axis=(0, 2, 3))
        np.testing.assert_allclose(layer.gradient_weights, expected_gamma_gradient, rtol=1e-10)
        np.testing.assert_allclose(layer.gradient_bias, expected_beta_gradient, rtol=1e-10)
        np.testing.assert_allclose(layer.weights, 1 - 0.1 * expected_gamma_gradient, rtol=1e-12)
        np.testing.assert_allclose(layer.bias, -0.1 * expected_beta_gradient, rtol=1e-12)

    def test_no_update_without_optimizer(self):
        layer = BatchNormalization(self.channels)
        layer.forward(self.input_tensor_conv)
        layer.backward(np.random.standard_normal(self.input_tensor_conv.shape))
        np.testing.assert_array_equal(layer.weights, np.ones(self.channels))
        np.testing.assert_array_equal(layer.bias, np.zeros(self.channels))
        assert layer.gradient_weights.shape == layer.gradient_bias.shape == (self.channels,)

    def test_weights_and_bias_get_separate_optimizer_copies(self):
        layer = BatchNormalization(self.channels)
        optimizer = Adam(1e-3, 0.9, 0.999)
        layer.optimizer = optimizer
        weights_optimizer = layer.parameter_optimizer("weights")
        bias_optimizer = layer.parameter_optimizer("bias")
        assert weights_optimizer is not bias_optimizer
        assert optimizer not in (weights_optimizer, bias_optimizer)
        layer.forward(self.input_tensor_conv)
        layer.backward(np.random.standard_normal(self.input_tensor_conv.shape))
        np.testing.assert_allclose(weights_optimizer.first_moment, 0.1 * layer.gradient_weights)
        np.testing.assert_allclose(bias_optimizer.first_moment, 0.1 * layer.gradient_bias)
        assert optimizer.first_moment is None

    def test_forward_uses_assigned_integer_parameters(self):
        layer = BatchNormalization(2)
        layer.weights, layer.bias = np.array([2, 3]), np.array([0, 1])
        output = layer.forward(self.input_tensor_conv)
        moments = channel_moments(self.input_tensor_conv)
        expected = reference_forward(self.input_tensor_conv, [2, 3], [0, 1], *moments)
        np.testing.assert_allclose(output, expected, rtol=1e-12, atol=1e-12)

    # -- dtypes and errors -------------------------------------------------------------------
    def test_dtypes(self):
        layer = BatchNormalization(self.channels)
        single = self.input_tensor_conv.astype(np.float32)
        output = layer.forward(single)
        assert output.dtype == np.float32
        np.testing.assert_allclose(output, BatchNormalization(self.channels).forward(self.input_tensor_conv),
                                   atol=1e-5)
        assert layer.backward(np.ones_like(single)).dtype == np.float32
        assert BatchNormalization(3).forward(np.arange(12).reshape(4, 3)).dtype == np.float64

    def test_wrong_channel_count_is_refused_naming_channels(self):
        with pytest.raises(ValueError, match="expects 3 channels but got 2"):
            BatchNormalization(3).forward(np.ones((4, 2)))
        with pytest.raises(ValueError, match="channels"):
            BatchNormalization(3).forward(np.ones((4, 2, 5, 5)))

    def test_wrong_rank_and_empty_batch_are_refused(self):
        with pytest.raises(ShapeError, match="BatchNormalization"):
            BatchNormalization(3).forward(np.ones(3))
        with pytest.raises(ShapeError, match="empty batch"):
            BatchNormalization(3).forward(np.ones((0, 3)))

    def test_backward_before_forward_is_a_clear_error(self):
        with pytest.raises(ShapeError, match="before forward"):
            BatchNormalization(3).backward(np.ones((4, 3)))

    def test_backward_with_a_wrong_shape_is_refused(self):
        layer = BatchNormalization(3)
        layer.forward(np.random.standard_normal((4, 3)))
        with pytest.raises(ShapeError, match=r"\(4, 3\)"):
            layer.backward(np.ones((5, 3)))

    def test_assigned_parameters_of_the_wrong_size_are_refused(self):
        layer = BatchNormalization(3)
        layer.weights = np.ones(4)
        with pytest.raises(ShapeError, match="weights has 4 entries"):
            layer.forward(np.ones((2, 3)))

    # -- registration ---------------------------------------------------------------------
    def test_hooks_register_the_layer_and_group(self):
        import corenet_batchnorm

        layers, groups = [], []
        corenet_batchnorm.corenet_register_layers(lambda cls, name=None, **tier: layers.append(cls))
        corenet_batchnorm.corenet_register_test_groups(lambda *args: groups.append(args))
        assert layers == [ReferenceBatchNormalization]
        assert [(name, weight) for name, _, weight in groups] == [("TestBatchNorm", 25)]

    def test_registry_lists_batchnorm_when_loaded(self):
        registry = corenet.get_registry()
        if "BatchNormalization" not in registry.layers:
            pytest.skip("corenet-batchnorm is not loaded (CORENET_LOAD_PLUGINS excludes it)")
        assert registry.layers["BatchNormalization"] is BatchNormalization


class TestBatchNormTorchParity:
    """Against torch.nn.BatchNorm1d/2d in float64 with the same ε.

    What differs: torch's running variance is the *unbiased* batch variance (×m/(m−1))
    and its running averages start at mean 0 / variance 1 with momentum 0.1; ours use
    the biased variance, the first training batch sets them, then 0.8·old + 0.2·new.
    Torch with momentum 1.0 for the first batch and 0.2 afterwards follows the same
    recurrence, so with equal batch sizes torch_running_var·(m−1)/m equals ours.
    """

    @staticmethod
    def torch_layer(torch, channels: int, ndim: int, gamma: np.ndarray, beta: np.ndarray):
        cls = torch.nn.BatchNorm1d if ndim in (2, 3) else torch.nn.BatchNorm2d
        module = cls(channels, eps=EPSILON, momentum=1.0).double()
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(gamma))
            module.bias.copy_(torch.from_numpy(beta))
        return module

    @pytest.mark.parametrize("shape", [(16, 5), (8, 3, 7), (6, 4, 5, 5)], ids=["1d", "1d-signal", "2d"])
    def test_training_mode_outputs_and_gradients(self, shape):
        torch = pytest.importorskip("torch")
        rng = np.random.RandomState(5)
        channels = shape[1]
        x = rng.standard_normal(shape) * 3 + 2
        error = rng.standard_normal(shape)
        gamma, beta = rng.uniform(0.5, 1.5, channels), rng.uniform(-1, 1, channels)
        layer = BatchNormalization(channels)
        layer.weights, layer.bias = gamma.copy(), beta.copy()
        output = layer.forward(x)
        previous = layer.backward(error)

        module = self.torch_layer(torch, channels, len(shape), gamma, beta)
        tx = torch.tensor(x, requires_grad=True)
        ty = module(tx)
        ty.backward(torch.from_numpy(error))
        np.testing.assert_allclose(output, ty.detach().numpy(), rtol=0, atol=TORCH_TOLERANCE)
        np.testing.assert_allclose(previous, tx.grad.numpy(), rtol=0, atol=TORCH_TOLERANCE)
        pairs = ((layer.gradient_weights, module.weight.grad), (layer.gradient_bias, module.bias.grad))
        for ours, theirs in pairs:
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=TORCH_TOLERANCE)

    @pytest.mark.parametrize("shape", [(16, 5), (6, 4, 5, 5)], ids=["1d", "2d"])
    @pytest.mark.parametrize("batches", [1, 3])
    def test_eval_mode_after_training(self, shape, batches):
        torch = pytest.importorskip("torch")
        rng = np.random.RandomState(11)
        channels = shape[1]
        count = shape[0] * int(np.prod(shape[2:]))  # values per channel in one batch
        gamma, beta = rng.uniform(0.5, 1.5, channels), rng.uniform(-1, 1, channels)
        layer = BatchNormalization(channels)
        layer.weights, layer.bias = gamma.copy(), beta.copy()
        module = self.torch_layer(torch, channels, len(shape), gamma, beta)
        for index in range(batches):
            x = rng.standard_normal(shape) * (index + 1) + index
            layer.forward(x)
            module(torch.from_numpy(x))
            module.momentum = 0.2  # after the first batch: running = 0.8*running + 0.2*batch
        np.testing.assert_allclose(layer.moving_mean, module.running_mean.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.moving_variance, module.running_var.numpy() * (count - 1) / count,
                                   rtol=1e-12)

        with torch.no_grad():  # give torch our biased moving variance, then compare eval outputs
            module.running_var.copy_(torch.from_numpy(layer.moving_variance))
        module.eval()
        layer.testing_phase = True
        x = rng.standard_normal(shape) * 2 - 1
        expected = module(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(layer.forward(x), expected, rtol=0, atol=TORCH_TOLERANCE)
