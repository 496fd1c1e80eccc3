"""Conformance group TestConstraints: L1_Regularizer and L2_Regularizer, alone and inside optimizers.

Tests ``impl("L1_Regularizer")``, ``impl("L2_Regularizer")`` and, where the exercise has
the optimizers apply them, ``impl("Sgd")``. Contract: the course's checks (gradients,
norms, two Sgd steps). Reference: agreement with corenet's regularizers on random
weights and inside every optimizer over several steps (API.md's formula). Corenet:
argument checks, wording, dtypes.
"""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.checking.expect import expect, expect_close, fail
from corenet.optimizers import Adam, Sgd, SgdWithMomentum
from corenet.testing import numerical_gradient

pytestmark = pytest.mark.contract
ALPHA = 1337
SHAPE = (4, 5)


def plus_minus_ones() -> np.ndarray:
    """ones(4, 5) with a 2x2 block of -1 (the course's fixture)."""
    weights = np.ones(SHAPE)
    weights[1:3, 2:4] *= -1
    return weights


@pytest.fixture
def L1_Regularizer(impl):
    return impl("L1_Regularizer")


@pytest.fixture
def L2_Regularizer(impl):
    return impl("L2_Regularizer")


def norm_mistake(kind: str, value: float, weights: np.ndarray, alpha: float) -> str | None:
    """Name a common mistake a wrong ``norm`` value shows, or None."""
    candidates = {
        "alpha·Σ|w| (the L1 norm)": alpha * np.abs(weights).sum(),
        "alpha·Σw² (the L2 norm)": alpha * np.square(weights).sum(),
        "alpha·sqrt(Σw²) (with a square root)": alpha * np.sqrt(np.square(weights).sum()),
        "0.5·alpha·Σw²": 0.5 * alpha * np.square(weights).sum(),
        "Σw² without alpha": np.square(weights).sum(),
        "Σ|w| without alpha": np.abs(weights).sum(),
    }
    expected = "alpha·Σ|w|" if kind == "L1" else "alpha·Σw²"
    for description, candidate in candidates.items():
        if not description.startswith(expected) and np.isclose(value, candidate, rtol=1e-9):
            return f"{kind}_Regularizer.norm(w) computes {description}; expected {expected}"
    return None


def expect_norm(regularizer, kind: str, weights: np.ndarray, alpha: float) -> None:
    value = regularizer.norm(weights)
    expected = alpha * (np.abs(weights).sum() if kind == "L1" else np.square(weights).sum())
    try:
        value = float(np.asarray(value))
    except (TypeError, ValueError):
        fail(f"{kind}_Regularizer.norm(w) returned {type(value).__name__}, expected a number")
    if not np.isclose(value, expected, rtol=1e-9):
        fail(norm_mistake(kind, value, weights, alpha) or f"{kind}_Regularizer.norm(w) is {value:.6g}, expected "
             f"{expected:.6g}")


