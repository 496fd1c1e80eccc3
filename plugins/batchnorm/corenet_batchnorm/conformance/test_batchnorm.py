"""Conformance group TestBatchNorm: vectors, images, moving averages, reformat, gradients, updates.

Tests ``impl("BatchNormalization")``. Contract: what the exercise asks (γ = ``weights``,
β = ``bias``, ``gradient_weights``/``gradient_bias``, ``reformat``, the phases, updates
through ``optimizer``). Reference: several training steps with Sgd, momentum and Adam
beside corenet's reference layer and PyTorch, the moving averages, and named bugs
(parameters that never move, one optimizer shared by γ and β, a wrong moving average).
Corenet: corenet's extras (argument checks, wording, dtypes, other shapes, helpers).
"""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.checking.expect import expect, expect_close, expect_equal, expect_gradient, expect_shape, fail
from corenet.checking.probes import Tracked, shared_optimizer
from corenet.errors import ShapeError
from corenet.initializers import Constant
from corenet.optimizers import Adam, Sgd, SgdWithMomentum
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

pytestmark = pytest.mark.contract
EPSILON = 1e-11  # the exercise asks for ε < 1e-10; results below are insensitive to its exact value
INPUT_TOLERANCE = 1e-5
PARAMETER_TOLERANCE = 1e-6
TORCH_TOLERANCE = 1e-7
AGREEMENT = {"rtol": 1e-8, "atol": 1e-10}
#: optimizer id -> a fresh optimizer (each test gets its own); named as the course names the class
NAMES = {"sgd": "Sgd", "momentum": "SgdWithMomentum", "adam": "Adam"}
OPTIMIZERS = {
    "sgd": lambda: Sgd(0.1),
    "momentum": lambda: SgdWithMomentum(0.1, 0.9),
    "adam": lambda: Adam(0.05, 0.9, 0.999),
}


@pytest.fixture
def BatchNormalization(impl):
    return impl("BatchNormalization")


