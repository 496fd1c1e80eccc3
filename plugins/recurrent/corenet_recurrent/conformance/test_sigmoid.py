"""TestSigmoid: the logistic sigmoid activation."""

import warnings

import numpy as np
import pytest
from corenet_recurrent.activations import Sigmoid

from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check


class TestSigmoid:
    def test_forward_values_and_range(self):
        x = np.linspace(-30, 30, 60).reshape(3, 20)
        y = Sigmoid().forward(x)
        np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-14, atol=0)
        assert np.all((y > 0) & (y < 1))
        assert Sigmoid().forward(np.zeros((1, 1)))[0, 0] == 0.5

    def test_extreme_inputs_do_not_overflow(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = Sigmoid().forward(np.array([[-1000.0, 1000.0, -745.0]]))
        assert y[0, 0] == 0.0 and y[0, 1] == 1.0 and 0 < y[0, 2] < 1e-300

    def test_stores_activations_not_input(self):
        layer = Sigmoid()
        y = layer.forward(np.array([[0.3, -2.0]]))
        np.testing.assert_array_equal(layer.activations, y)

    def test_backward_uses_the_activation(self):
        layer = Sigmoid()
        x = np.random.default_rng(0).normal(size=(4, 5))
        error = np.random.default_rng(1).normal(size=(4, 5))
        y = layer.forward(x)
        np.testing.assert_allclose(layer.backward(error), error * y * (1 - y), atol=1e-15)

    @pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4, 4), (7,)])
    def test_gradient(self, shape):
        x = np.random.default_rng(2).normal(size=shape) * 3
        labels = np.random.default_rng(3).uniform(size=shape)
        assert gradient_check([Sigmoid(), L2Loss()], x, labels) <= 1e-7

    def test_dtypes(self):
        layer = Sigmoid()
        assert layer.forward(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
        assert layer.backward(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
        assert layer.forward(np.array([[True, False]])).dtype == np.float64
        assert layer.trainable is False

    def test_backward_errors(self):
        with pytest.raises(ShapeError, match="before forward"):
            Sigmoid().backward(np.ones((2, 2)))
        layer = Sigmoid()
        layer.forward(np.ones((2, 3)))
        with pytest.raises(ShapeError, match=r"\(2, 3\)"):
            layer.backward(np.ones((2, 4)))

    def test_matches_torch(self):
        torch = pytest.importorskip("torch")
        x = np.random.default_rng(4).normal(size=(6, 3)) * 5
        error = np.random.default_rng(5).normal(size=(6, 3))
        layer = Sigmoid()
        y = layer.forward(x)
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.sigmoid(xt)
        (yt * torch.from_numpy(error)).sum().backward()
        np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-14)
        np.testing.assert_allclose(layer.backward(error), xt.grad.numpy(), atol=1e-14)
