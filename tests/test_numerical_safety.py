"""Numerical safety: extreme logits, underflowed probabilities, constant channels, saturated
sigmoids and all-zero gradients give finite, correct numbers without floating-point warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from corenet.layers.activations import SoftMax
from corenet.losses import CrossEntropyLoss
from corenet.optimizers import Adam, Sgd, SgdWithMomentum

EPS = np.finfo(np.float64).eps
LOGITS = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [0.0, 1e4, -1e4], [5.0, -1e4, 1e4]])
LABELS = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0], [0, 0, 1.0]])  # rows 1 and 2: correct class ~ 0


@pytest.fixture
def strict():
    """Turn overflow, invalid and divide-by-zero (and any warning) into errors; underflow to 0 is fine."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


def softmax_cross_entropy(logits, labels):
    layer, loss = SoftMax(), CrossEntropyLoss()
    prediction = layer.forward(logits)
    value = loss.forward(prediction, labels)
    return prediction, value, layer.backward(loss.backward(labels))


@pytest.mark.usefixtures("strict")
class TestSoftMaxCrossEntropy:
    def test_logits_of_plus_minus_1e4_are_finite(self):
        prediction, value, error = softmax_cross_entropy(LOGITS, LABELS)
        assert np.all(np.isfinite(prediction)) and np.isfinite(value) and np.all(np.isfinite(error))
        np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-12)

    def test_loss_follows_the_contract(self):
        prediction, value, _ = softmax_cross_entropy(LOGITS, LABELS)
        expected = -np.sum(np.log(prediction[LABELS == 1] + EPS))
        assert value == pytest.approx(expected, rel=1e-12)
        # rows 0 and 3 are right (loss ~ 0), rows 1 and 2 capped at -log(eps) each
        assert value == pytest.approx(-2 * np.log(EPS), rel=1e-6)

    def test_gradient_is_prediction_minus_label_even_when_the_probability_underflowed(self):
        prediction, _, error = softmax_cross_entropy(LOGITS, LABELS)
        np.testing.assert_allclose(error, prediction - LABELS, rtol=0, atol=1e-12)
        assert error[1, 0] == pytest.approx(-1.0, abs=1e-12)
        assert error[2, 2] == pytest.approx(-1.0, abs=1e-12)

    def test_matches_torch_for_extreme_logits(self):
        torch = pytest.importorskip("torch")
        logits = torch.tensor(LOGITS, dtype=torch.float64, requires_grad=True)
        target = torch.from_numpy(LABELS.argmax(axis=1))
        torch.nn.functional.cross_entropy(logits, target, reduction="sum").backward()
        _, _, error = softmax_cross_entropy(LOGITS, LABELS)
        np.testing.assert_allclose(error, logits.grad.numpy(), rtol=0, atol=1e-12)

    def test_softmax_never_outputs_exact_zero(self):
        prediction = SoftMax().forward(np.array([[0.0, -800.0, -1e4]]))
        assert np.all(prediction > 0)
        assert prediction[0, 0] == 1.0
        assert prediction[0, 2] == np.finfo(np.float64).tiny

    def test_float32_stays_float32_and_finite(self):
        logits, labels = LOGITS.astype(np.float32), LABELS.astype(np.float32)
        prediction, value, error = softmax_cross_entropy(logits, labels)
        assert prediction.dtype == error.dtype == np.float32
        assert np.isfinite(value) and np.all(np.isfinite(error))
        np.testing.assert_allclose(error, prediction - labels, rtol=0, atol=1e-6)

    def test_exact_zero_prediction_into_the_loss_gives_a_finite_error(self):
        # a user's own last layer may output an exact 0 where the label is 1: no -inf, no warning
        loss = CrossEntropyLoss()
        prediction = np.array([[0.0, 1.0], [5e-324, 1.0], [0.25, 0.75]])
        labels = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
        assert np.isfinite(loss.forward(prediction, labels))
        error = loss.backward(labels)
        assert np.all(np.isfinite(error))
        tiny = np.finfo(np.float64).tiny
        np.testing.assert_array_equal(error[:, 0], [-1 / tiny, -1 / tiny, -4.0])
        np.testing.assert_array_equal(error[:, 1], 0.0)

    def test_normal_predictions_keep_the_exact_formula_without_eps(self):
        loss = CrossEntropyLoss()
        prediction = np.array([[1e-300, 1.0 - 1e-16], [0.3, 0.7]])
        labels = np.array([[1.0, 0.0], [0.0, 1.0]])
        loss.forward(prediction, labels)
        np.testing.assert_array_equal(loss.backward(labels), [[-1 / 1e-300, 0.0], [0.0, -1 / 0.7]])


