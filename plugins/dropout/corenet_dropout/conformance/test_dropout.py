"""Conformance group TestDropout: inverted dropout, phase-aware, mask reused in backward.

Tests ``impl("Dropout")``. The contract tier asks what the exercise asks; the reference
tier compares with corenet's reference and PyTorch and names a wrong scaling; the corenet
tier covers corenet's extras (argument checks, mask drawing, threads, dtypes, wording).
"""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.checking.expect import expect, expect_close, expect_equal, expect_gradient, expect_shape, fail
from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check

pytestmark = pytest.mark.contract
KEEP = 0.25  # p, 1 - p, 1/p and 1/(1 - p) all differ: a wrong scaling shows which one was used


@pytest.fixture
def Dropout(impl):
    return impl("Dropout")


def scaling_problem(output: np.ndarray, x: np.ndarray, probability: float) -> str | None:
    """What is wrong with a training-phase output of inverted dropout for input ``x`` (no zeros), or None."""
    output = np.asarray(output, dtype=np.float64)
    kept = output != 0
    fraction = float(kept.mean())
    spread = 5 * np.sqrt(probability * (1 - probability) / output.size) + 1e-12
    if abs(fraction - probability) > spread:
        if abs(fraction - (1 - probability)) <= spread:
            return (f"Dropout({probability}) kept {fraction:.3f} of the units, about 1 - probability: probability is "
                    f"the fraction of units KEPT")
        return f"Dropout({probability}) kept {fraction:.3f} of the units, expected about probability = {probability}"
    if not kept.any():
        return f"Dropout({probability}) dropped every unit"
    ratio = output[kept] / x[kept]
    expected = 1.0 / probability
    if np.allclose(ratio, expected, rtol=1e-9):
        return None
    for factor, mistake in ((probability, f"multiplied by probability ({probability:g}) instead of divided by it"),
                            (1.0, "not scaled at all"),
                            (1.0 / (1.0 - probability), f"scaled by 1/(1 - probability) = {1 / (1 - probability):g}")):
        if np.allclose(ratio, factor, rtol=1e-9):
            return f"wrong Dropout scaling: kept units are {mistake}; expected x {expected:g} = 1/probability"
    return (f"wrong Dropout scaling: kept units are scaled by {float(np.median(ratio)):.6g}, expected "
            f"1/probability = {expected:g}")


def expect_inverted_scaling(output, x, probability) -> None:
    problem = scaling_problem(output, x, probability)
    if problem:
        fail(problem)


