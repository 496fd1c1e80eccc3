"""The generic contract every layer keeps, whatever its math: a base class for a plugin's conformance tests.

A plugin's test file subclasses :class:`LayerContract` (or :class:`TrainableLayerContract`
for a layer with weights), names the registry name it tests and how to build one
(``corenet new-plugin`` writes such a file)::

    class TestSwish(LayerContract):
        name = "Swish"
        input_shape = (4, 6)  # (batch, features)

        def make(self, layer_class):
            return layer_class()

The tests run on whichever implementation the ``impl`` fixture resolves for ``name`` (see
:mod:`corenet.checking.pytest_plugin`), all in the ``contract`` tier:

- the flags ``trainable`` and ``testing_phase``; forward returns a finite array with the
  batch axis first and leaves its input alone; backward returns an error shaped like the input;
- backward against central differences (float64) w.r.t. the input;
- :class:`TrainableLayerContract` adds: ``trainable`` is True; the same gradient check w.r.t.
  every parameter in ``parameter_names`` (default ``("weights",)``) through its
  ``gradient_<parameter>``; no update without an optimizer; with ``layer.optimizer = Sgd(lr)`` every
  parameter moves by ``-lr * gradient``; ``initialize(weights_initializer, bias_initializer)``
  takes the weights from the first initializer (and ``bias``, when there is one, from the second).

A layer that draws random numbers gets NumPy reseeded with ``seed`` before every forward pass
of a gradient check. Input values keep a distance from 0, where kinks (ReLU-like layers) are.
"""

from __future__ import annotations

import numpy as np
import pytest

from corenet.checking.doubles import RecordingInitializer, away_from_zero
from corenet.checking.expect import expect, expect_array, expect_close, expect_gradient, expect_shape, fail
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

LEARNING_RATE = 0.1
WEIGHT_VALUE, BIAS_VALUE = 0.25, -0.75


class _Sgd:
    """Plain gradient descent (w - lr * g) for the update tests: the contract's own, not an installed one."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate

    def calculate_update(self, weight_tensor, gradient_tensor):
        return weight_tensor - self.learning_rate * np.asarray(gradient_tensor)


class LayerContract:
    """Generic tests for the layer registered as :attr:`name`; subclass it as ``Test<Name>`` (a layer with
    weights: :class:`TrainableLayerContract`)."""

    pytestmark = [pytest.mark.contract]

    #: the registry name under test
    name: str = ""
    #: the shape of the input the tests feed, batch axis first
    input_shape: tuple[int, ...] = (4, 5)
    #: NumPy's seed before every forward pass of a gradient check (layers that draw random numbers)
    seed: int | None = 0
    #: the largest relative error between backward and central differences
    tolerance: float = 1e-5

    def make(self, layer_class):
        """A fresh layer to test; override to pass constructor arguments."""
        return layer_class()

    # -- helpers --------------------------------------------------------------------------------
    @pytest.fixture
    def layer_class(self, impl):
        if not self.name:
            pytest.fail(f"{type(self).__name__} must set name = 'TheLayer' (the registry name it tests)",
                        pytrace=False)
        return impl(self.name)

    def _input(self) -> np.ndarray:
        return away_from_zero(self.input_shape, margin=0.1, rng=np.random.default_rng(7))

    def _parameters(self, layer) -> tuple[str, ...]:
        return tuple(getattr(layer, "parameter_names", ("weights",)))

    def _forward(self, layer, x: np.ndarray) -> np.ndarray:
        if self.seed is not None:
            np.random.seed(self.seed)
        return expect_array(layer.forward(x), f"{self.name}.forward(input)")

    def _label(self, layer) -> np.ndarray:
        """A fixed target shaped like ``layer``'s output (for the L2 loss of the gradient checks)."""
        return np.random.default_rng(3).standard_normal(self._forward(layer, self._input()).shape)

    # -- every layer ----------------------------------------------------------------------------
    def test_flags(self, layer_class):
        layer = self.make(layer_class)
        expect(isinstance(getattr(layer, "trainable", None), bool), f"{self.name}.trainable must be True or False",
               "set it in __init__ (BaseLayer and TrainableLayer do)")
        expect(getattr(layer, "testing_phase", None) is False, f"a new {self.name} must have testing_phase False",
               "the network switches it to True for testing")

    def test_forward_keeps_the_batch_and_the_input(self, layer_class):
        x = self._input()
        before = x.copy()
        output = self._forward(self.make(layer_class), x)
        expect(output.ndim >= 1 and output.shape[0] == x.shape[0],
               f"forward output has shape {output.shape}, expected the batch axis ({x.shape[0]}) first")
        expect(np.all(np.isfinite(output)), "forward output has NaN or infinite entries")
        expect_close(x, before, "forward's input after the call", "forward must not change its input (copy first)")

    def test_backward_returns_an_error_shaped_like_the_input(self, layer_class):
        layer = self.make(layer_class)
        x = self._input()
        output = self._forward(layer, x)
        error = layer.backward(np.ones_like(output))
        expect_shape(error, x.shape, "backward's error for the previous layer",
                     "it has the shape of forward's input")

    def test_gradient_with_respect_to_the_input(self, layer_class):
        layer = self.make(layer_class)
        error = gradient_check([layer, L2Loss()], self._input(), self._label(layer), seed=self.seed)
        expect_gradient(error, "backward's error w.r.t. the input", "check the derivative of forward (chain rule)",
                        tolerance=self.tolerance)


