"""Conformance group TestOptimizers: Sgd, SgdWithMomentum, Adam and the regularizer slot."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from corenet.checking.expect import expect_close, expect_equal
from corenet.testing import ReferenceL2

pytestmark = pytest.mark.contract
#: name -> constructor arguments used where a test runs every optimizer
ARGUMENTS = {"Sgd": (0.3,), "SgdWithMomentum": (0.3, 0.7), "Adam": (0.3, 0.9, 0.99)}
REGULARIZER_HINT = ("with a regularizer R the update is step(w, g) - learning_rate * R.calculate_gradient(w), "
                    "with R's gradient taken at the weights before the step")


@pytest.fixture
def Sgd(impl):
    return impl("Sgd")


@pytest.fixture
def SgdWithMomentum(impl):
    return impl("SgdWithMomentum")


@pytest.fixture
def Adam(impl):
    return impl("Adam")


def quadratic_gradient(weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Gradient of 0.5 * sum((w - target)^2 * scale) with a fixed per-entry scale."""
    scale = np.linspace(0.5, 3.0, weights.size).reshape(weights.shape)
    return scale * (weights - target)


def run(optimizer, weights: np.ndarray, target: np.ndarray, steps: int) -> list[np.ndarray]:
    history = []
    for _ in range(steps):
        weights = optimizer.calculate_update(weights, quadratic_gradient(weights, target))
        history.append(np.array(weights, dtype=np.float64))
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


def expect_same_path(ours: list[np.ndarray], theirs: list[np.ndarray], what: str, hint: str | None = None,
                     **tolerance) -> None:
    for step, (got, want) in enumerate(zip(ours, theirs), start=1):
        expect_close(got, want, f"{what}: weights after step {step}", hint, **tolerance)