class TestConstraints:
    # == contract ====================================================================================
    def test_l1_gradient_is_alpha_times_sign(self, L1_Regularizer):
        gradient = L1_Regularizer(ALPHA).calculate_gradient(plus_minus_ones())
        expect_close(gradient, ALPHA * plus_minus_ones(), "L1_Regularizer(1337).calculate_gradient(w)",
                     "the (sub-)gradient of alpha·Σ|w| is alpha·sign(w)", rtol=1e-12, atol=1e-10)

    def test_l1_sub_gradient_at_zero_is_bounded(self, L1_Regularizer):
        gradient = np.asarray(L1_Regularizer(2.0).calculate_gradient(np.array([-3.0, 0.0, 0.5])), dtype=float)
        expect_close(gradient[[0, 2]], [-2.0, 2.0], "L1_Regularizer(2).calculate_gradient([-3, 0, 0.5]) away from 0",
                     rtol=1e-12, atol=1e-12)
        expect(-2.0 <= gradient[1] <= 2.0, f"L1 sub-gradient at w = 0 is {gradient[1]}, expected a value in "
               f"[-alpha, alpha] (np.sign gives 0)")

    def test_l2_gradient_is_alpha_times_weights(self, L2_Regularizer):
        weights = np.array([[3.0, -4.0], [0.0, 0.25]])
        expect_close(L2_Regularizer(0.5).calculate_gradient(weights), 0.5 * weights,
                     "L2_Regularizer(0.5).calculate_gradient(w)", "the course's L2 gradient is alpha·w",
                     rtol=1e-12, atol=1e-12)
        expect_close(L2_Regularizer(ALPHA).calculate_gradient(plus_minus_ones()), ALPHA * plus_minus_ones(),
                     "L2_Regularizer(1337).calculate_gradient(w)", rtol=1e-12, atol=1e-9)

    def test_norms_of_the_course_fixture(self, L1_Regularizer, L2_Regularizer):
        expect_norm(L1_Regularizer(ALPHA), "L1", plus_minus_ones(), ALPHA)
        expect_norm(L2_Regularizer(ALPHA), "L2", plus_minus_ones(), ALPHA)

    def test_norms_tell_l1_from_l2(self, L1_Regularizer, L2_Regularizer):
        weights = np.array([[3.0, -4.0], [0.0, 1.0]])
        expect_norm(L1_Regularizer(0.5), "L1", weights, 0.5)
        expect_norm(L2_Regularizer(0.5), "L2", weights, 0.5)

    def test_worked_example_l2_with_sgd(self, L2_Regularizer, impl):
        # API.md: weights ones with four -1, gradient 2, lr 2, L2(2): -7 for the ones, -1 for the minus-ones
        optimizer = impl("Sgd")(2)
        optimizer.add_regularizer(L2_Regularizer(2))
        result = optimizer.calculate_update(plus_minus_ones(), np.full(SHAPE, 2.0))
        expect_close(result, np.where(plus_minus_ones() > 0, -7.0, -1.0), "one Sgd(2) step with L2_Regularizer(2)",
                     "the update is w - lr·g - lr·alpha·w, the shrinkage computed on the weights before the step",
                     rtol=0, atol=1e-12)

    @pytest.mark.parametrize(("kind", "expected"), [("L1", -116.0), ("L2", 268.0)])
    def test_two_sgd_steps(self, impl, kind, expected):
        """The course's tests: the sum of the weights after two Sgd(2) steps with gradient 2 and alpha 2."""
        optimizer = impl("Sgd")(2)
        optimizer.add_regularizer(impl(f"{kind}_Regularizer")(2))
        result = optimizer.calculate_update(plus_minus_ones(), np.full(SHAPE, 2.0))
        result = optimizer.calculate_update(result, np.full(SHAPE, 2.0))
        expect(np.isclose(np.sum(result), expected, atol=1e-9), f"sum of the weights after two Sgd(2) steps with "
               f"{kind}_Regularizer(2) is {np.sum(result):.6g}, expected {expected:g}: the optimizer must subtract "
               f"lr·regularizer.calculate_gradient(w) on top of its step")

    # == reference ===================================================================================
    @pytest.mark.reference
    @pytest.mark.parametrize("kind", ["L1", "L2"])
    def test_agrees_with_the_reference(self, impl, kind):
        name = f"{kind}_Regularizer"
        ours, theirs = impl(name)(0.7), impl.reference(name)(0.7)
        rng = np.random.default_rng(3)
        for shape in [(5, 4), (3, 2, 3, 3), (7,)]:
            weights = rng.normal(size=shape)
            expect_close(ours.calculate_gradient(weights), theirs.calculate_gradient(weights),
                         f"{name}(0.7).calculate_gradient of a {shape} array", rtol=1e-12, atol=1e-14)
            expect_close(float(ours.norm(weights)), theirs.norm(weights), f"{name}(0.7).norm of a {shape} array",
                         rtol=1e-12, atol=1e-14)

    @pytest.mark.reference
    @pytest.mark.parametrize("kind", ["L1", "L2"])
    def test_gradient_matches_the_norm(self, impl, kind):
        """L1: gradient = d norm / dw. L2 (the course's convention): norm = alpha·Σw², gradient = alpha·w (half)."""
        regularizer = impl(f"{kind}_Regularizer")(0.7)
        weights = np.array([[0.3, -1.2, 2.0], [-0.4, 0.9, -2.5]])  # no zeros: |w| is smooth there
        numeric = numerical_gradient(lambda: float(regularizer.norm(weights)), weights)
        factor = 1.0 if kind == "L1" else 0.5
        expect_close(regularizer.calculate_gradient(weights), factor * numeric,
                     f"{kind}_Regularizer.calculate_gradient vs central differences of its norm"
                     + ("" if kind == "L1" else " (times 1/2)"), rtol=1e-7, atol=1e-9)

    @pytest.mark.reference
    @pytest.mark.parametrize("optimizer", ["Sgd", "SgdWithMomentum", "Adam"])
    @pytest.mark.parametrize("kind", ["L1", "L2"])
    def test_inside_every_optimizer_agrees_with_the_reference(self, impl, kind, optimizer):
        make = {"Sgd": lambda: Sgd(0.1), "SgdWithMomentum": lambda: SgdWithMomentum(0.1, 0.9),
                "Adam": lambda: Adam(0.1, 0.9, 0.999)}[optimizer]
        name = f"{kind}_Regularizer"
        ours, theirs = make(), make()
        ours.add_regularizer(impl(name)(0.3))
        theirs.add_regularizer(impl.reference(name)(0.3))
        rng = np.random.default_rng(8)
        weights = expected = rng.normal(size=(4, 3))
        for step in range(1, 6):
            gradient = rng.normal(size=(4, 3))
            weights = ours.calculate_update(weights, gradient)
            expected = theirs.calculate_update(expected, gradient)
            expect_close(weights, expected, f"weights after {step} {optimizer} steps with {name}(0.3)", rtol=1e-12,
                         atol=1e-14)

    @pytest.mark.reference
    @pytest.mark.parametrize("kind", ["L1", "L2"])
    def test_layer_regularization_loss_is_the_norm_of_its_weights(self, impl, kind):
        layer = impl.reference("FullyConnected")(3, 2)
        optimizer = Sgd(0.1)
        optimizer.add_regularizer(impl(f"{kind}_Regularizer")(0.3))
        layer.optimizer = optimizer
        expected = impl.reference(f"{kind}_Regularizer")(0.3).norm(layer.weights)
        expect_close(layer.calculate_regularization_loss(), expected, "a FullyConnected layer's regularization loss",
                     rtol=1e-12, atol=0)

    # == corenet extras ==============================================================================
    @pytest.mark.corenet
    @pytest.mark.parametrize("kind", ["L1", "L2"])
    def test_scalars_integers_and_dtypes(self, impl, kind):
        regularizer = impl(f"{kind}_Regularizer")(2)
        assert float(regularizer.calculate_gradient(-3.0)) == (-2.0 if kind == "L1" else -6.0)
        assert regularizer.norm(-3.0) == (6.0 if kind == "L1" else 18.0)
        assert isinstance(regularizer.norm(np.ones(3)), float)
        assert regularizer.calculate_gradient(np.array([1, -2])).dtype == np.float64
        assert regularizer.calculate_gradient(np.array([1.5, -2.0], dtype=np.float32)).dtype == np.float32

    @pytest.mark.corenet
    @pytest.mark.parametrize("kind", ["L1", "L2"])
    def test_zero_alpha_is_allowed_and_inert(self, impl, kind):
        regularizer = impl(f"{kind}_Regularizer")(0)
        np.testing.assert_array_equal(regularizer.calculate_gradient(plus_minus_ones()), np.zeros(SHAPE))
        assert regularizer.norm(plus_minus_ones()) == 0.0

    @pytest.mark.corenet
    @pytest.mark.parametrize("kind", ["L1", "L2"])
    @pytest.mark.parametrize("alpha", [-1e-3, -2, float("nan"), float("inf"), True, "0.1", None])
    def test_bad_alpha_is_refused_naming_alpha(self, impl, kind, alpha):
        with pytest.raises(ValueError, match="alpha"):
            impl(f"{kind}_Regularizer")(alpha)

    @pytest.mark.corenet
    def test_repr_names_alpha(self, L2_Regularizer):
        assert repr(L2_Regularizer(0.25)) == "L2_Regularizer(alpha=0.25)"

    @pytest.mark.corenet
    def test_hook_registers_both_classes(self, L1_Regularizer, L2_Regularizer):
        import corenet_reg_l1l2
        from corenet_reg_l1l2 import constraints

        registered = []
        corenet_reg_l1l2.corenet_register_regularizers(lambda cls, name=None, **tier: registered.append(cls))
        assert registered == [constraints.L1_Regularizer, constraints.L2_Regularizer]
        groups = []
        corenet_reg_l1l2.corenet_register_test_groups(lambda *args, **names: groups.append(args))
        assert [(name, weight) for name, _, weight in groups] == [("TestConstraints", 5)]
        registry = corenet.get_registry()
        assert registry.name_of(L1_Regularizer) == "L1_Regularizer"
        assert registry.name_of(L2_Regularizer) == "L2_Regularizer"
