"""TestPooling: shapes, values, error routing (overlaps, ties), gradients, errors, PyTorch parity."""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.errors import ShapeError
from corenet.layers.flatten import Flatten
from corenet.layers.pooling import Pooling
from corenet.testing import L2Loss, gradient_check


def reference_pooling(x: np.ndarray, stride, window, error: np.ndarray):
    """Window-by-window max pooling and routing of ``error`` to each window's first maximum."""
    (sy, sx), (p, q) = stride, window
    out_y, out_x = (x.shape[2] - p) // sy + 1, (x.shape[3] - q) // sx + 1
    output = np.zeros((*x.shape[:2], out_y, out_x))
    gradient = np.zeros(x.shape)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(out_y):
                for j in range(out_x):
                    window_values = x[b, c, i * sy : i * sy + p, j * sx : j * sx + q]
                    u, v = np.unravel_index(np.argmax(window_values), (p, q))
                    output[b, c, i, j] = window_values[u, v]
                    gradient[b, c, i * sy + u, j * sx + v] += error[b, c, i, j]
    return output, gradient


class TestPooling:
    def test_not_trainable(self):
        layer = Pooling((2, 2), (2, 2))
        assert not layer.trainable and not layer.testing_phase

    @pytest.mark.parametrize(
        "stride, window, image, expected",
        [
            ((2, 2), (2, 2), (4, 7), (2, 3)),
            ((2, 2), (2, 2), (28, 28), (14, 14)),
            ((1, 1), (2, 2), (5, 6), (4, 5)),
            ((2, 1), (3, 2), (7, 5), (3, 4)),
            (3, 2, (8, 8), (3, 3)),
            ((2,), [3], (7, 9), (3, 4)),
        ],
    )
    def test_output_shape(self, stride, window, image, expected):
        layer = Pooling(stride, window)
        output = layer.forward(np.random.rand(2, 3, *image))
        assert output.shape == (2, 3, *expected)
        assert layer.backward(np.random.rand(*output.shape)).shape == (2, 3, *image)

    @pytest.mark.parametrize(
        "stride, window, image",
        [
            ((2, 2), (2, 2), (6, 8)),
            ((2, 2), (2, 2), (7, 5)),
            ((1, 1), (2, 2), (5, 6)),
            ((2, 1), (3, 2), (7, 6)),
            ((3, 3), (2, 2), (8, 7)),
            ((1, 2), (2, 3), (4, 9)),
        ],
    )
    def test_matches_window_by_window_reference(self, stride, window, image):
        layer = Pooling(stride, window)
        x = np.random.rand(2, 3, *image)
        output = layer.forward(x)
        error = np.random.rand(*output.shape)
        expected_output, expected_gradient = reference_pooling(x, layer.stride_shape, layer.pooling_shape, error)
        np.testing.assert_array_equal(output, expected_output)
        np.testing.assert_allclose(layer.backward(error), expected_gradient, rtol=1e-12)

    def test_routing_disjoint(self):
        layer = Pooling((2, 2), (2, 2))
        x = np.array([[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 1.0, 7.0], [0.0, 0.0, 9.0, 8.0], [6.0, 1.0, 2.0, 3.0]])
        np.testing.assert_array_equal(layer.forward(x[None, None])[0, 0], [[5.0, 7.0], [6.0, 9.0]])
        gradient = layer.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))[0, 0]
        expected = np.zeros((4, 4))
        expected[0, 1], expected[1, 3], expected[3, 0], expected[2, 2] = 10.0, 20.0, 30.0, 40.0
        np.testing.assert_array_equal(gradient, expected)

    def test_routing_overlapping_windows_sum(self):
        # stride 1, window 2x2 on a 3x3 image whose centre is the maximum of all four windows
        layer = Pooling((1, 1), (2, 2))
        x = np.array([[1.0, 2.0, 3.0], [4.0, 9.0, 5.0], [6.0, 7.0, 8.0]])
        np.testing.assert_array_equal(layer.forward(x[None, None])[0, 0], [[9.0, 9.0], [9.0, 9.0]])
        gradient = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))[0, 0]
        expected = np.zeros((3, 3))
        expected[1, 1] = 10.0
        np.testing.assert_array_equal(gradient, expected)

    @pytest.mark.parametrize("stride", [(2, 2), (1, 1)])
    def test_ties_go_to_first_maximum(self, stride):
        layer = Pooling(stride, (2, 2))
        x = np.ones((1, 1, 2, 2))
        layer.forward(x)
        gradient = layer.backward(np.full((1, 1, 1, 1), 3.0))[0, 0]
        np.testing.assert_array_equal(gradient, [[3.0, 0.0], [0.0, 0.0]])

    @pytest.mark.parametrize(
        "stride, window, input_shape", [((2, 2), (2, 2), (2, 2, 4, 6)), ((1, 2), (2, 3), (2, 2, 5, 7))]
    )
    def test_gradient_check(self, stride, window, input_shape):
        x = np.random.RandomState(0).permutation(int(np.prod(input_shape))).reshape(input_shape) / 10.0
        layer = Pooling(stride, window)
        label = np.random.rand(input_shape[0], int(np.prod(layer.forward(x).shape[1:])))
        assert gradient_check([layer, Flatten(), L2Loss()], x, label) <= 1e-5

    def test_float32_stays_float32(self):
        layer = Pooling(2, 2)
        output = layer.forward(np.random.rand(2, 3, 4, 4).astype(np.float32))
        assert output.dtype == np.float32
        assert layer.backward(np.ones(output.shape, dtype=np.float32)).dtype == np.float32
        overlapping = Pooling(1, 2)
        output = overlapping.forward(np.random.rand(1, 1, 3, 3).astype(np.float32))
        assert overlapping.backward(np.ones(output.shape)).dtype == np.float32
        assert Pooling(2, 2).forward(np.arange(16).reshape(1, 1, 4, 4)).dtype == np.float64

    def test_repr_and_registered(self):
        assert repr(Pooling((2, 2), (2, 2))) == "Pooling((2, 2), (2, 2))"
        assert repr(Pooling(3, [2])) == "Pooling((3, 3), (2, 2))"
        assert corenet.get_registry().layers["Pooling"] is Pooling

    def test_input_errors(self):
        layer = Pooling((2, 2), (2, 2))
        with pytest.raises(ShapeError, match=r"Pooling\(.*4-D.*got a 3-D"):
            layer.forward(np.zeros((2, 4, 4)))
        with pytest.raises(ShapeError, match=r"3x2 window is larger than the 2x5 input"):
            Pooling(1, (3, 2)).forward(np.zeros((1, 1, 2, 5)))
        with pytest.raises(ShapeError, match="before forward"):
            Pooling(2, 2).backward(np.zeros((1, 1, 2, 2)))
        layer.forward(np.zeros((1, 1, 4, 4)))
        with pytest.raises(ShapeError, match=r"\(1, 1, 2, 2\)"):
            layer.backward(np.zeros((1, 1, 2, 3)))

    @pytest.mark.parametrize(
        "args, name",
        [
            ((0, 2), "stride_shape"),
            (((1, 2, 3), 2), "stride_shape"),
            ((2, (2, 0)), "pooling_shape"),
            ((2, 2.0), "pooling_shape"),
        ],
    )
    def test_bad_constructor_arguments(self, args, name):
        with pytest.raises(ValueError, match=name):
            Pooling(*args)

    @pytest.mark.parametrize(
        "stride, window, image",
        [
            ((2, 2), (2, 2), (8, 8)),
            ((2, 2), (2, 2), (7, 9)),
            ((1, 2), (3, 2), (7, 8)),
            ((1, 1), (2, 2), (5, 5)),
        ],
    )
    def test_matches_torch_max_pool2d(self, stride, window, image):
        torch = pytest.importorskip("torch")
        layer = Pooling(stride, window)
        rng = np.random.RandomState(2)
        x = rng.normal(size=(2, 3, *image))
        output = layer.forward(x)
        error = rng.normal(size=output.shape)
        x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        out_t = torch.nn.functional.max_pool2d(x_t, window, stride)
        out_t.backward(torch.tensor(error, dtype=torch.float64))
        np.testing.assert_array_equal(output, out_t.detach().numpy())
        np.testing.assert_allclose(layer.backward(error), x_t.grad.numpy(), rtol=1e-12, atol=1e-12)