class TestOptimizers:
    def setup_method(self) -> None:
        np.random.seed(0)
        self.weights = np.random.standard_normal((4, 3))
        self.target = np.random.standard_normal((4, 3))

    # -- contract: Sgd -----------------------------------------------------------------------------
    def test_sgd_step(self, Sgd):
        updated = Sgd(0.5).calculate_update(np.array([1.0, 2.0]), np.array([2.0, -4.0]))
        expect_close(updated, [0.0, 4.0], "Sgd(0.5) update of [1, 2] with gradient [2, -4]", "w - lr * g")

    def test_sgd_scalars(self, Sgd):
        expect_close(Sgd(1.0).calculate_update(1.0, 1.0), 0.0, "Sgd(1).calculate_update(1.0, 1.0)")
        expect_close(Sgd(0.1).calculate_update(3.0, 10.0), 2.0, "Sgd(0.1).calculate_update(3.0, 10.0)")

    def test_sgd_does_not_modify_its_arguments(self, Sgd):
        weights, gradient = self.weights.copy(), np.ones((4, 3))
        Sgd(1.0).calculate_update(weights, gradient)
        expect_close(weights, self.weights, "the weights passed to calculate_update",
                     "return new weights instead of changing the argument in place", rtol=0, atol=0)

    # -- contract: SgdWithMomentum -----------------------------------------------------------------
    def test_momentum_steps_by_hand(self, SgdWithMomentum):
        optimizer = SgdWithMomentum(1.0, 0.9)
        hint = "v = momentum_rate * v - learning_rate * g; w + v"
        w = optimizer.calculate_update(1.0, 1.0)  # v = -1
        expect_close(w, 0.0, "SgdWithMomentum(1, 0.9): weights after step 1", hint)
        w = optimizer.calculate_update(w, 1.0)  # v = 0.9 * -1 - 1 = -1.9
        expect_close(w, -1.9, "SgdWithMomentum(1, 0.9): weights after step 2", hint)
        w = optimizer.calculate_update(w, 0.0)  # v = -1.71
        expect_close(w, -3.61, "SgdWithMomentum(1, 0.9): weights after step 3 (zero gradient)", hint)

    def test_momentum_zero_rate_is_sgd(self, SgdWithMomentum, impl):
        history = run(SgdWithMomentum(0.1, 0.0), self.weights, self.target, 5)
        expected = run(impl.reference("Sgd")(0.1), self.weights, self.target, 5)
        expect_same_path(history, expected, "SgdWithMomentum(0.1, 0) vs Sgd(0.1)", rtol=1e-12)

    # -- contract: Adam ----------------------------------------------------------------------------
    def test_adam_first_step_moves_by_learning_rate(self, Adam):
        gradient = np.array([[0.3, -2.0, 1e-3]])
        updated = Adam(0.01, 0.9, 0.999).calculate_update(np.zeros((1, 3)), gradient)
        expect_close(updated, -0.01 * np.sign(gradient), "Adam's first step from 0", "with bias correction "
                     "m_hat = g and r_hat = g^2, so the first step is -learning_rate * sign(g)", rtol=1e-4)

    def test_adam_steps_by_hand(self, Adam):
        lr, mu, rho, eps = 0.05, 0.8, 0.95, 1e-8
        optimizer = Adam(lr, mu, rho)
        w, m, r = self.weights.copy(), np.zeros_like(self.weights), np.zeros_like(self.weights)
        for k in range(1, 6):
            g = quadratic_gradient(w, self.target)
            m = mu * m + (1 - mu) * g
            r = rho * r + (1 - rho) * g * g
            expected = w - lr * (m / (1 - mu**k)) / (np.sqrt(r / (1 - rho**k)) + eps)
            w = optimizer.calculate_update(w, g)
            expect_close(w, expected, f"Adam({lr}, {mu}, {rho}): weights after step {k}", "m = mu m + (1 - mu) g; "
                         "r = rho r + (1 - rho) g^2; bias-correct with mu^k and rho^k, k counting from 1",
                         rtol=1e-7)

    def test_adam_scalars(self, Adam):
        w = Adam(1.0, 0.9, 0.999).calculate_update(1.0, 0.5)
        expect_close(w, 0.0, "Adam(1, 0.9, 0.999).calculate_update(1.0, 0.5)", atol=1e-7)

    # -- contract: the regularizer slot ------------------------------------------------------------
    @pytest.mark.parametrize("name", list(ARGUMENTS))
    def test_regularizer_slot_defaults_to_none(self, impl, name):
        optimizer = impl(name)(*ARGUMENTS[name])
        expect_equal(getattr(optimizer, "regularizer", "missing"), None, f"{name}(...).regularizer",
                     "the base Optimizer sets regularizer = None")
        regularizer = ReferenceL2(0.5)
        optimizer.add_regularizer(regularizer)
        expect_equal(optimizer.regularizer is regularizer, True, "add_regularizer(r) stores r as regularizer")

    def test_worked_example_sgd_with_l2(self, Sgd):
        weights = np.ones((4, 5))
        weights[[0, 1, 2, 3], [0, 2, 4, 1]] = -1.0
        optimizer = Sgd(2.0)
        optimizer.add_regularizer(ReferenceL2(2.0))
        updated = optimizer.calculate_update(weights, np.full((4, 5), 2.0))
        expected = np.where(weights == 1.0, -7.0, -1.0)
        expect_close(updated, expected, "Sgd(2) with L2(2): ones and minus-ones after one step", REGULARIZER_HINT)

    @pytest.mark.parametrize("name", list(ARGUMENTS))
    def test_shrinkage_is_computed_on_the_weights_before_the_step(self, impl, name):
        cls = impl(name)
        plain, regularized = cls(*ARGUMENTS[name]), cls(*ARGUMENTS[name])
        regularized.add_regularizer(ReferenceL2(0.5))
        w = self.weights
        for step in range(1, 4):
            g = quadratic_gradient(w, self.target)
            expected = plain.calculate_update(w, g) - 0.3 * 0.5 * w
            w = regularized.calculate_update(w, g)
            expect_close(w, expected, f"{name} with L2(0.5): weights after step {step}", REGULARIZER_HINT,
                         rtol=1e-10)

    # -- reference ---------------------------------------------------------------------------------
    @pytest.mark.reference
    @pytest.mark.parametrize("name", list(ARGUMENTS))
    @pytest.mark.parametrize("regularized", [False, True])
    def test_same_path_as_the_reference(self, impl, name, regularized):
        paths = []
        for cls in (impl(name), impl.reference(name)):
            optimizer = cls(*ARGUMENTS[name])
            if regularized:
                optimizer.add_regularizer(ReferenceL2(0.2))
            paths.append(run(optimizer, self.weights, self.target, 12))
        expect_same_path(*paths, f"{name}{' with L2(0.2)' if regularized else ''} vs corenet's reference",
                         rtol=1e-9, atol=1e-12)

    @pytest.mark.reference
    @pytest.mark.parametrize("name", list(ARGUMENTS))
    def test_deep_copies_keep_separate_state(self, impl, name):
        cls = impl(name)
        optimizer = cls(*ARGUMENTS[name])
        twin = copy.deepcopy(optimizer)
        for _ in range(2):
            optimizer.calculate_update(np.zeros(3), np.ones(3))
        expected = cls(*ARGUMENTS[name]).calculate_update(np.zeros(3), np.ones(3))
        expect_close(twin.calculate_update(np.zeros(3), np.ones(3)), expected,
                     f"first step of a deep copy of a {name} whose original took two steps",
                     "keep the optimizer's state (velocity, moments, step count) in the instance")

    @pytest.mark.reference
    def test_sgd_matches_torch(self, Sgd):
        torch = pytest.importorskip("torch")
        ours = run(Sgd(0.05), self.weights, self.target, 10)
        theirs = run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.05), self.weights, self.target, 10)
        expect_same_path(ours, theirs, "Sgd vs torch.optim.SGD", rtol=0, atol=1e-8)

    @pytest.mark.reference
    def test_sgd_with_l2_matches_torch_weight_decay(self, Sgd):
        torch = pytest.importorskip("torch")
        optimizer = Sgd(0.05)
        optimizer.add_regularizer(ReferenceL2(0.2))
        ours = run(optimizer, self.weights, self.target, 10)
        theirs = run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.2),
                           self.weights, self.target, 10)
        expect_same_path(ours, theirs, "Sgd with L2 vs torch.optim.SGD(weight_decay)", rtol=0, atol=1e-8)

    @pytest.mark.reference
    def test_momentum_matches_torch(self, SgdWithMomentum):
        torch = pytest.importorskip("torch")
        ours = run(SgdWithMomentum(0.05, 0.9), self.weights, self.target, 12)
        theirs = run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
                           self.weights, self.target, 12)
        expect_same_path(ours, theirs, "SgdWithMomentum vs torch.optim.SGD(momentum)", rtol=0, atol=1e-8)

    @pytest.mark.reference
    @pytest.mark.parametrize(("lr", "mu", "rho"), [(1e-3, 0.9, 0.999), (0.1, 0.8, 0.95)])
    def test_adam_matches_torch(self, Adam, lr, mu, rho):
        torch = pytest.importorskip("torch")
        ours = run(Adam(lr, mu, rho), self.weights, self.target, 15)
        theirs = run_torch(torch, lambda p: torch.optim.Adam(p, lr=lr, betas=(mu, rho), eps=1e-8),
                           self.weights, self.target, 15)
        expect_same_path(ours, theirs, "Adam vs torch.optim.Adam", rtol=0, atol=1e-8)

    # -- corenet -----------------------------------------------------------------------------------
    @pytest.mark.corenet
    @pytest.mark.parametrize("name", list(ARGUMENTS))
    def test_every_optimizer_is_an_optimizer(self, impl, name):
        from corenet.optimizers import Optimizer

        assert isinstance(impl(name)(*ARGUMENTS[name]), Optimizer)

    @pytest.mark.corenet
    @pytest.mark.parametrize("name", list(ARGUMENTS))
    def test_float32_stays_float32(self, impl, name):
        optimizer = impl(name)(*ARGUMENTS[name])
        optimizer.add_regularizer(ReferenceL2(0.01))
        weights = self.weights.astype(np.float32)
        for _ in range(3):
            weights = optimizer.calculate_update(weights, np.ones_like(weights))
            assert weights.dtype == np.float32

    @pytest.mark.corenet
    def test_add_regularizer_needs_both_methods(self, Sgd):
        with pytest.raises(TypeError, match="calculate_gradient"):
            Sgd(1.0).add_regularizer(object())

    @pytest.mark.corenet
    @pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
    def test_bad_learning_rate(self, Sgd, rate):
        with pytest.raises(ValueError, match="learning_rate"):
            Sgd(rate)

    @pytest.mark.corenet
    @pytest.mark.parametrize("momentum", [-0.1, 1.0, 2.0])
    def test_bad_momentum(self, SgdWithMomentum, momentum):
        with pytest.raises(ValueError, match="momentum_rate"):
            SgdWithMomentum(0.1, momentum)

    @pytest.mark.corenet
    def test_bad_adam_rates(self, Adam):
        with pytest.raises(ValueError, match="mu"):
            Adam(0.1, 1.0, 0.9)
        with pytest.raises(ValueError, match="rho"):
            Adam(0.1, 0.9, -0.5)
