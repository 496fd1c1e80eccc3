"""TestFlatten: (batch, ...) -> (batch, -1) and back, values, gradient, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.errors import ShapeError
from corenet.layers.flatten import Flatten
from corenet.testing import L2Loss, gradient_check


class TestFlatten:
    def test_not_trainable(self):
        layer = Flatten()
        assert not layer.trainable and not layer.testing_phase

    @pytest.mark.parametrize("shape", [(9, 3, 4, 11), (2, 5, 7), (4, 6), (3, 2, 2, 2, 2)])
    def test_forward_shape_and_order(self, shape):
        x = np.random.rand(*shape)
        output = Flatten().forward(x)
        assert output.shape == (shape[0], int(np.prod(shape[1:])))
        np.testing.assert_array_equal(output, x.reshape(shape[0], -1))
        np.testing.assert_array_equal(output[1], x[1].ravel())

    @pytest.mark.parametrize("shape", [(9, 3, 4, 11), (2, 5, 7), (4, 6)])
    def test_backward_restores_shape(self, shape):
        layer = Flatten()
        x = np.random.rand(*shape)
        output = layer.forward(x)
        error = np.random.rand(*output.shape)
        gradient = layer.backward(error)
        assert gradient.shape == shape
        np.testing.assert_array_equal(gradient, error.reshape(shape))
        np.testing.assert_array_equal(layer.backward(output), x)

    def test_non_contiguous_input(self):
        x = np.random.rand(3, 4, 5, 6).transpose(0, 2, 1, 3)
        layer = Flatten()
        np.testing.assert_array_equal(layer.forward(x)[2], x[2].ravel())
        assert layer.backward(layer.forward(x)).shape == x.shape

    def test_gradient_check(self):
        x = np.random.rand(2, 3, 4, 2)
        label = np.random.rand(2, 24)
        assert gradient_check([Flatten(), L2Loss()], x, label) <= 1e-5

    def test_dtypes(self):
        layer = Flatten()
        output = layer.forward(np.ones((2, 3, 4), dtype=np.float32))
        assert output.dtype == np.float32
        assert layer.backward(np.ones((2, 12), dtype=np.float32)).dtype == np.float32
        assert Flatten().forward(np.arange(24).reshape(2, 3, 4)).dtype == np.float64

    def test_shape_follows_last_forward(self):
        layer = Flatten()
        layer.forward(np.zeros((2, 3, 4)))
        layer.forward(np.zeros((5, 2, 2, 2)))
        assert layer.backward(np.zeros((5, 8))).shape == (5, 2, 2, 2)

    def test_errors(self):
        layer = Flatten()
        with pytest.raises(ShapeError, match="before forward"):
            layer.backward(np.zeros((2, 12)))
        layer.forward(np.zeros((2, 3, 4)))
        with pytest.raises(ShapeError, match=r"Flatten\(\).*\(2, 12\)"):
            layer.backward(np.zeros((2, 11)))
        with pytest.raises(ShapeError, match="empty batch"):
            layer.forward(np.zeros((0, 3)))

    def test_repr_and_registered(self):
        assert repr(Flatten()) == "Flatten()"
        assert corenet.get_registry().layers["Flatten"] is Flatten
