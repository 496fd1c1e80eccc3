"""TestRNN: the Elman RNN (shared recurrent contract plus RNN-specific checks)."""

import numpy as np
import pytest
from corenet_recurrent.contract import RecurrentContract
from corenet_recurrent.rnn import RNN as ReferenceRNN

import corenet

RNN = corenet.get_registry().layers.get("RNN", ReferenceRNN)  # selected; CORENET_IMPL picks the tier


class TestRNN(RecurrentContract):
    layer_class = RNN

    def test_hand_computed_two_steps(self):
        layer = RNN(1, 1, 1)
        layer.weights = np.array([[0.5], [-1.0], [0.1]])  # rows x, h, bias
        layer.output_weights = np.array([[2.0], [-0.3]])  # rows h, bias
        y = layer.forward(np.array([[1.0], [2.0]]))
        h1 = np.tanh(0.5 * 1.0 + 0.1)
        h2 = np.tanh(0.5 * 2.0 - 1.0 * h1 + 0.1)
        expected = 1.0 / (1.0 + np.exp(-(2.0 * np.array([h1, h2]) - 0.3)))
        np.testing.assert_allclose(y[:, 0], expected, rtol=0, atol=1e-15)
        np.testing.assert_allclose(layer.state[0], [h2], atol=1e-15)

    def test_hand_computed_gradient_of_one_step(self):
        layer = RNN(1, 1, 1)
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

    def test_registered(self):
        import corenet

        assert corenet.get_registry().layers["RNN"] is RNN
        assert corenet.get_registry().test_groups["TestRNN"].weight == pytest.approx(40)
