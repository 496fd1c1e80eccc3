"""Conformance group TestInitializers: Constant, UniformRandom, Xavier, He."""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.checking.expect import expect, expect_close, expect_shape

pytestmark = pytest.mark.contract
LARGE = (400, 500)  # 200,000 draws: sample mean/std within ~1% of the truth
NAMES = ("Constant", "UniformRandom", "Xavier", "He")


def make(impl, name: str):
    return impl(name)(0.3) if name == "Constant" else impl(name)()


def expect_normal(weights: np.ndarray, sigma: float, what: str, hint: str) -> None:
    expect(abs(weights.mean()) <= 0.01 * sigma, f"{what} have mean {weights.mean():.3g}, expected 0", hint)
    expect(abs(weights.std() / sigma - 1) <= 0.01, f"{what} have standard deviation {weights.std():.4g}, "
           f"expected {sigma:.4g}", hint)


@pytest.fixture
def float32_default():
    corenet.set_default_dtype(np.float32)
    yield
    corenet.set_default_dtype(np.float64)


class TestInitializers:
    def setup_method(self) -> None:
        np.random.seed(2024)

    # -- contract -------------------------------------------------------------------------------
    def test_constant_default_and_value(self, impl):
        Constant = impl("Constant")  # noqa: N806
        expect_close(Constant().initialize((3, 2), 3, 2), np.full((3, 2), 0.1), "Constant().initialize((3, 2), ...)",
                     "the default value is 0.1")
        expect_close(Constant(-4.5).initialize((5,), 1, 1), np.full(5, -4.5), "Constant(-4.5).initialize((5,), ...)")

    def test_constant_ignores_fans(self, impl):
        expect_close(impl("Constant")(2.0).initialize((2, 2), 1, 1000), np.full((2, 2), 2.0),
                     "Constant(2.0) with fan_out 1000")

    def test_uniform_range_and_statistics(self, impl):
        weights = impl("UniformRandom")().initialize(LARGE, LARGE[0], LARGE[1])
        expect_shape(weights, LARGE, "UniformRandom().initialize(shape, ...)")
        hint = "draw from U[0, 1): np.random.uniform(0, 1, shape)"
        expect(weights.min() >= 0.0 and weights.max() < 1.0, "UniformRandom draws leave [0, 1)", hint)
        expect(abs(weights.mean() - 0.5) <= 0.01, f"UniformRandom draws have mean {weights.mean():.3g}, expected 0.5",
               hint)
        expect(abs(weights.std() / np.sqrt(1 / 12) - 1) <= 0.01,
               f"UniformRandom draws have standard deviation {weights.std():.4g}, expected {np.sqrt(1 / 12):.4g}", hint)

    @pytest.mark.parametrize(("fan_in", "fan_out"), [(400, 500), (10, 30), (3000, 7)])
    def test_xavier_statistics_follow_the_fans(self, impl, fan_in, fan_out):
        weights = impl("Xavier")().initialize(LARGE, fan_in, fan_out)
        expect_shape(weights, LARGE, "Xavier().initialize(shape, ...)")
        expect_normal(weights, np.sqrt(2.0 / (fan_in + fan_out)), f"Xavier draws for fans ({fan_in}, {fan_out})",
                      "N(0, sigma^2) with sigma = sqrt(2 / (fan_in + fan_out))")

    @pytest.mark.parametrize(("fan_in", "fan_out"), [(400, 500), (9, 64), (2000, 1)])
    def test_he_statistics_follow_fan_in(self, impl, fan_in, fan_out):
        weights = impl("He")().initialize(LARGE, fan_in, fan_out)
        expect_shape(weights, LARGE, "He().initialize(shape, ...)")
        expect_normal(weights, np.sqrt(2.0 / fan_in), f"He draws for fans ({fan_in}, {fan_out})",
                      "N(0, sigma^2) with sigma = sqrt(2 / fan_in)")

    def test_normal_draws_are_gaussian_shaped(self, impl):
        for name in ("Xavier", "He"):
            sigma = np.sqrt(0.1) if name == "Xavier" else np.sqrt(0.2)
            weights = impl(name)().initialize(LARGE, 10, 10) / sigma
            inside = np.mean(np.abs(weights) < 1.0), np.mean(np.abs(weights) < 2.0)
            expect(abs(inside[0] - 0.6827) <= 0.01 and abs(inside[1] - 0.9545) <= 0.01,
                   f"{name} draws are not normally distributed ({inside[0]:.1%} within one sigma, "
                   f"{inside[1]:.1%} within two)", "draw from a normal distribution (np.random.normal)")

    @pytest.mark.parametrize("name", NAMES)
    @pytest.mark.parametrize("shape", [(7,), (3, 4), (6, 2, 5, 5), (1, 3, 3)])
    def test_shapes(self, impl, name, shape):
        weights = make(impl, name).initialize(shape, 12, 8)
        expect(isinstance(weights, np.ndarray), f"{name}.initialize returned {type(weights).__name__}, "
               "expected a NumPy array")
        expect_shape(weights, shape, f"{name}.initialize({shape}, 12, 8)")

    # -- reference ------------------------------------------------------------------------------
    @pytest.mark.reference
    @pytest.mark.parametrize("name", ["UniformRandom", "Xavier", "He"])
    @pytest.mark.parametrize(("fan_in", "fan_out"), [(50, 20), (7, 300)])
    def test_statistics_match_the_reference(self, impl, name, fan_in, fan_out):
        ours = impl(name)().initialize(LARGE, fan_in, fan_out)
        theirs = impl.reference(name)().initialize(LARGE, fan_in, fan_out)
        expect(abs(ours.std() / theirs.std() - 1) <= 0.02, f"{name} draws for fans ({fan_in}, {fan_out}) have "
               f"standard deviation {ours.std():.4g}; corenet's reference draws {theirs.std():.4g}")
        expect(abs(ours.mean() - theirs.mean()) <= 0.02 * theirs.std() + 1e-12, f"{name} draws for fans "
               f"({fan_in}, {fan_out}) have mean {ours.mean():.4g}; corenet's reference draws {theirs.mean():.4g}")

    @pytest.mark.reference
    @pytest.mark.parametrize(("fan_in", "fan_out"), [(400, 500), (30, 10)])
    def test_match_torch_init(self, impl, fan_in, fan_out):
        torch = pytest.importorskip("torch")
        generator = torch.Generator().manual_seed(0)
        # a (fan_out, fan_in) torch weight has exactly these fans
        xavier = torch.nn.init.xavier_normal_(torch.empty(fan_out, fan_in, dtype=torch.float64), generator=generator)
        he = torch.nn.init.kaiming_normal_(torch.empty(fan_out, fan_in, dtype=torch.float64), nonlinearity="relu",
                                           generator=generator)
        for name, theirs in (("Xavier", xavier), ("He", he)):
            ours = impl(name)().initialize(LARGE, fan_in, fan_out)
            sigma = float(theirs.std())
            expect(abs(ours.std() / sigma - 1) <= 0.05, f"{name} draws for fans ({fan_in}, {fan_out}) have standard "
                   f"deviation {ours.std():.4g}; torch.nn.init draws {sigma:.4g}")

    # -- corenet --------------------------------------------------------------------------------
    @pytest.mark.corenet
    def test_he_ignores_fan_out(self, impl):
        np.random.seed(5)
        a = impl("He")().initialize((50, 40), 20, 1)
        np.random.seed(5)
        b = impl("He")().initialize((50, 40), 20, 999)
        np.testing.assert_array_equal(a, b)

    @pytest.mark.corenet
    @pytest.mark.parametrize("name", NAMES)
    def test_float64_by_default(self, impl, name):
        assert make(impl, name).initialize((4, 3), 4, 3).dtype == np.float64

    @pytest.mark.corenet
    @pytest.mark.parametrize("name", ["UniformRandom", "Xavier", "He"])
    def test_reproducible_with_np_random_seed(self, impl, name):
        initializer = impl(name)()
        np.random.seed(77)
        first = initializer.initialize((10, 10), 10, 10)
        np.random.seed(77)
        second = initializer.initialize((10, 10), 10, 10)
        third = initializer.initialize((10, 10), 10, 10)
        np.testing.assert_array_equal(first, second)
        assert not np.array_equal(second, third)

    @pytest.mark.corenet
    @pytest.mark.parametrize("name", NAMES)
    def test_dtype_follows_default(self, impl, name, float32_default):
        assert make(impl, name).initialize((4, 3), 4, 3).dtype == np.float32

    @pytest.mark.corenet
    def test_set_default_dtype_refuses_non_float(self, impl):
        impl("Constant")
        with pytest.raises(ValueError, match="float32 or float64"):
            corenet.set_default_dtype(np.int32)
        assert corenet.get_default_dtype() == np.float64
