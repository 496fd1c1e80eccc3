"""TestRNN: the Elman RNN (the shared recurrent contract plus RNN-specific checks)."""

import numpy as np
import pytest

from corenet_recurrent.conformance.contract import RecurrentContract

pytestmark = pytest.mark.contract


class TestRNN(RecurrentContract):
    name = "RNN"
    lstm = False

    @pytest.mark.corenet
    def test_hand_computed_two_steps(self, cls):
        layer = cls(1, 1, 1)
        layer.weights = np.array([[0.5], [-1.0], [0.1]])  # rows x, h, bias
        layer.output_weights = np.array([[2.0], [-0.3]])  # rows h, bias
        y = layer.forward(np.array([[1.0], [2.0]]))
        h1 = np.tanh(0.5 * 1.0 + 0.1)
        h2 = np.tanh(0.5 * 2.0 - 1.0 * h1 + 0.1)
        expected = 1.0 / (1.0 + np.exp(-(2.0 * np.array([h1, h2]) - 0.3)))
        np.testing.assert_allclose(y[:, 0], expected, rtol=0, atol=1e-15)
        np.testing.assert_allclose(layer.state[0], [h2], atol=1e-15)

    @pytest.mark.corenet
    def test_hand_computed_gradient_of_one_step(self, cls):
        layer = cls(1, 1, 1)
        layer.weights = np.array([[0.5], [-1.0], [0.1]])
        layer.output_weights = np.array([[2.0], [-0.3]])
        y = layer.forward(np.array([[1.0]]))
        dx = layer.backward(np.array([[1.0]]))
        h = np.tanh(0.6)
        dy = y[0, 0] * (1 - y[0, 0])
        da = dy * 2.0 * (1 - h * h)
        np.testing.assert_allclose(dx, [[da * 0.5]], atol=1e-15)
        np.testing.assert_allclose(layer.gradient_weights, [[da * 1.0], [0.0], [da]], atol=1e-15)
        np.testing.assert_allclose(layer.gradient_output_weights, [[dy * h], [dy]], atol=1e-15)

    @pytest.mark.corenet
    def test_registered(self, cls):
        import corenet

        registry = corenet.get_registry()
        assert registry.name_of(cls) == "RNN"
        assert registry.test_groups["TestRNN"].weight == pytest.approx(40)