class TestDropout:
    batch_size, input_size = 10000, 10

    def setup_method(self) -> None:
        np.random.seed(1337)
        self.input_tensor = np.ones((self.batch_size, self.input_size))

    # == contract ====================================================================================
    def test_flags(self, Dropout):
        layer = Dropout(KEEP)
        expect_equal(getattr(layer, "trainable", None), False, "Dropout(...).trainable",
                     "dropout has no adjustable parameters")
        expect_equal(getattr(layer, "testing_phase", None), False, "Dropout(...).testing_phase")

    def test_training_keeps_a_fraction_probability_scaled_by_its_inverse(self, Dropout):
        output = Dropout(KEEP).forward(self.input_tensor)
        expect_shape(output, self.input_tensor.shape, "forward output")
        expect_inverted_scaling(output, self.input_tensor, KEEP)
        expect(abs(float(np.mean(output)) - 1.0) < 0.03, f"the mean output for an input of ones is "
               f"{float(np.mean(output)):.4f}: inverted dropout keeps the expectation (1.0)")

    @pytest.mark.parametrize("probability", [0.3, 0.5, 0.8])
    def test_other_probabilities(self, Dropout, probability):
        x = np.random.uniform(1.0, 2.0, (400, 500))
        expect_inverted_scaling(Dropout(probability).forward(x), x, probability)

    def test_backward_applies_the_forward_mask(self, Dropout):
        layer = Dropout(0.5)
        x = np.random.standard_normal((40, 30)) + 3.0  # no zeros in the input
        output = np.asarray(layer.forward(x))
        error = np.random.standard_normal(x.shape) + 3.0
        expect_close(layer.backward(error), error * output / x, "backward output",
                     "backward multiplies the error by the same scaled mask forward used", rtol=1e-12, atol=0)

    def test_every_forward_draws_a_new_mask(self, Dropout):
        layer = Dropout(0.5)
        first = np.array(layer.forward(np.ones((50, 40))))
        expect(not np.array_equal(first, layer.forward(np.ones((50, 40)))),
               "two training forwards dropped the same units: draw a new mask in every forward")

    def test_keep_everything_is_the_identity(self, Dropout):
        x = np.random.standard_normal((5, 6))
        expect_close(Dropout(1.0).forward(x), x, "forward output of Dropout(1.0)", rtol=0, atol=1e-15)

    def test_testing_phase_is_the_identity(self, Dropout):
        layer = Dropout(0.5)
        layer.testing_phase = True
        x = np.random.standard_normal((20, 10))
        expect_close(layer.forward(x), x, "forward output in the testing phase",
                     "in the testing phase inverted dropout passes its input unchanged", rtol=0, atol=0)

    def test_switching_back_to_training_drops_again(self, Dropout):
        layer = Dropout(0.5)
        layer.testing_phase = True
        layer.forward(np.ones((10, 10)))
        layer.testing_phase = False
        expect(np.count_nonzero(np.asarray(layer.forward(np.ones((100, 100)))) == 0) > 0,
               "after testing_phase was set back to False, forward dropped nothing")

    def test_gradient_with_a_fixed_seed(self, Dropout):
        """The course's check: the global generator is reseeded before every forward, so the mask repeats."""
        rng = np.random.RandomState(0)
        x = rng.standard_normal((10, 10))
        labels = np.zeros((10, 10))
        labels[np.arange(10), rng.randint(0, 10, 10)] = 1
        expect_gradient(gradient_check([Dropout(0.5), L2Loss()], x, labels, seed=1337),
                        "the error backward returns (np.random reseeded before each forward)",
                        "draw the mask from np.random and reuse it in backward")

    # == reference ===================================================================================
    @pytest.mark.reference
    @pytest.mark.parametrize("probability", [KEEP, 0.5, 0.8])
    def test_scaling_agrees_with_the_reference(self, Dropout, impl, probability):
        x = np.random.uniform(0.5, 1.5, (2000, 50))
        ours, theirs = np.asarray(Dropout(probability).forward(x)), impl.reference("Dropout")(probability).forward(x)
        expect_inverted_scaling(ours, x, probability)
        kept = ours != 0
        expect_close(ours[kept], x[kept] / probability, "values of the kept units (the reference's: x / probability)",
                     rtol=1e-12, atol=0)
        spread = np.sqrt(2 * (np.mean(x**2) / probability - np.mean(x) ** 2) / x.size)  # sd of the difference
        expect(abs(ours.mean() - theirs.mean()) < 6 * spread,
               f"mean output {ours.mean():.4f} differs from the reference's {theirs.mean():.4f}: inverted dropout "
               f"keeps the expectation of every unit")

    @pytest.mark.reference
    def test_seed_reproduces_the_mask(self, Dropout):
        layer = Dropout(0.5)
        x = np.random.standard_normal((30, 20))
        np.random.seed(42)
        first = np.array(layer.forward(x))
        np.random.seed(42)
        expect_close(layer.forward(x), first, "output after reseeding np.random with the same seed",
                     "API.md: masks are drawn from NumPy's global generator", rtol=0, atol=0)

    @pytest.mark.reference
    def test_phases_agree_with_the_reference(self, Dropout, impl):
        layer, twin = Dropout(0.5), impl.reference("Dropout")(0.5)
        x = np.random.standard_normal((20, 10))
        for testing in (True, False, True):
            layer.testing_phase = twin.testing_phase = testing
            output, expected = np.asarray(layer.forward(x)), twin.forward(x)
            if testing:
                expect_close(output, expected, "forward output in the testing phase", rtol=0, atol=0)
                expect_close(layer.backward(2 * x), twin.backward(2 * x), "backward output in the testing phase",
                             rtol=0, atol=0)
            else:
                expect_inverted_scaling(output, x, 0.5)

    @pytest.mark.reference
    def test_scaling_agrees_with_torch(self, Dropout):
        torch = pytest.importorskip("torch")
        x = np.random.uniform(0.5, 1.5, (200, 50))
        expected = torch.nn.functional.dropout(torch.from_numpy(x), p=1 - KEEP, training=True).numpy()
        ours = np.asarray(Dropout(KEEP).forward(x))
        torch_scale = float(np.median(expected[expected != 0] / x[expected != 0]))
        kept = ours != 0
        expect_close(ours[kept] / x[kept], np.full(np.count_nonzero(kept), torch_scale),
                     "scale of the kept units vs torch's dropout", rtol=1e-9, atol=0)

    # == corenet extras ==============================================================================
    @pytest.mark.corenet
    def test_probability_and_repr(self, Dropout):
        layer = Dropout(0.25)
        assert layer.probability == 0.25
        assert repr(layer) == "Dropout(0.25)"

    @pytest.mark.corenet
    @pytest.mark.parametrize("probability", [0, 0.0, -0.5, 1.5, 1.0000001, float("nan"), float("inf"),
                                             True, "0.5", None])
    def test_bad_probability_is_refused_naming_it(self, Dropout, probability):
        with pytest.raises(ValueError, match="probability"):
            Dropout(probability)

    @pytest.mark.corenet
    def test_a_later_forward_leaves_earlier_outputs_alone(self, Dropout):
        layer = Dropout(0.5)
        x = np.random.standard_normal((20, 10)) + 3.0
        first = layer.forward(x)
        saved = first.copy()
        first_gradient = layer.backward(np.ones_like(x))
        layer.forward(x)  # refills the layer's private mask buffer
        layer.backward(np.ones_like(x))
        np.testing.assert_array_equal(first, saved)
        np.testing.assert_array_equal(first_gradient, (saved != 0) * 2.0)

    @pytest.mark.corenet
    def test_backward_in_another_dtype_scales_in_the_error_dtype(self, Dropout):
        layer = Dropout(0.3)
        output = layer.forward(np.ones((40, 25)))
        error = np.random.standard_normal((40, 25)).astype(np.float32)
        gradient = layer.backward(error)
        assert gradient.dtype == np.float32
        kept = output != 0
        np.testing.assert_array_equal(gradient[kept], error[kept] * np.float32(1 / 0.3))
        np.testing.assert_array_equal(gradient[~kept], 0.0)

    @pytest.mark.corenet
    @pytest.mark.parametrize("shape", [(7,), (4, 3, 5), (2, 3, 4, 5)])
    def test_any_shape_with_a_batch_axis(self, Dropout, shape):
        layer = Dropout(0.5)
        output = layer.forward(np.ones(shape))
        assert output.shape == shape
        assert layer.backward(np.ones(shape)).shape == shape

    @pytest.mark.corenet
    def test_testing_phase_draws_no_random_numbers(self, Dropout):
        layer = Dropout(0.5)
        layer.testing_phase = True
        np.random.seed(3)
        layer.forward(np.ones((10, 10)))
        after = np.random.random_sample()
        np.random.seed(3)
        assert np.random.random_sample() == after

    @pytest.mark.corenet
    def test_dtypes(self, Dropout):
        layer = Dropout(0.3)
        single = layer.forward(np.ones((8, 8), dtype=np.float32))
        assert single.dtype == np.float32
        assert layer.backward(np.ones((8, 8), dtype=np.float32)).dtype == np.float32
        assert layer.forward(np.ones((8, 8), dtype=np.int64)).dtype == np.float64
        assert layer.forward(np.ones((8, 8), dtype=bool)).dtype == np.float64

    @pytest.mark.corenet
    def test_backward_errors_are_clear(self, Dropout):
        with pytest.raises(ShapeError, match="before forward"):
            Dropout(0.5).backward(np.ones((2, 2)))
        layer = Dropout(0.5)
        layer.forward(np.ones((4, 3)))
        with pytest.raises(ShapeError, match=r"\(4, 3\)"):
            layer.backward(np.ones((3, 4)))

    @pytest.mark.corenet
    def test_empty_and_scalar_inputs_are_refused(self, Dropout):
        with pytest.raises(ShapeError, match="Dropout"):
            Dropout(0.5).forward(np.ones((0, 3)))
        with pytest.raises(ShapeError, match="Dropout"):
            Dropout(0.5).forward(np.float64(1.0))

    @pytest.mark.corenet
    def test_hooks_register_the_layer_and_group(self, Dropout):
        import corenet_dropout
        from corenet_dropout.dropout import Dropout as Reference

        layers, groups = [], []
        corenet_dropout.corenet_register_layers(lambda cls, name=None, **tier: layers.append(cls))
        corenet_dropout.corenet_register_test_groups(lambda *args, **names: groups.append(args))
        assert layers == [Reference]
        assert [(name, weight) for name, _, weight in groups] == [("TestDropout", 5)]
        assert corenet.get_registry().name_of(Dropout) == "Dropout"
