"""TestTanH: the hyperbolic tangent activation."""

import numpy as np
import pytest
from corenet_recurrent.activations import TanH

from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check


class TestTanH:
    def test_forward_values_and_range(self):
        x = np.linspace(-30, 30, 60).reshape(3, 20)
        y = TanH().forward(x)
        np.testing.assert_allclose(y, np.tanh(x), rtol=0, atol=0)
        assert np.all(np.abs(y) <= 1) and y[0, 0] == -1.0 and y[-1, -1] == 1.0

    def test_stores_activations_not_input(self):
        layer = TanH()
        x = np.array([[0.3, -2.0]])
        y = layer.forward(x)
        np.testing.assert_array_equal(layer.activations, y)

    def test_backward_uses_the_activation(self):
        layer = TanH()
        x = np.random.default_rng(0).normal(size=(4, 5))
        error = np.random.default_rng(1).normal(size=(4, 5))
        y = layer.forward(x)
        np.testing.assert_allclose(layer.backward(error), error * (1 - y**2), atol=1e-15)

    @pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4, 4), (7,)])
    def test_gradient(self, shape):
        x = np.random.default_rng(2).normal(size=shape)
        labels = np.random.default_rng(3).normal(size=shape)
        assert gradient_check([TanH(), L2Loss()], x, labels) <= 1e-7

    def test_dtypes(self):
        layer = TanH()
        assert layer.forward(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
        assert layer.backward(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
        assert layer.forward(np.array([[1, -1]])).dtype == np.float64
        assert layer.trainable is False and layer.testing_phase is False

    def test_backward_errors(self):
        with pytest.raises(ShapeError, match="before forward"):
            TanH().backward(np.ones((2, 2)))
        layer = TanH()
        layer.forward(np.ones((2, 3)))
        with pytest.raises(ShapeError, match=r"\(2, 3\)"):
            layer.backward(np.ones((3, 2)))

    def test_matches_torch(self):
        torch = pytest.importorskip("torch")
        x = np.random.default_rng(4).normal(size=(6, 3)) * 3
        error = np.random.default_rng(5).normal(size=(6, 3))
        layer = TanH()
        y = layer.forward(x)
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.tanh(xt)
        (yt * torch.from_numpy(error)).sum().backward()
        np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(layer.backward(error), xt.grad.numpy(), atol=1e-12)
