"""Conformance group TestOptimizers: Sgd, SgdWithMomentum, Adam and the regularizer slot."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import corenet
from corenet.optimizers import Optimizer, Sgd, SgdWithMomentum
from corenet.testing import ReferenceL2

Adam = corenet.get_registry().optimizers["Adam"]  # selected; CORENET_IMPL picks the tier


def quadratic_gradient(weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Gradient of 0.5 * sum((w - target)^2 * scale) with a fixed per-entry scale."""
    scale = np.linspace(0.5, 3.0, weights.size).reshape(weights.shape)
    return scale * (weights - target)


def run_corenet(optimizer, weights: np.ndarray, target: np.ndarray, steps: int) -> list[np.ndarray]:
    history = []
    for _ in range(steps):
        weights = optimizer.calculate_update(weights, quadratic_gradient(weights, target))
        history.append(np.array(weights))
    return history


def run_torch(torch, make_optimizer, weights: np.ndarray, target: np.ndarray, steps: int) -> list[np.ndarray]:
    parameter = torch.nn.Parameter(torch.tensor(weights, dtype=torch.float64))
    optimizer = make_optimizer([parameter])
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        parameter.grad = torch.from_numpy(quadratic_gradient(parameter.detach().numpy().copy(), target))
        optimizer.step()
        history.append(parameter.detach().numpy().copy())
    return history