@pytest.mark.usefixtures("strict")
class TestSigmoidSaturation:
    def test_no_overflow_beyond_700(self):
        from corenet_recurrent.activations import Sigmoid

        x = np.array([[-1e4, -800.0, -710.0, 0.0, 710.0, 800.0, 1e4]])
        layer = Sigmoid()
        y = layer.forward(x)
        assert np.all((y >= 0) & (y <= 1))
        np.testing.assert_array_equal(y[0, [0, 1, 5, 6]], [0.0, 0.0, 1.0, 1.0])
        assert y[0, 3] == 0.5
        error = layer.backward(np.ones_like(x))
        assert np.all(np.isfinite(error))
        np.testing.assert_array_equal(error[0, [0, 1, 5, 6]], 0.0)

    def test_float32_saturates_without_warnings(self):
        from corenet_recurrent.activations import Sigmoid, TanH

        x = np.array([[-1e4, -100.0, 100.0, 1e4]], dtype=np.float32)
        y = Sigmoid().forward(x)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, [[0.0, 0.0, 1.0, 1.0]], atol=1e-30)
        np.testing.assert_array_equal(TanH().forward(x), [[-1.0, -1.0, 1.0, 1.0]])


@pytest.mark.parametrize("tier", ["reference", "fast"])
class TestBatchNormalizationSingleSample:
    """A training batch with one value per channel has variance 0: both tiers refuse it (saying so) instead of
    setting the moving variance to 0; the testing phase takes single samples."""

    @staticmethod
    def layer(tier: str, channels: int = 4):
        from corenet.errors import RegistryError
        from corenet.plugins import get_registry

        try:
            return get_registry().implementation("layers", "BatchNormalization", tier)(channels)
        except RegistryError:
            pytest.skip(f"no {tier} BatchNormalization installed")

    @pytest.mark.parametrize("shape", [(1, 4), (1, 4, 1, 1), (1, 4, 1)])
    def test_training_batch_of_one_value_per_channel_is_refused(self, tier, shape):
        from corenet.errors import ShapeError

        layer = self.layer(tier)
        layer.forward(np.random.default_rng(0).normal(size=(8, 4)))
        before = layer.moving_mean.copy(), layer.moving_variance.copy()
        with pytest.raises(ShapeError, match=r"BatchNormalization\(4\): refusing a training batch of shape "
                                             r".*one value per channel.*moving variance to 0"):
            layer.forward(np.ones(shape))
        np.testing.assert_array_equal(layer.moving_mean, before[0])
        np.testing.assert_array_equal(layer.moving_variance, before[1])

    def test_one_image_with_several_pixels_and_the_testing_phase_are_fine(self, tier):
        layer = self.layer(tier)
        rng = np.random.default_rng(1)
        assert np.all(np.isfinite(layer.forward(rng.normal(size=(1, 4, 2, 3)))))  # 6 values per channel
        assert np.all(layer.moving_variance > 0)
        layer.testing_phase = True
        single = rng.normal(size=(1, 4))
        np.testing.assert_allclose(layer.forward(single),
                                   (single - layer.moving_mean) / np.sqrt(layer.moving_variance + layer.epsilon))


