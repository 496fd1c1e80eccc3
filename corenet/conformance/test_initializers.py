"""Conformance group TestInitializers: Constant, UniformRandom, Xavier, He."""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.initializers import Constant, He, UniformRandom, Xavier

LARGE = (400, 500)  # 200,000 draws: sample mean/std within ~1% of the truth


@pytest.fixture
def float32_default():
    corenet.set_default_dtype(np.float32)
    yield
    corenet.set_default_dtype(np.float64)


class TestInitializers:
    def setup_method(self) -> None:
        np.random.seed(2024)

    def test_constant_default_and_value(self):
        np.testing.assert_array_equal(Constant().initialize((3, 2), 3, 2), np.full((3, 2), 0.1))
        np.testing.assert_array_equal(Constant(-4.5).initialize((5,), 1, 1), np.full(5, -4.5))

    def test_constant_ignores_fans(self):
        np.testing.assert_array_equal(Constant(2.0).initialize((2, 2), 1, 1000), np.full((2, 2), 2.0))

    def test_uniform_range_and_statistics(self):
        weights = UniformRandom().initialize(LARGE, LARGE[0], LARGE[1])
        assert weights.shape == LARGE
        assert weights.min() >= 0.0 and weights.max() < 1.0
        assert weights.mean() == pytest.approx(0.5, abs=0.01)
        assert weights.std() == pytest.approx(np.sqrt(1 / 12), rel=0.01)

    @pytest.mark.parametrize(("fan_in", "fan_out"), [(400, 500), (10, 30), (3000, 7)])
    def test_xavier_statistics_follow_the_fans(self, fan_in, fan_out):
        weights = Xavier().initialize(LARGE, fan_in, fan_out)
        assert weights.shape == LARGE
        sigma = np.sqrt(2.0 / (fan_in + fan_out))
        assert weights.mean() == pytest.approx(0.0, abs=0.01 * sigma)
        assert weights.std() == pytest.approx(sigma, rel=0.01)

    @pytest.mark.parametrize(("fan_in", "fan_out"), [(400, 500), (9, 64), (2000, 1)])
    def test_he_statistics_follow_fan_in(self, fan_in, fan_out):
        weights = He().initialize(LARGE, fan_in, fan_out)
        assert weights.shape == LARGE
        sigma = np.sqrt(2.0 / fan_in)
        assert weights.mean() == pytest.approx(0.0, abs=0.01 * sigma)
        assert weights.std() == pytest.approx(sigma, rel=0.01)

    def test_he_ignores_fan_out(self):
        np.random.seed(5)
        a = He().initialize((50, 40), 20, 1)
        np.random.seed(5)
        b = He().initialize((50, 40), 20, 999)
        np.testing.assert_array_equal(a, b)

    def test_normal_draws_are_gaussian_shaped(self):
        weights = Xavier().initialize(LARGE, 10, 10) / np.sqrt(0.1)
        assert np.mean(np.abs(weights) < 1.0) == pytest.approx(0.6827, abs=0.01)
        assert np.mean(np.abs(weights) < 2.0) == pytest.approx(0.9545, abs=0.01)

    @pytest.mark.parametrize("initializer", [Constant(0.3), UniformRandom(), Xavier(), He()])
    @pytest.mark.parametrize("shape", [(7,), (3, 4), (6, 2, 5, 5), (1, 3, 3)])
    def test_shapes(self, initializer, shape):
        weights = initializer.initialize(shape, 12, 8)
        assert isinstance(weights, np.ndarray)
        assert weights.shape == shape
        assert weights.dtype == np.float64

    @pytest.mark.parametrize("initializer", [UniformRandom(), Xavier(), He()])
    def test_reproducible_with_np_random_seed(self, initializer):
        np.random.seed(77)
        first = initializer.initialize((10, 10), 10, 10)
        np.random.seed(77)
        second = initializer.initialize((10, 10), 10, 10)
        third = initializer.initialize((10, 10), 10, 10)
        np.testing.assert_array_equal(first, second)
        assert not np.array_equal(second, third)

    @pytest.mark.parametrize("initializer", [Constant(0.3), UniformRandom(), Xavier(), He()])
    def test_dtype_follows_default(self, initializer, float32_default):
        assert initializer.initialize((4, 3), 4, 3).dtype == np.float32

    def test_set_default_dtype_refuses_non_float(self):
        with pytest.raises(ValueError, match="float32 or float64"):
            corenet.set_default_dtype(np.int32)
        assert corenet.get_default_dtype() == np.float64