class TestOptimizers:
    def setup_method(self) -> None:
        np.random.seed(0)
        self.weights = np.random.standard_normal((4, 3))
        self.target = np.random.standard_normal((4, 3))

    # -- Sgd ----------------------------------------------------------------------------------
    def test_sgd_step(self):
        np.testing.assert_allclose(Sgd(0.5).calculate_update(np.array([1.0, 2.0]), np.array([2.0, -4.0])),
                                   [0.0, 4.0])

    def test_sgd_scalars(self):
        assert Sgd(1.0).calculate_update(1.0, 1.0) == pytest.approx(0.0)
        assert Sgd(0.1).calculate_update(3.0, 10.0) == pytest.approx(2.0)

    def test_sgd_does_not_modify_its_arguments(self):
        weights, gradient = self.weights.copy(), np.ones((4, 3))
        Sgd(1.0).calculate_update(weights, gradient)
        np.testing.assert_array_equal(weights, self.weights)
        np.testing.assert_array_equal(gradient, 1.0)

    # -- SgdWithMomentum -----------------------------------------------------------------------
    def test_momentum_steps_by_hand(self):
        optimizer = SgdWithMomentum(1.0, 0.9)
        w = optimizer.calculate_update(1.0, 1.0)  # v = -1
        assert w == pytest.approx(0.0)
        w = optimizer.calculate_update(w, 1.0)  # v = 0.9 * -1 - 1 = -1.9
        assert w == pytest.approx(-1.9)
        w = optimizer.calculate_update(w, 0.0)  # v = -1.71
        assert w == pytest.approx(-3.61)

    def test_momentum_zero_rate_is_sgd(self):
        history = run_corenet(SgdWithMomentum(0.1, 0.0), self.weights, self.target, 5)
        expected = run_corenet(Sgd(0.1), self.weights, self.target, 5)
        for got, want in zip(history, expected):
            np.testing.assert_allclose(got, want, rtol=1e-14)

    # -- Adam ---------------------------------------------------------------------------------
    def test_adam_first_step_moves_by_learning_rate(self):
        # bias correction: m_hat = g, r_hat = g^2, so the first step is lr * sign(g) (up to eps)
        gradient = np.array([[0.3, -2.0, 1e-3]])
        updated = Adam(0.01, 0.9, 0.999).calculate_update(np.zeros((1, 3)), gradient)
        np.testing.assert_allclose(updated, -0.01 * np.sign(gradient), rtol=1e-4)

    def test_adam_steps_by_hand(self):
        lr, mu, rho, eps = 0.05, 0.8, 0.95, 1e-8
        optimizer = Adam(lr, mu, rho)
        w, m, r = self.weights.copy(), np.zeros_like(self.weights), np.zeros_like(self.weights)
        for k in range(1, 6):
            g = quadratic_gradient(w, self.target)
            m = mu * m + (1 - mu) * g
            r = rho * r + (1 - rho) * g * g
            expected = w - lr * (m / (1 - mu**k)) / (np.sqrt(r / (1 - rho**k)) + eps)
            w = optimizer.calculate_update(w, g)
            np.testing.assert_allclose(w, expected, rtol=1e-13)

    def test_adam_scalars(self):
        optimizer = Adam(1.0, 0.9, 0.999)
        w = optimizer.calculate_update(1.0, 0.5)
        assert float(w) == pytest.approx(0.0, abs=1e-7)

    def test_deep_copies_keep_separate_state(self):
        for optimizer in (Adam(0.1, 0.9, 0.99), SgdWithMomentum(0.1, 0.9)):
            twin = copy.deepcopy(optimizer)
            optimizer.calculate_update(np.zeros(3), np.ones(3))
            optimizer.calculate_update(np.zeros(3), np.ones(3))
            fresh = type(optimizer)(*_args(optimizer))
            zeros, ones = np.zeros(3), np.ones(3)
            expected = fresh.calculate_update(zeros, ones)
            np.testing.assert_array_equal(twin.calculate_update(zeros, ones), expected)

    @pytest.mark.parametrize(
        "make",
        [lambda: Sgd(0.1), lambda: SgdWithMomentum(0.1, 0.9), lambda: Adam(0.1, 0.9, 0.999)],
    )
    def test_float32_stays_float32(self, make):
        optimizer = make()
        optimizer.add_regularizer(ReferenceL2(0.01))
        weights = self.weights.astype(np.float32)
        for _ in range(3):
            weights = optimizer.calculate_update(weights, np.ones_like(weights))
            assert weights.dtype == np.float32

    # -- regularizer --------------------------------------------------------------------------
    def test_regularizer_slot_defaults_to_none(self):
        assert Sgd(1.0).regularizer is None
        assert isinstance(Adam(1.0), Optimizer) and isinstance(SgdWithMomentum(1.0, 0.5), Optimizer)

    def test_api_worked_example_sgd_with_l2(self):
        weights = np.ones((4, 5))
        weights[[0, 1, 2, 3], [0, 2, 4, 1]] = -1.0
        optimizer = Sgd(2.0)
        optimizer.add_regularizer(ReferenceL2(2.0))
        updated = optimizer.calculate_update(weights, np.full((4, 5), 2.0))
        np.testing.assert_allclose(updated[weights == 1.0], -7.0)
        np.testing.assert_allclose(updated[weights == -1.0], -1.0)
        assert np.sum(updated == -1.0) == 4

    @pytest.mark.parametrize(
        "make",
        [lambda: Sgd(0.3), lambda: SgdWithMomentum(0.3, 0.7), lambda: Adam(0.3, 0.9, 0.99)],
    )
    def test_shrinkage_is_computed_on_the_weights_before_the_step(self, make):
        plain, regularized = make(), make()
        regularized.add_regularizer(ReferenceL2(0.5))
        w = self.weights
        for _ in range(3):
            g = quadratic_gradient(w, self.target)
            expected = plain.calculate_update(w, g) - 0.3 * 0.5 * w
            w = regularized.calculate_update(w, g)
            np.testing.assert_allclose(w, expected, rtol=1e-13)

    def test_add_regularizer_needs_both_methods(self):
        with pytest.raises(TypeError, match="calculate_gradient"):
            Sgd(1.0).add_regularizer(object())

    # -- argument checks ----------------------------------------------------------------------
    @pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
    def test_bad_learning_rate(self, rate):
        with pytest.raises(ValueError, match="learning_rate"):
            Sgd(rate)

    @pytest.mark.parametrize("momentum", [-0.1, 1.0, 2.0])
    def test_bad_momentum(self, momentum):
        with pytest.raises(ValueError, match="momentum_rate"):
            SgdWithMomentum(0.1, momentum)

    def test_bad_adam_rates(self):
        with pytest.raises(ValueError, match="mu"):
            Adam(0.1, 1.0, 0.9)
        with pytest.raises(ValueError, match="rho"):
            Adam(0.1, 0.9, -0.5)

    # -- PyTorch parity -----------------------------------------------------------------------
    def test_sgd_matches_torch(self):
        torch = pytest.importorskip("torch")
        ours = run_corenet(Sgd(0.05), self.weights, self.target, 10)
        theirs = run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.05), self.weights, self.target, 10)
        for got, want in zip(ours, theirs):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)

    def test_sgd_with_l2_matches_torch_weight_decay(self):
        torch = pytest.importorskip("torch")
        optimizer = Sgd(0.05)
        optimizer.add_regularizer(ReferenceL2(0.2))
        ours = run_corenet(optimizer, self.weights, self.target, 10)
        theirs = run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.2),
                           self.weights, self.target, 10)
        for got, want in zip(ours, theirs):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)

    def test_momentum_matches_torch(self):
        torch = pytest.importorskip("torch")
        ours = run_corenet(SgdWithMomentum(0.05, 0.9), self.weights, self.target, 12)
        theirs = run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
                           self.weights, self.target, 12)
        for got, want in zip(ours, theirs):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
        assert not np.allclose(ours[-1], run_corenet(Sgd(0.05), self.weights, self.target, 12)[-1])

    @pytest.mark.parametrize(("lr", "mu", "rho"), [(1e-3, 0.9, 0.999), (0.1, 0.8, 0.95)])
    def test_adam_matches_torch(self, lr, mu, rho):
        torch = pytest.importorskip("torch")
        ours = run_corenet(Adam(lr, mu, rho), self.weights, self.target, 15)
        theirs = run_torch(torch, lambda p: torch.optim.Adam(p, lr=lr, betas=(mu, rho), eps=1e-8),
                           self.weights, self.target, 15)
        for got, want in zip(ours, theirs):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)


def _args(optimizer) -> tuple:
    if isinstance(optimizer, Adam):
        return optimizer.learning_rate, optimizer.mu, optimizer.rho
    return optimizer.learning_rate, optimizer.momentum_rate
