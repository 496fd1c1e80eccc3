"""Conformance group TestDropout: inverted dropout, phase-aware, mask reused in backward."""

from __future__ import annotations

import numpy as np
import pytest
from corenet_dropout.dropout import Dropout as ReferenceDropout

import corenet
from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check

Dropout = corenet.get_registry().layers.get("Dropout", ReferenceDropout)  # selected; CORENET_IMPL picks the tier


class TestDropout:
    batch_size, input_size = 10000, 10

    def setup_method(self) -> None:
        np.random.seed(1337)
        self.input_tensor = np.ones((self.batch_size, self.input_size))

    # -- flags and construction ------------------------------------------------------
    def test_not_trainable_and_training_phase_by_default(self):
        layer = Dropout(0.25)
        assert layer.trainable is False
        assert layer.testing_phase is False
        assert layer.probability == 0.25
        assert repr(layer) == "Dropout(0.25)"

    @pytest.mark.parametrize("probability", [0, 0.0, -0.5, 1.5, 1.0000001, float("nan"), float("inf"),
                                             True, "0.5", None])
    def test_bad_probability_is_refused_naming_it(self, probability):
        with pytest.raises(ValueError, match="probability"):
            Dropout(probability)

    # -- training phase --------------------------------------------------------------
    def test_forward_scales_kept_units_and_zeros_the_rest(self):
        output = Dropout(0.25).forward(self.input_tensor)
        assert output.shape == self.input_tensor.shape
        assert np.max(output) == 4.0
        assert np.min(output) == 0.0
        assert set(np.unique(output)) == {0.0, 4.0}
        assert np.mean(output) == pytest.approx(1.0, abs=0.03)  # inverted dropout keeps the expectation

    @pytest.mark.parametrize("probability", [0.3, 0.5, 0.8, 0.999])
    def test_fraction_kept_is_the_probability(self, probability):
        output = Dropout(probability).forward(np.ones((1000, 1000)))
        kept = np.count_nonzero(output) / output.size
        spread = np.sqrt(probability * (1 - probability) / output.size)
        assert kept == pytest.approx(probability, abs=5 * spread)
        np.testing.assert_array_equal(output[output != 0], 1.0 / probability)

    def test_a_later_forward_leaves_earlier_outputs_alone(self):
        layer = Dropout(0.5)
        x = np.random.standard_normal((20, 10)) + 3.0
        first = layer.forward(x)
        saved = first.copy()
        first_gradient = layer.backward(np.ones_like(x))
        layer.forward(x)  # refills the layer's private mask buffer
        layer.backward(np.ones_like(x))
        np.testing.assert_array_equal(first, saved)
        np.testing.assert_array_equal(first_gradient, (saved != 0) * 2.0)

    def test_backward_in_another_dtype_scales_in_the_error_dtype(self):
        layer = Dropout(0.3)
        output = layer.forward(np.ones((40, 25)))
        error = np.random.standard_normal((40, 25)).astype(np.float32)
        gradient = layer.backward(error)
        assert gradient.dtype == np.float32
        kept = output != 0
        np.testing.assert_array_equal(gradient[kept], error[kept] * np.float32(1 / 0.3))
        np.testing.assert_array_equal(gradient[~kept], 0.0)

    def test_every_forward_draws_a_new_mask(self):
        layer = Dropout(0.5)
        first = layer.forward(np.ones((50, 40)))
        second = layer.forward(np.ones((50, 40)))
        assert not np.array_equal(first, second)

    def test_seed_reproduces_the_mask(self):
        layer = Dropout(0.5)
        x = np.random.standard_normal((30, 20))
        np.random.seed(42)
        first = layer.forward(x)
        np.random.seed(42)
        second = layer.forward(x)
        np.random.seed(43)
        third = layer.forward(x)
        np.testing.assert_array_equal(first, second)
        assert not np.array_equal(first, third)

    def test_backward_uses_the_forward_mask(self):
        layer = Dropout(0.5)
        x = np.random.standard_normal((40, 30)) + 3.0  # no exact zeros in the input
        output = layer.forward(x)
        error = np.random.standard_normal(x.shape) + 3.0
        previous = layer.backward(error)
        kept = output != 0
        np.testing.assert_array_equal(previous == 0, ~kept)
        np.testing.assert_allclose(previous[kept], error[kept] / 0.5, rtol=1e-15)
        np.testing.assert_array_equal(layer.backward(error), previous)  # same mask until the next forward

    def test_backward_of_ones(self):
        layer = Dropout(0.5)
        layer.forward(self.input_tensor)
        previous = layer.backward(self.input_tensor)
        assert np.max(previous) == 2.0
        assert np.min(previous) == 0.0

    def test_keep_everything_is_identity(self):
        layer = Dropout(1.0)
        x = np.random.standard_normal((5, 6))
        np.testing.assert_array_equal(layer.forward(x), x)
        np.testing.assert_array_equal(layer.backward(2 * x), 2 * x)

    @pytest.mark.parametrize("shape", [(7,), (4, 3, 5), (2, 3, 4, 5)])
    def test_any_shape_with_a_batch_axis(self, shape):
        layer = Dropout(0.5)
        output = layer.forward(np.ones(shape))
        assert output.shape == shape
        assert layer.backward(np.ones(shape)).shape == shape

    # -- testing phase ---------------------------------------------------------------
    def test_testing_phase_is_identity(self):
        layer = Dropout(0.5)
        layer.testing_phase = True
        x = np.random.standard_normal((20, 10))
        np.testing.assert_array_equal(layer.forward(x), x)
        np.testing.assert_array_equal(layer.backward(3 * x), 3 * x)
        output = layer.forward(self.input_tensor)
        assert np.max(output) == 1.0 and np.min(output) == 1.0

    def test_testing_phase_draws_no_random_numbers(self):
        layer = Dropout(0.5)
        layer.testing_phase = True
        np.random.seed(3)
        layer.forward(np.ones((10, 10)))
        after = np.random.random_sample()
        np.random.seed(3)
        assert np.random.random_sample() == after

    def test_switching_back_to_training_drops_again(self):
        layer = Dropout(0.5)
        layer.testing_phase = True
        layer.forward(np.ones((10, 10)))
        layer.testing_phase = False
        assert np.count_nonzero(layer.forward(np.ones((100, 100))) == 0) > 0

    # -- gradient and dtypes ---------------------------------------------------------
    def test_gradient_with_a_fixed_seed(self):
        batch, size = 10, 10
        rng = np.random.RandomState(0)
        input_tensor = rng.standard_normal((batch, size))
        label_tensor = np.zeros((batch, size))
        label_tensor[np.arange(batch), rng.randint(0, size, batch)] = 1
        layers = [Dropout(0.5), L2Loss()]
        assert gradient_check(layers, input_tensor, label_tensor, seed=1337) <= 1e-5

    def test_dtypes(self):
        layer = Dropout(0.3)
        single = layer.forward(np.ones((8, 8), dtype=np.float32))
        assert single.dtype == np.float32
        assert layer.backward(np.ones((8, 8), dtype=np.float32)).dtype == np.float32
        assert layer.forward(np.ones((8, 8), dtype=np.int64)).dtype == np.float64
        assert layer.forward(np.ones((8, 8), dtype=bool)).dtype == np.float64

    # -- errors ------------------------------------------------------------------------
    def test_backward_before_forward_is_a_clear_error(self):
        with pytest.raises(ShapeError, match="before forward"):
            Dropout(0.5).backward(np.ones((2, 2)))

    def test_backward_with_a_wrong_shape_is_refused(self):
        layer = Dropout(0.5)
        layer.forward(np.ones((4, 3)))
        with pytest.raises(ShapeError, match=r"\(4, 3\)"):
            layer.backward(np.ones((3, 4)))

    def test_empty_and_scalar_inputs_are_refused(self):
        with pytest.raises(ShapeError, match="Dropout"):
            Dropout(0.5).forward(np.ones((0, 3)))
        with pytest.raises(ShapeError, match="Dropout"):
            Dropout(0.5).forward(np.float64(1.0))

    # -- registration ------------------------------------------------------------------
    def test_hooks_register_the_layer_and_group(self):
        import corenet_dropout

        layers, groups = [], []
        corenet_dropout.corenet_register_layers(lambda cls, name=None, **tier: layers.append(cls))
        corenet_dropout.corenet_register_test_groups(lambda *args: groups.append(args))
        assert layers == [ReferenceDropout]
        assert [(name, weight) for name, _, weight in groups] == [("TestDropout", 5)]

    def test_registry_lists_dropout_when_loaded(self):
        registry = corenet.get_registry()
        if "Dropout" not in registry.layers:
            pytest.skip("corenet-dropout is not loaded (CORENET_LOAD_PLUGINS excludes it)")
        assert registry.layers["Dropout"] is Dropout
        assert registry.test_groups["TestDropout"].weight == 5
