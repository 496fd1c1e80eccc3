"""Conformance group TestReLU: max(0, x) on any shape, error passed where x > 0."""

from __future__ import annotations

import numpy as np
import pytest

from corenet.errors import ShapeError
from corenet.layers.activations import ReLU
from corenet.layers.fully_connected import FullyConnected
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

TOLERANCE = 1e-5


def away_from_zero(shape: tuple[int, ...], margin: float = 0.1) -> np.ndarray:
    """Random values with |x| >= margin, so central differences never straddle the kink."""
    values = np.random.standard_normal(shape)
    return np.where(values >= 0, values + margin, values - margin)


class TestReLU:
    def setup_method(self) -> None:
        np.random.seed(7)

    def test_flags(self):
        layer = ReLU()
        assert layer.trainable is False
        assert layer.testing_phase is False

    def test_forward(self):
        x = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0]])
        np.testing.assert_array_equal(ReLU().forward(x), [[0.0, 0.0, 0.0, 0.5, 3.0]])

    def test_forward_half_positive(self):
        x = np.concatenate([-np.ones((5, 4)), np.ones((5, 4))], axis=1)
        output = ReLU().forward(x)
        assert output.shape == x.shape
        assert np.sum(output > 0) == 20
        np.testing.assert_array_equal(output[:, 4:], 1.0)

    def test_backward_masks_the_error(self):
        layer = ReLU()
        x = np.array([[-1.0, 0.0, 2.0], [3.0, -4.0, 1e-300]])
        layer.forward(x)
        error = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
        np.testing.assert_array_equal(layer.backward(error), [[0.0, 0.0, 30.0], [40.0, 0.0, 60.0]])

    @pytest.mark.parametrize("shape", [(6,), (4, 5), (2, 3, 4), (2, 2, 3, 3)])
    def test_any_shape(self, shape):
        layer = ReLU()
        x = np.random.standard_normal(shape)
        output = layer.forward(x)
        np.testing.assert_array_equal(output, np.maximum(x, 0))
        error = np.random.standard_normal(shape)
        np.testing.assert_array_equal(layer.backward(error), error * (x > 0))

    def test_gradient_check(self):
        x = away_from_zero((8, 5))
        label = np.random.standard_normal((8, 5))
        assert gradient_check([ReLU(), L2Loss()], x, label) <= TOLERANCE

    def test_gradient_check_4d(self):
        x = away_from_zero((2, 3, 4, 4))
        label = np.random.standard_normal((2, 3, 4, 4))
        assert gradient_check([ReLU(), L2Loss()], x, label) <= TOLERANCE

    def test_gradient_check_between_fully_connected_layers(self):
        np.random.seed(3)
        x = np.random.standard_normal((6, 4))
        label = np.random.standard_normal((6, 2))
        first = FullyConnected(4, 5)
        first.weights = np.random.standard_normal((5, 5))
        layers = [first, ReLU(), FullyConnected(5, 2), L2Loss()]
        # keep every hidden pre-activation away from the kink
        assert np.abs(first.forward(x)).min() > 1e-3
        assert gradient_check(layers, x, label) <= TOLERANCE
        assert gradient_check_weights(layers, x, label, layer_index=0) <= TOLERANCE

    def test_dtypes(self):
        layer = ReLU()
        out32 = layer.forward(np.array([[-1.0, 2.0]], dtype=np.float32))
        assert out32.dtype == np.float32
        assert layer.backward(np.ones((1, 2), dtype=np.float32)).dtype == np.float32
        out_int = layer.forward(np.array([[-1, 2]]))
        assert out_int.dtype == np.float64
        np.testing.assert_array_equal(out_int, [[0.0, 2.0]])

    def test_does_not_modify_input(self):
        x = np.array([[-1.0, 2.0]])
        ReLU().forward(x)
        np.testing.assert_array_equal(x, [[-1.0, 2.0]])

    def test_backward_before_forward(self):
        with pytest.raises(ShapeError, match=r"ReLU\(\).*backward called before forward"):
            ReLU().backward(np.zeros((2, 3)))

    def test_wrong_error_shape(self):
        layer = ReLU()
        layer.forward(np.zeros((2, 3)))
        with pytest.raises(ShapeError, match=r"ReLU\(\).*\(2, 3\).*\(3, 2\)"):
            layer.backward(np.zeros((3, 2)))

    def test_scalar_input_is_refused(self):
        with pytest.raises(ShapeError, match="ReLU"):
            ReLU().forward(np.float64(3.0))

    def test_matches_torch(self):
        torch = pytest.importorskip("torch")
        x = np.random.standard_normal((5, 3, 4))
        x[0, 0, :2] = 0.0  # torch and corenet both pass no gradient at exactly 0
        error = np.random.standard_normal(x.shape)
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        ty = torch.nn.ReLU()(tx)
        ty.backward(torch.from_numpy(error))
        layer = ReLU()
        np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(layer.backward(error), tx.grad.numpy(), rtol=0, atol=1e-8)