def channel_moments(tensor: np.ndarray, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and variance of (b, c) or (b, c, y, x), via the (b*y*x, c) layout."""
    tensor = np.asarray(tensor, dtype=np.float64)
    if tensor.ndim > 2:
        tensor = np.moveaxis(tensor, 1, -1).reshape(-1, tensor.shape[1])
    return tensor.mean(axis=0), tensor.var(axis=0, ddof=ddof)


def normalize(x: np.ndarray, gamma, beta, mean, var) -> np.ndarray:
    """γ (x − mean) / sqrt(var + ε) + β with per-channel statistics, written out directly."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    normalized = (x - np.reshape(mean, shape)) / np.sqrt(np.reshape(var, shape) + EPSILON)
    return np.reshape(gamma, shape) * normalized + np.reshape(beta, shape)


def moving_average_candidates(batches: list[np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(mean, variance) a testing phase may use after training on ``batches``: API.md's and common mistakes."""
    moments = [channel_moments(b) for b in batches]

    def decayed(old_weight: float, first_variance=None, ddof: int = 0):
        stats = [channel_moments(b, ddof) for b in batches]
        mean, var = stats[0][0], stats[0][1] if first_variance is None else first_variance
        for m, v in stats[1:]:
            mean, var = old_weight * mean + (1 - old_weight) * m, old_weight * var + (1 - old_weight) * v
        return mean, var

    return {
        "api": decayed(0.8),
        "the moving averages weight the new batch by 0.8 and the old average by 0.2 (swapped: moving = 0.8 moving "
        "+ 0.2 batch)": decayed(0.2),
        "the testing phase uses the last training batch's statistics, not a moving average (moving = 0.8 moving "
        "+ 0.2 batch)": moments[-1],
        "the moving averages never change after the first training batch (moving = 0.8 moving + 0.2 batch)":
            moments[0],
        "the first training batch set the moving variance to its standard deviation; use the variance":
            decayed(0.8, np.sqrt(moments[0][1])),
        "the moving variance uses the unbiased batch variance (ddof=1); use the biased one (np.var)":
            decayed(0.8, ddof=1),
    }


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

    def network(self, impl, layer) -> list:
        """layer -> Flatten -> FullyConnected -> L2Loss (corenet's), the course's gradient-check stack."""
        fully_connected = impl.reference("FullyConnected")(self.input_size, self.categories)
        return [layer, impl.reference("Flatten")(), fully_connected, L2Loss()]

    def layout(self, layout: str) -> tuple[int, np.ndarray]:
        return (self.input_size, self.input_tensor) if layout == "vector" else (self.channels, self.input_tensor_conv)

    # == contract ====================================================================================
    def test_flags_and_initial_parameters(self, BatchNormalization):
        layer = BatchNormalization(4)
        expect_equal(getattr(layer, "trainable", None), True, "BatchNormalization(4).trainable",
                     "the layer has trainable parameters")
        expect_equal(getattr(layer, "testing_phase", None), False, "BatchNormalization(4).testing_phase")
        expect_close(layer.weights, np.ones(4), "weights (γ) after construction", "γ starts at ones", rtol=0, atol=0)
        expect_close(layer.bias, np.zeros(4), "bias (β) after construction", "β starts at zeros", rtol=0, atol=0)

    def test_initialize_ignores_its_initializers(self, BatchNormalization):
        layer = BatchNormalization(3)
        layer.weights, layer.bias = np.full(3, 5.0), np.full(3, 7.0)
        layer.initialize(Constant(0.3), Constant(0.9))
        expect_close(layer.weights, np.ones(3), "weights after initialize(Constant(0.3), Constant(0.9))",
                     "initialize always sets γ to ones, whatever initializer it gets", rtol=0, atol=0)
        expect_close(layer.bias, np.zeros(3), "bias after initialize(Constant(0.3), Constant(0.9))",
                     "initialize always sets β to zeros", rtol=0, atol=0)

    @pytest.mark.parametrize("layout", ["vector", "image"])
    def test_forward_normalizes_every_channel(self, BatchNormalization, layout):
        channels, x = self.layout(layout)
        output = BatchNormalization(channels).forward(x)
        expect_shape(output, x.shape, f"forward output for a {layout} input")
        mean, var = channel_moments(output)
        expect_close(mean, np.zeros(channels), f"per-channel mean of the output ({layout})", rtol=0, atol=1e-10)
        expect_close(var, np.ones(channels), f"per-channel variance of the output ({layout})",
                     "normalize with the batch's mean and (biased) variance, ε < 1e-10", rtol=0, atol=1e-8)

    def test_forward_applies_gamma_and_beta(self, BatchNormalization):
        layer = BatchNormalization(self.channels)
        layer.weights, layer.bias = np.array([2.0, -0.5]), np.array([0.25, 3.0])
        x = self.input_tensor_conv
        expect_close(layer.forward(x), normalize(x, layer.weights, layer.bias, *channel_moments(x)),
                     "forward output with assigned weights γ and bias β", "output = γ·x̂ + β, per channel",
                     rtol=1e-9, atol=1e-10)

    def test_training_phase_always_uses_the_current_batch(self, BatchNormalization):
        layer = BatchNormalization(self.input_size)
        layer.forward(self.input_tensor)
        expect_close(layer.forward(np.zeros_like(self.input_tensor)), np.zeros_like(self.input_tensor),
                     "training-phase output for a constant batch after another batch",
                     "the training phase normalizes with the current batch's statistics", rtol=0, atol=1e-10)

    @pytest.mark.parametrize("layout", ["vector", "image"])
    def test_testing_phase_uses_the_training_statistics(self, BatchNormalization, layout):
        """The course's test: train on one batch, then the testing phase normalizes that batch the same way."""
        channels, x = self.layout(layout)
        layer = BatchNormalization(channels)
        layer.forward(x)
        layer.testing_phase = True
        output = layer.forward(x)
        mean, var = channel_moments(output)
        expect_close(mean, np.zeros(channels), f"per-channel mean of the testing-phase output ({layout})",
                     "after one training batch the moving mean and variance are that batch's", rtol=0, atol=1e-8)
        expect_close(var, np.ones(channels), f"per-channel variance of the testing-phase output ({layout})",
                     rtol=0, atol=1e-6)
        expect_close(layer.forward(np.zeros_like(x)), normalize(np.zeros_like(x), 1, 0, *channel_moments(x)),
                     f"testing-phase output for zeros ({layout})", "the testing phase uses the stored statistics, "
                     "not the current batch's", rtol=1e-8, atol=1e-10)

    def test_reformat_image_to_vectors(self, BatchNormalization):
        vectors = BatchNormalization(3).reformat(np.arange(0, 5 * 3 * 6 * 4).reshape(5, 3, 6, 4))
        expect_shape(vectors, (120, 3), "reformat of a (5, 3, 6, 4) image", "(b, c, y, x) -> (b·y·x, c)")
        expect_equal(int(np.sum(vectors, 1)[0]), 72, "sum of the first row of reformat(image)",
                     "each row holds one pixel's c channel values")
        expect_equal(int(np.sum(vectors, 0)[0]), 18660, "sum of the first column of reformat(image)")

    def test_reformat_vectors_to_the_last_image_shape(self, BatchNormalization):
        layer = BatchNormalization(3)
        layer.forward(np.arange(0, 5 * 3 * 6 * 4).reshape(5, 3, 6, 4).astype(float))
        image = layer.reformat(np.arange(0, 5 * 3 * 6 * 4).reshape(120, 3))
        expect_shape(image, (5, 3, 6, 4), "reformat of a (120, 3) vector after a (5, 3, 6, 4) input")
        expect_equal(int(np.sum(image, (0, 1, 2))[0]), 15750, "sum over axes (0, 1, 2) of reformat(vector)")
        expect_equal(int(np.sum(image, (0, 2, 3))[0]), 21420, "sum over axes (0, 2, 3) of reformat(vector)")

    def test_reformat_round_trip(self, BatchNormalization):
        layer = BatchNormalization(3)
        image = np.random.standard_normal((5, 3, 6, 4))
        expect_close(layer.reformat(layer.reformat(image)), image, "reformat(reformat(image))", rtol=0, atol=0)

    @pytest.mark.parametrize("layout", ["vector", "image"])
    def test_gradient_input(self, BatchNormalization, impl, layout):
        channels, x = self.layout(layout)
        layers = self.network(impl, BatchNormalization(channels))
        expect_gradient(gradient_check(layers, x, self.label_tensor), f"the error backward returns ({layout})",
                        tolerance=INPUT_TOLERANCE)

    @pytest.mark.parametrize("parameter", ["weights", "bias"])
    @pytest.mark.parametrize("layout", ["vector", "image"])
    def test_gradient_parameters(self, BatchNormalization, impl, parameter, layout):
        channels, x = self.layout(layout)
        layer = BatchNormalization(channels)
        layer.weights = np.random.uniform(0.5, 1.5, channels)  # away from the symmetric start
        layer.bias = np.random.uniform(-0.5, 0.5, channels)
        error = gradient_check_weights(self.network(impl, layer), x, self.label_tensor, parameter=parameter)
        expect_gradient(error, f"gradient_{parameter} ({layout})", "forward must use the assigned weights/bias",
                        tolerance=PARAMETER_TOLERANCE)

    def test_no_update_without_optimizer(self, BatchNormalization):
        layer = BatchNormalization(self.channels)
        layer.forward(self.input_tensor_conv)
        layer.backward(np.random.standard_normal(self.input_tensor_conv.shape))
        expect_close(layer.weights, np.ones(self.channels), "weights after backward without an optimizer",
                     "update only when an optimizer is set", rtol=0, atol=0)
        expect_close(layer.bias, np.zeros(self.channels), "bias after backward without an optimizer", rtol=0, atol=0)

    def test_sgd_updates_weights_and_bias(self, BatchNormalization):
        layer = BatchNormalization(self.channels)
        layer.optimizer = Sgd(0.1)
        x = self.input_tensor_conv
        layer.forward(x)
        error = np.random.standard_normal(x.shape)
        layer.backward(error)
        normalized = normalize(x, np.ones(2), np.zeros(2), *channel_moments(x))
        expect_close(layer.gradient_weights, np.sum(error * normalized, axis=(0, 2, 3)), "gradient_weights (∂γ)",
                     "∂γ = Σ error·x̂ per channel", rtol=1e-8, atol=1e-10)
        expect_close(layer.gradient_bias, np.sum(error, axis=(0, 2, 3)), "gradient_bias (∂β)",
                     "∂β = Σ error per channel", rtol=1e-8, atol=1e-10)
        hint = "backward sets weights and bias to what the optimizer's calculate_update returns"
        expect_close(layer.weights, 1 - 0.1 * layer.gradient_weights, "weights after one Sgd(0.1) step", hint,
                     rtol=1e-10, atol=1e-12)
        expect_close(layer.bias, -0.1 * layer.gradient_bias, "bias after one Sgd(0.1) step", hint, rtol=1e-10,
                     atol=1e-12)

    def test_training_grows_the_output(self, BatchNormalization):
        """The course's update test: descending on -0.5 |y|^2 must grow the output every step."""
        layer = BatchNormalization(self.input_size)
        layer.optimizer = Sgd(1)
        for step in range(10):
            output = np.array(layer.forward(self.input_tensor))
            layer.backward(-output)
            grown = np.asarray(layer.forward(self.input_tensor))
            expect(np.sum(grown**2) > np.sum(output**2), f"training step {step + 1} on the error -output did not "
                   f"grow the output: backward must update γ and β with the optimizer")

    # == reference ===================================================================================
    @pytest.mark.reference
    @pytest.mark.parametrize("layout", ["vector", "image"])
    @pytest.mark.parametrize("kind", list(OPTIMIZERS))
    def test_training_agrees_with_the_reference(self, BatchNormalization, impl, kind, layout):
        channels, x = self.layout(layout)
        layer, twin = BatchNormalization(channels), impl.reference("BatchNormalization")(channels)
        log: list = []
        layer.optimizer = Tracked(OPTIMIZERS[kind](), log)
        twin.optimizer = OPTIMIZERS[kind]()
        rng = np.random.default_rng(5)
        steps = 4
        for step in range(1, steps + 1):
            batch = x * (1 + 0.5 * step) + step
            hint = f"with {NAMES[kind]}, step {step} of {steps}, {layout} input"
            expected = twin.forward(batch)
            expect_close(layer.forward(batch), expected, f"forward output ({hint})", **AGREEMENT)
            error = rng.standard_normal(batch.shape)
            before = np.array(layer.weights, dtype=float), np.array(layer.bias, dtype=float)
            del log[:]
            try:
                gradient = layer.backward(error)
            except Exception:
                problem = shared_optimizer(log)
                if problem:
                    fail(problem)
                raise
            problem = shared_optimizer(log)
            if problem:
                fail(problem)
            expect_close(gradient, twin.backward(error), f"backward output ({hint})", **AGREEMENT)
            expect_close(layer.gradient_weights, twin.gradient_weights, f"gradient_weights ({hint})", **AGREEMENT)
            expect_close(layer.gradient_bias, twin.gradient_bias, f"gradient_bias ({hint})", **AGREEMENT)
            if np.array_equal(layer.weights, before[0]) and np.array_equal(layer.bias, before[1]):
                fail(f"BatchNormalization parameters never move under {NAMES[kind]}: weights (γ) and bias (β) are "
                     f"unchanged after backward with an optimizer; assign what optimizer.calculate_update returns")
            expect_close(layer.weights, twin.weights, f"weights (γ) after the update ({hint})", **AGREEMENT)
            expect_close(layer.bias, twin.bias, f"bias (β) after the update ({hint})", **AGREEMENT)

    @pytest.mark.reference
    @pytest.mark.parametrize("layout", ["vector", "image"])
    def test_moving_averages_agree_with_the_reference(self, BatchNormalization, impl, layout):
        channels, x = self.layout(layout)
        layer, twin = BatchNormalization(channels), impl.reference("BatchNormalization")(channels)
        batches = [x * scale + scale for scale in (1.0, 2.0, 3.0)]
        for batch in batches:
            layer.forward(batch)
            twin.forward(batch)
        layer.testing_phase = twin.testing_phase = True
        probe = np.random.default_rng(1).standard_normal(x.shape)
        output = np.asarray(layer.forward(probe), dtype=np.float64)
        expected = twin.forward(probe)
        if not np.allclose(output, expected, **AGREEMENT):
            for mistake, (mean, var) in moving_average_candidates(batches).items():
                if mistake != "api" and np.allclose(output, normalize(probe, 1, 0, mean, var), **AGREEMENT):
                    fail(f"wrong moving average: {mistake}")
        expect_close(output, expected, f"testing-phase output after 3 training batches ({layout})",
                     "moving = 0.8·moving + 0.2·batch (biased variance), the first batch setting them", **AGREEMENT)
        expect_close(layer.forward(probe + 5.0), twin.forward(probe + 5.0), "a second testing-phase output",
                     "the testing phase must not change the moving averages", **AGREEMENT)

    @pytest.mark.reference
    def test_testing_phase_backward_agrees_with_the_reference(self, BatchNormalization, impl):
        layer, twin = BatchNormalization(self.channels), impl.reference("BatchNormalization")(self.channels)
        for bn in (layer, twin):
            bn.forward(self.input_tensor_conv * 2 + 1)
            bn.testing_phase = True
            bn.forward(self.input_tensor_conv)
        error = np.random.standard_normal(self.input_tensor_conv.shape)
        expect_close(layer.backward(error), twin.backward(error), "backward output in the testing phase",
                     "with fixed statistics the input gradient is γ/sqrt(var + ε) times the error", **AGREEMENT)
        expect_close(layer.gradient_weights, twin.gradient_weights, "gradient_weights in the testing phase",
                     **AGREEMENT)

    @pytest.mark.reference
    @pytest.mark.parametrize("shape", [(16, 5), (6, 4, 5, 5)], ids=["1d", "2d"])
    def test_training_mode_agrees_with_torch(self, BatchNormalization, shape):
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
        module = torch_layer(torch, channels, len(shape), gamma, beta)
        tx = torch.tensor(x, requires_grad=True)
        module(tx).backward(torch.from_numpy(error))
        expect_close(output, module(torch.from_numpy(x)).detach().numpy(), "forward output vs torch", rtol=0,
                     atol=TORCH_TOLERANCE)
        expect_close(previous, tx.grad.numpy(), "backward output vs torch", rtol=0, atol=TORCH_TOLERANCE)
        expect_close(layer.gradient_weights, module.weight.grad.numpy(), "gradient_weights vs torch", rtol=0,
                     atol=TORCH_TOLERANCE)
        expect_close(layer.gradient_bias, module.bias.grad.numpy(), "gradient_bias vs torch", rtol=0,
                     atol=TORCH_TOLERANCE)

    @pytest.mark.reference
    @pytest.mark.parametrize("shape", [(16, 5), (6, 4, 5, 5)], ids=["1d", "2d"])
    def test_testing_phase_agrees_with_torch_after_training(self, BatchNormalization, shape):
        """torch with momentum 1.0 for the first batch and 0.2 after follows moving = 0.8 old + 0.2 new; its
        running variance is unbiased (×m/(m−1)), ours biased, so torch gets ours before eval."""
        torch = pytest.importorskip("torch")
        rng = np.random.RandomState(11)
        channels = shape[1]
        count = shape[0] * int(np.prod(shape[2:]))  # values per channel in one batch
        gamma, beta = rng.uniform(0.5, 1.5, channels), rng.uniform(-1, 1, channels)
        layer = BatchNormalization(channels)
        layer.weights, layer.bias = gamma.copy(), beta.copy()
        module = torch_layer(torch, channels, len(shape), gamma, beta)
        for index in range(3):
            x = rng.standard_normal(shape) * (index + 1) + index
            layer.forward(x)
            module(torch.from_numpy(x))
            module.momentum = 0.2
        with torch.no_grad():
            module.running_var.mul_((count - 1) / count)
        module.eval()
        layer.testing_phase = True
        x = rng.standard_normal(shape) * 2 - 1
        expect_close(layer.forward(x), module(torch.from_numpy(x)).detach().numpy(),
                     "testing-phase output after 3 training batches vs torch", rtol=0, atol=TORCH_TOLERANCE)

    # == corenet extras ==============================================================================
    @pytest.mark.corenet
    def test_repr_and_bad_channel_counts(self, BatchNormalization):
        assert repr(BatchNormalization(4)) == "BatchNormalization(4)"
        for channels in [0, -2, 2.5, True, "3", None]:
            with pytest.raises(ValueError, match="channels"):
                BatchNormalization(channels)

    @pytest.mark.corenet
    def test_forward_one_dimensional_signals(self, BatchNormalization):
        x = np.random.standard_normal((6, 3, 7)) * 4 + 1
        output = BatchNormalization(3).forward(x)
        np.testing.assert_allclose(output, normalize(x, np.ones(3), np.zeros(3), *channel_moments(x)), atol=1e-12)

    @pytest.mark.corenet
    def test_large_offset_is_normalised_accurately(self, BatchNormalization):
        # mean 1e4, spread 1e-3: E[x²] − mean² keeps only about two significant digits
        x = 1e4 + 1e-3 * np.random.standard_normal((50, 3, 4, 4))
        layer = BatchNormalization(3)
        output = layer.forward(x)
        mean, var = channel_moments(output)
        input_var = x.transpose(1, 0, 2, 3).reshape(3, -1).var(axis=1)  # numpy's two-pass variance
        np.testing.assert_allclose(mean, 0.0, atol=1e-6)
        np.testing.assert_allclose(var, input_var / (input_var + layer.epsilon), rtol=1e-7)
        np.testing.assert_allclose(layer.moving_variance, input_var, rtol=1e-7)

    @pytest.mark.corenet
    def test_moving_average_attributes(self, BatchNormalization):
        layer = BatchNormalization(self.input_size)
        batches = [np.random.standard_normal((10, self.input_size)) * s + s for s in (1.0, 2.0, 3.0)]
        for batch in batches:
            layer.forward(batch)
        expected_mean, expected_var = moving_average_candidates(batches)["api"]
        np.testing.assert_allclose(layer.moving_mean, expected_mean, rtol=1e-12)
        np.testing.assert_allclose(layer.moving_variance, expected_var, rtol=1e-12)

    @pytest.mark.corenet
    def test_testing_phase_before_any_training_uses_mean_zero_variance_one(self, BatchNormalization):
        layer = BatchNormalization(3)
        layer.testing_phase = True
        x = np.random.standard_normal((4, 3))
        np.testing.assert_allclose(layer.forward(x), x / np.sqrt(1 + layer.epsilon), rtol=1e-15)

    @pytest.mark.corenet
    def test_reformat_errors(self, BatchNormalization):
        layer = BatchNormalization(3)
        with pytest.raises(ShapeError, match="image input first"):
            layer.reformat(np.ones((12, 3)))
        layer.reformat(np.ones((2, 3, 2, 2)))
        with pytest.raises(ShapeError, match=r"\(8, 3\)"):
            layer.reformat(np.ones((9, 3)))
        with pytest.raises(ShapeError, match="channels"):
            layer.reformat(np.ones((2, 4, 2, 2)))

    @pytest.mark.corenet
    @pytest.mark.parametrize("layout", ["vector", "image"])
    def test_compute_bn_gradients_matches_backward(self, BatchNormalization, layout):
        from corenet_batchnorm.functional import compute_bn_gradients

        channels, x = self.layout(layout)
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

    @pytest.mark.corenet
    def test_compute_bn_gradients_checks_its_arguments(self, BatchNormalization):
        from corenet_batchnorm.functional import compute_bn_gradients

        with pytest.raises(ValueError, match="same"):
            compute_bn_gradients(np.ones((4, 2)), np.ones((4, 3)), np.ones(3), np.zeros(3), np.ones(3))
        with pytest.raises(ValueError, match="var has 2 entries"):
            compute_bn_gradients(np.ones((4, 3)), np.ones((4, 3)), np.ones(3), np.zeros(3), np.ones(2))

    @pytest.mark.corenet
    def test_weights_and_bias_get_separate_optimizer_copies(self, BatchNormalization):
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

    @pytest.mark.corenet
    def test_forward_uses_assigned_integer_parameters(self, BatchNormalization):
        layer = BatchNormalization(2)
        layer.weights, layer.bias = np.array([2, 3]), np.array([0, 1])
        output = layer.forward(self.input_tensor_conv)
        expected = normalize(self.input_tensor_conv, [2, 3], [0, 1], *channel_moments(self.input_tensor_conv))
        np.testing.assert_allclose(output, expected, rtol=1e-12, atol=1e-12)

    @pytest.mark.corenet
    def test_dtypes(self, BatchNormalization):
        layer = BatchNormalization(self.channels)
        single = self.input_tensor_conv.astype(np.float32)
        output = layer.forward(single)
        assert output.dtype == np.float32
        np.testing.assert_allclose(output, BatchNormalization(self.channels).forward(self.input_tensor_conv),
                                   atol=1e-5)
        assert layer.backward(np.ones_like(single)).dtype == np.float32
        assert BatchNormalization(3).forward(np.arange(12).reshape(4, 3)).dtype == np.float64

    @pytest.mark.corenet
    def test_bad_inputs_are_refused_naming_the_problem(self, BatchNormalization):
        with pytest.raises(ValueError, match="expects 3 channels but got 2"):
            BatchNormalization(3).forward(np.ones((4, 2)))
        with pytest.raises(ValueError, match="channels"):
            BatchNormalization(3).forward(np.ones((4, 2, 5, 5)))
        with pytest.raises(ShapeError, match="BatchNormalization"):
            BatchNormalization(3).forward(np.ones(3))
        with pytest.raises(ShapeError, match="empty batch"):
            BatchNormalization(3).forward(np.ones((0, 3)))
        with pytest.raises(ShapeError, match="before forward"):
            BatchNormalization(3).backward(np.ones((4, 3)))
        layer = BatchNormalization(3)
        layer.forward(np.random.standard_normal((4, 3)))
        with pytest.raises(ShapeError, match=r"\(4, 3\)"):
            layer.backward(np.ones((5, 3)))
        layer = BatchNormalization(3)
        layer.weights = np.ones(4)
        with pytest.raises(ShapeError, match="weights has 4 entries"):
            layer.forward(np.ones((2, 3)))

    @pytest.mark.corenet
    def test_hooks_register_the_layer_and_group(self, BatchNormalization):
        import corenet_batchnorm
        from corenet_batchnorm.batchnorm import BatchNormalization as Reference

        layers, groups = [], []
        corenet_batchnorm.corenet_register_layers(lambda cls, name=None, **tier: layers.append(cls))
        corenet_batchnorm.corenet_register_test_groups(lambda *args, **names: groups.append(args))
        assert layers == [Reference]
        assert [(name, weight) for name, _, weight in groups] == [("TestBatchNorm", 25)]
        assert corenet.get_registry().name_of(BatchNormalization) == "BatchNormalization"


def torch_layer(torch, channels: int, ndim: int, gamma: np.ndarray, beta: np.ndarray):
    """torch.nn.BatchNorm1d/2d in float64 with our ε and γ, β; momentum 1.0 (the first batch sets the averages)."""
    cls = torch.nn.BatchNorm1d if ndim in (2, 3) else torch.nn.BatchNorm2d
    module = cls(channels, eps=EPSILON, momentum=1.0).double()
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(gamma))
        module.bias.copy_(torch.from_numpy(beta))
    return module