@pytest.mark.usefixtures("strict")
class TestBatchNormalizationConstantChannel:
    """A channel whose values are all equal (variance 0) normalises to beta with finite gradients."""

    @staticmethod
    def layer_and_input(shape, constant=7.5):
        from corenet_batchnorm.batchnorm import BatchNormalization

        np.random.seed(3)
        x = np.random.standard_normal(shape)
        x[:, 1] = constant
        layer = BatchNormalization(shape[1])
        layer.weights = np.array([1.5, 2.0, 0.5][: shape[1]])
        layer.bias = np.array([0.1, -0.3, 0.2][: shape[1]])
        return layer, x

    @pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 3)])
    @pytest.mark.parametrize("constant", [0.0, 7.5, 1e8])
    def test_forward_gives_beta_and_backward_is_finite(self, shape, constant):
        layer, x = self.layer_and_input(shape, constant)
        y = layer.forward(x)
        np.testing.assert_array_equal(y[:, 1], -0.3)
        assert np.all(np.isfinite(y))
        error = np.random.standard_normal(shape)
        gradient = layer.backward(error)
        assert np.all(np.isfinite(gradient))
        assert layer.gradient_weights[1] == 0.0  # x_hat is 0 on the constant channel
        assert layer.gradient_bias[1] == pytest.approx(error[:, 1].sum(), rel=1e-12)
        # on the constant channel d/dx = gamma / sqrt(eps) * (E - mean(E)): large but exact and finite
        centred = error[:, 1] - error[:, 1].mean()
        np.testing.assert_allclose(gradient[:, 1], 2.0 / np.sqrt(layer.epsilon) * centred, rtol=1e-9)

    def test_testing_phase_after_a_constant_batch(self):
        layer, x = self.layer_and_input((6, 3))
        layer.forward(x)
        assert layer.moving_variance[1] == 0.0
        layer.testing_phase = True
        y = layer.forward(x)
        assert np.all(np.isfinite(y))
        np.testing.assert_allclose(y[:, 1], -0.3, atol=1e-9)

    def test_matches_torch(self):
        torch = pytest.importorskip("torch")
        layer, x = self.layer_and_input((6, 3), constant=2.0)
        error = np.random.standard_normal(x.shape)
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        gamma = torch.tensor(layer.weights, dtype=torch.float64, requires_grad=True)
        beta = torch.tensor(layer.bias, dtype=torch.float64, requires_grad=True)
        ty = torch.nn.functional.batch_norm(tx, None, None, gamma, beta, training=True, eps=layer.epsilon)
        ty.backward(torch.from_numpy(error))
        np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=1e-9, atol=1e-12)
        gradient = layer.backward(error)
        scale = np.abs(tx.grad.numpy()).max()
        np.testing.assert_allclose(gradient, tx.grad.numpy(), rtol=1e-6, atol=1e-9 * scale)
        np.testing.assert_allclose(layer.gradient_weights, gamma.grad.numpy(), atol=1e-9)
        np.testing.assert_allclose(layer.gradient_bias, beta.grad.numpy(), rtol=1e-12)


@pytest.mark.usefixtures("strict")
class TestZeroGradients:
    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    def test_adam_leaves_weights_unchanged(self, dtype):
        adam = Adam(1e-3, 0.9, 0.999)
        weights = np.linspace(-1, 1, 12, dtype=dtype).reshape(3, 4)
        current = weights
        for _ in range(5):  # the first step and the in-place path after it
            current = adam.calculate_update(current, np.zeros_like(weights))
            np.testing.assert_array_equal(current, weights)
            assert current.dtype == dtype
        assert np.all(adam.first_moment == 0) and np.all(adam.second_moment == 0)

    def test_adam_scalar_zero_gradient(self):
        assert Adam(0.1).calculate_update(2.5, 0.0) == 2.5

    def test_adam_with_zeros_then_gradients_matches_torch(self):
        torch = pytest.importorskip("torch")
        gradients = [np.zeros(4), np.zeros(4), np.array([0.5, -1.0, 0.0, 2.0]), np.zeros(4),
                     np.array([1e-20, -3.0, 0.0, 0.1])]
        weights = np.array([0.3, -0.2, 1.0, 0.0])
        parameter = torch.tensor(weights.copy(), dtype=torch.float64, requires_grad=True)
        reference = torch.optim.Adam([parameter], lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
        adam = Adam(1e-2, 0.9, 0.999)
        for gradient in gradients:
            weights = adam.calculate_update(weights, gradient)
            parameter.grad = torch.from_numpy(gradient.copy())
            reference.step()
            np.testing.assert_allclose(weights, parameter.detach().numpy(), rtol=1e-12, atol=1e-15)

    @pytest.mark.parametrize("optimizer", [Sgd(0.1), SgdWithMomentum(0.1, 0.9)])
    def test_plain_and_momentum_sgd(self, optimizer):
        weights = np.array([1.0, -2.0])
        for _ in range(3):
            weights = optimizer.calculate_update(weights, np.zeros(2))
        np.testing.assert_array_equal(weights, [1.0, -2.0])