class TrainableLayerContract(LayerContract):
    """:class:`LayerContract` plus the protocol of a layer with parameters (weights, optimizer, initialize)."""

    def _trainable(self, layer_class):
        layer = self.make(layer_class)
        expect(getattr(layer, "trainable", None) is True, f"{self.name}.trainable must be True for a layer with "
               "weights", "TrainableLayer.__init__ sets it")
        return layer

    def test_gradient_with_respect_to_every_parameter(self, layer_class):
        layer = self._trainable(layer_class)
        label = self._label(layer)
        for parameter in self._parameters(layer):
            if getattr(layer, parameter, None) is None:
                fail(f"{self.name}.{parameter} is None", "create the parameter in __init__")
            error = gradient_check_weights([layer, L2Loss()], self._input(), label, parameter=parameter,
                                           seed=self.seed)
            expect_gradient(error, f"gradient_{parameter} w.r.t. {parameter}",
                            f"gradient_{parameter} must be d(loss)/d({parameter}), summed over the batch",
                            tolerance=self.tolerance)

    def test_no_update_without_an_optimizer(self, layer_class):
        layer = self._trainable(layer_class)
        before = {p: np.array(getattr(layer, p), dtype=np.float64) for p in self._parameters(layer)}
        output = self._forward(layer, self._input())
        layer.backward(np.ones_like(output))
        for parameter, value in before.items():
            expect_close(getattr(layer, parameter), value, f"{parameter} after backward without an optimizer",
                         "update only when an optimizer is set")

    def test_optimizer_updates_every_parameter(self, layer_class):
        layer = self._trainable(layer_class)
        layer.optimizer = _Sgd(LEARNING_RATE)
        before = {p: np.array(getattr(layer, p), dtype=np.float64) for p in self._parameters(layer)}
        output = self._forward(layer, self._input())
        layer.backward(np.random.default_rng(5).standard_normal(output.shape))
        for parameter, value in before.items():
            gradient = expect_array(getattr(layer, f"gradient_{parameter}", None), f"{self.name}.gradient_{parameter}")
            expect_shape(gradient, value.shape, f"gradient_{parameter}", f"shaped like {parameter}")
            expect_close(getattr(layer, parameter), value - LEARNING_RATE * gradient,
                         f"{parameter} after one Sgd({LEARNING_RATE}) step",
                         f"backward must apply the optimizer to {parameter} with gradient_{parameter}")

    def test_initialize_takes_the_weights_from_the_initializers(self, layer_class):
        layer = self._trainable(layer_class)
        weights, bias = RecordingInitializer(WEIGHT_VALUE), RecordingInitializer(BIAS_VALUE)
        layer.initialize(weights, bias)
        expect(weights.calls, "initialize(weights_initializer, bias_initializer) never called "
               "weights_initializer.initialize(shape, fan_in, fan_out)")
        values = np.asarray(layer.weights, dtype=np.float64)
        expect(np.any(values == WEIGHT_VALUE) and np.all(np.isin(values, [WEIGHT_VALUE, BIAS_VALUE])),
               f"after initialize, {self.name}.weights does not hold what the initializers returned",
               "assign the arrays initialize() returns")
        if "bias" in self._parameters(layer):
            expect(bias.calls, "initialize never called bias_initializer.initialize(shape, fan_in, fan_out)")
            expect(np.all(np.asarray(layer.bias) == BIAS_VALUE), f"after initialize, {self.name}.bias does not "
                   "hold what bias_initializer returned")
