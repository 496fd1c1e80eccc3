"""Conformance group TestConstraints: L1_Regularizer and L2_Regularizer, alone and inside optimizers."""

from __future__ import annotations

import numpy as np
import pytest
from corenet_reg_l1l2.constraints import L1_Regularizer, L2_Regularizer

import corenet
from corenet.layers.fully_connected import FullyConnected
from corenet.optimizers import Sgd
from corenet.testing import numerical_gradient

ALPHA = 1337
SHAPE = (4, 5)


def plus_minus_ones() -> np.ndarray:
    """ones(4, 5) with a 2x2 block of -1 (the course's fixture)."""
    weights = np.ones(SHAPE)
    weights[1:3, 2:4] *= -1
    return weights


class TestConstraints:
    # -- the regularizers alone ------------------------------------------------
    def test_l1_gradient_is_alpha_times_sign(self):
        gradient = L1_Regularizer(ALPHA).calculate_gradient(plus_minus_ones())
        assert gradient.shape == SHAPE
        np.testing.assert_array_equal(gradient, ALPHA * plus_minus_ones())

    def test_l1_sub_gradient_at_zero_is_zero(self):
        gradient = L1_Regularizer(2.0).calculate_gradient(np.array([-3.0, 0.0, 0.5]))
        np.testing.assert_array_equal(gradient, [-2.0, 0.0, 2.0])

    def test_l2_gradient_is_alpha_times_weights(self):
        weights = np.array([[3.0, -4.0], [0.0, 0.25]])
        np.testing.assert_array_equal(L2_Regularizer(0.5).calculate_gradient(weights), 0.5 * weights)
        np.testing.assert_array_equal(L2_Regularizer(ALPHA).calculate_gradient(plus_minus_ones()),
                                      ALPHA * plus_minus_ones())

    def test_norms_of_the_course_fixture(self):
        assert L1_Regularizer(ALPHA).norm(plus_minus_ones()) == pytest.approx(20 * ALPHA)
        assert L2_Regularizer(ALPHA).norm(plus_minus_ones()) == pytest.approx(20 * ALPHA)

    def test_norms_tell_l1_from_l2(self):
        weights = np.array([[3.0, -4.0], [0.0, 1.0]])
        assert L1_Regularizer(0.5).norm(weights) == pytest.approx(0.5 * 8)  # 3 + 4 + 0 + 1
        assert L2_Regularizer(0.5).norm(weights) == pytest.approx(0.5 * 26)  # 9 + 16 + 0 + 1
        assert isinstance(L2_Regularizer(0.5).norm(weights), float)

    @pytest.mark.parametrize(("regularizer", "factor"),
                             [(L1_Regularizer(0.7), 1.0), (L2_Regularizer(0.7), 0.5)], ids=["L1", "L2"])
    def test_gradient_against_the_derivative_of_the_norm(self, regularizer, factor):
        # L1: the gradient is d norm / dw. L2 (the course's convention, API.md): norm = alpha*sum(w^2) but
        # gradient = alpha*w, i.e. half the norm's derivative.
        weights = np.array([[0.3, -1.2, 2.0], [-0.4, 0.9, -2.5]])  # no zeros: |w| is smooth there
        numeric = numerical_gradient(lambda: regularizer.norm(weights), weights)
        gradient = regularizer.calculate_gradient(weights)
        np.testing.assert_allclose(gradient, factor * numeric, rtol=1e-7, atol=1e-9)

    @pytest.mark.parametrize("cls", [L1_Regularizer, L2_Regularizer])
    def test_scalars_integers_and_dtypes(self, cls):
        regularizer = cls(2)
        assert float(regularizer.calculate_gradient(-3.0)) == (-2.0 if cls is L1_Regularizer else -6.0)
        assert regularizer.norm(-3.0) == (6.0 if cls is L1_Regularizer else 18.0)
        integer = regularizer.calculate_gradient(np.array([1, -2]))
        assert integer.dtype == np.float64
        single = regularizer.calculate_gradient(np.array([1.5, -2.0], dtype=np.float32))
        assert single.dtype == np.float32

    @pytest.mark.parametrize("cls", [L1_Regularizer, L2_Regularizer])
    def test_zero_alpha_is_allowed_and_inert(self, cls):
        regularizer = cls(0)
        np.testing.assert_array_equal(regularizer.calculate_gradient(plus_minus_ones()), np.zeros(SHAPE))
        assert regularizer.norm(plus_minus_ones()) == 0.0

    @pytest.mark.parametrize("cls", [L1_Regularizer, L2_Regularizer])
    @pytest.mark.parametrize("alpha", [-1e-3, -2, float("nan"), float("inf"), True, "0.1", None])
    def test_bad_alpha_is_refused_naming_alpha(self, cls, alpha):
        with pytest.raises(ValueError, match="alpha"):
            cls(alpha)

    def test_repr_names_alpha(self):
        assert repr(L2_Regularizer(0.25)) == "L2_Regularizer(alpha=0.25)"

    # -- inside an optimizer ---------------------------------------------------
    def test_worked_example_l2_with_sgd(self):
        # API.md: weights ones with four -1, gradient 2, lr 2, L2(2): -7 for the ones, -1 for the minus-ones
        optimizer = Sgd(2)
        optimizer.add_regularizer(L2_Regularizer(2))
        result = optimizer.calculate_update(plus_minus_ones(), np.full(SHAPE, 2.0))
        expected = np.where(plus_minus_ones() > 0, -7.0, -1.0)
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)

    def test_l1_with_sgd_two_steps(self):
        # w - 4 - 4*sign(w): 1 -> -7 -> -7; -1 -> -1 -> -1; sum = 16*(-7) + 4*(-1)
        optimizer = Sgd(2)
        optimizer.add_regularizer(L1_Regularizer(2))
        result = optimizer.calculate_update(plus_minus_ones(), np.full(SHAPE, 2.0))
        result = optimizer.calculate_update(result, np.full(SHAPE, 2.0))
        np.testing.assert_allclose(result, np.where(plus_minus_ones() > 0, -7.0, -1.0), rtol=0, atol=1e-12)
        assert np.sum(result) == pytest.approx(-116)

    def test_l2_with_sgd_two_steps(self):
        # w - 4 - 4*w: 1 -> -7 -> 17; -1 -> -1 -> -1; sum = 16*17 + 4*(-1)
        optimizer = Sgd(2)
        optimizer.add_regularizer(L2_Regularizer(2))
        result = optimizer.calculate_update(plus_minus_ones(), np.full(SHAPE, 2.0))
        result = optimizer.calculate_update(result, np.full(SHAPE, 2.0))
        np.testing.assert_allclose(result, np.where(plus_minus_ones() > 0, 17.0, -1.0), rtol=0, atol=1e-12)
        assert np.sum(result) == pytest.approx(268)

    @pytest.mark.parametrize("cls", [L1_Regularizer, L2_Regularizer])
    def test_layer_regularization_loss_is_the_norm_of_its_weights(self, cls):
        layer = FullyConnected(3, 2)
        optimizer = Sgd(0.1)
        optimizer.add_regularizer(cls(0.3))
        layer.optimizer = optimizer
        assert layer.calculate_regularization_loss() == pytest.approx(cls(0.3).norm(layer.weights))
        assert layer.calculate_regularization_loss() > 0

    # -- registration ------------------------------------------------------------
    def test_hook_registers_both_classes(self):
        import corenet_reg_l1l2

        registered = []
        corenet_reg_l1l2.corenet_register_regularizers(lambda cls, name=None, **tier: registered.append(cls))
        assert registered == [L1_Regularizer, L2_Regularizer]
        groups = []
        corenet_reg_l1l2.corenet_register_test_groups(lambda *args: groups.append(args))
        assert [(name, weight) for name, _, weight in groups] == [("TestConstraints", 5)]

    def test_registry_lists_the_regularizers_when_loaded(self):
        registry = corenet.get_registry()
        if "L2_Regularizer" not in registry.regularizers:
            pytest.skip("corenet-reg-l1l2 is not loaded (CORENET_LOAD_PLUGINS excludes it)")
        assert registry.regularizers["L1_Regularizer"] is L1_Regularizer
        assert registry.regularizers["L2_Regularizer"] is L2_Regularizer
