"""Conformance group TestPooling: 2-D max pooling without padding; the error goes to each window's maximum."""

from __future__ import annotations

import numpy as np
import pytest

import corenet
from corenet.checking.agreement import Chain, train_side_by_side
from corenet.checking.doubles import ArrayInitializer
from corenet.checking.expect import expect_close, expect_equal, expect_gradient, expect_shape
from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check

pytestmark = pytest.mark.contract
ROUTING_HINT = "backward puts each output's error at the position of its window's maximum, adding up where " \
               "windows overlap"


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


def distinct(shape, seed: int = 0) -> np.ndarray:
    """Values without ties (a permutation), so every window has exactly one maximum."""
    return np.random.RandomState(seed).permutation(int(np.prod(shape))).reshape(shape) / 10.0


@pytest.fixture
def Pooling(impl):
    return impl("Pooling")


class TestPooling:
    def setup_method(self) -> None:
        np.random.seed(13)

    # -- contract -------------------------------------------------------------------------------
    def test_flags(self, Pooling):
        layer = Pooling((2, 2), (2, 2))
        expect_equal(getattr(layer, "trainable", None), False, "Pooling((2, 2), (2, 2)).trainable")
        expect_equal(getattr(layer, "testing_phase", None), False, "Pooling((2, 2), (2, 2)).testing_phase")

    @pytest.mark.parametrize(
        "stride, window, image, expected",
        [
            ((2, 2), (2, 2), (4, 7), (2, 3)),
            ((2, 2), (2, 2), (28, 28), (14, 14)),
            ((1, 1), (2, 2), (5, 6), (4, 5)),
            ((2, 1), (3, 2), (7, 5), (3, 4)),
        ],
    )
    def test_output_shape(self, Pooling, stride, window, image, expected):
        layer = Pooling(stride, window)
        output = layer.forward(np.random.rand(2, 3, *image))
        expect_shape(output, (2, 3, *expected), f"forward output of Pooling({stride}, {window}) on {image} images",
                     "no padding: output = (size - window) // stride + 1")
        expect_shape(layer.backward(np.random.rand(*output.shape)), (2, 3, *image), "backward output")

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
    def test_matches_window_by_window_reference(self, Pooling, stride, window, image):
        layer = Pooling(stride, window)
        x = distinct((2, 3, *image))
        output = layer.forward(x)
        error = np.random.rand(*output.shape)
        expected_output, expected_gradient = reference_pooling(x, stride, window, error)
        expect_close(output, expected_output, f"forward output of Pooling({stride}, {window})", rtol=0, atol=0)
        expect_close(layer.backward(error), expected_gradient, f"backward output of Pooling({stride}, {window})",
                     ROUTING_HINT, rtol=1e-12)

    def test_routing_disjoint(self, Pooling):
        layer = Pooling((2, 2), (2, 2))
        x = np.array([[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 1.0, 7.0], [0.0, 0.0, 9.0, 8.0], [6.0, 1.0, 2.0, 3.0]])
        expect_close(layer.forward(x[None, None])[0, 0], [[5.0, 7.0], [6.0, 9.0]], "forward output", rtol=0, atol=0)
        gradient = layer.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))[0, 0]
        expected = np.zeros((4, 4))
        expected[0, 1], expected[1, 3], expected[3, 0], expected[2, 2] = 10.0, 20.0, 30.0, 40.0
        expect_close(gradient, expected, "backward output", ROUTING_HINT, rtol=0, atol=0)

    def test_routing_overlapping_windows_sum(self, Pooling):
        # stride 1, window 2x2 on a 3x3 image whose centre is the maximum of all four windows
        layer = Pooling((1, 1), (2, 2))
        x = np.array([[1.0, 2.0, 3.0], [4.0, 9.0, 5.0], [6.0, 7.0, 8.0]])
        expect_close(layer.forward(x[None, None])[0, 0], [[9.0, 9.0], [9.0, 9.0]], "forward output", rtol=0, atol=0)
        gradient = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))[0, 0]
        expected = np.zeros((3, 3))
        expected[1, 1] = 10.0
        expect_close(gradient, expected, "backward output with overlapping windows", ROUTING_HINT, rtol=0, atol=0)

    @pytest.mark.parametrize(
        "stride, window, input_shape", [((2, 2), (2, 2), (2, 2, 4, 6)), ((1, 2), (2, 3), (2, 2, 5, 7))]
    )
    def test_gradient_check(self, Pooling, impl, stride, window, input_shape):
        x = distinct(input_shape)
        layer = Pooling(stride, window)
        label = np.random.rand(input_shape[0], int(np.prod(layer.forward(x).shape[1:])))
        expect_gradient(gradient_check([layer, impl.reference("Flatten")(), L2Loss()], x, label),
                        f"gradient w.r.t. the input of Pooling({stride}, {window})")

    # -- reference ------------------------------------------------------------------------------
    @pytest.mark.reference
    def test_trains_like_the_reference(self, Pooling, impl):
        Conv, Flatten, FullyConnected, Adam = (  # noqa: N806
            impl.reference(n) for n in ("Conv", "Flatten", "FullyConnected", "Adam"))

        def chain(pooling_class):
            conv, fc = Conv((1, 1), (2, 3, 3), 3), FullyConnected(3 * 3 * 2, 2)
            for index, layer in enumerate((conv, fc)):
                layer.initialize(ArrayInitializer(index), ArrayInitializer(5 + index))
                layer.optimizer = Adam(0.01, 0.9, 0.999)
            return Chain([conv, pooling_class((2, 2), (2, 2)), Flatten(), fc])

        x = np.random.standard_normal((3, 2, 6, 5))
        label = np.random.standard_normal((3, 2))
        train_side_by_side(chain(Pooling), chain(impl.reference("Pooling")), x, label, steps=5,
                           what="Conv-Pooling-Flatten-FullyConnected")

    @pytest.mark.reference
    @pytest.mark.parametrize(
        "stride, window, image",
        [((2, 2), (2, 2), (8, 8)), ((2, 2), (2, 2), (7, 9)), ((1, 2), (3, 2), (7, 8)), ((1, 1), (2, 2), (5, 5))],
    )
    def test_matches_torch_max_pool2d(self, Pooling, stride, window, image):
        torch = pytest.importorskip("torch")
        layer = Pooling(stride, window)
        rng = np.random.RandomState(2)
        x = rng.normal(size=(2, 3, *image))
        output = layer.forward(x)
        error = rng.normal(size=output.shape)
        x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        out_t = torch.nn.functional.max_pool2d(x_t, window, stride)
        out_t.backward(torch.tensor(error, dtype=torch.float64))
        expect_close(output, out_t.detach().numpy(), "forward output vs torch max_pool2d", rtol=0, atol=0)
        expect_close(layer.backward(error), x_t.grad.numpy(), "backward output vs torch max_pool2d", atol=1e-12)

    # -- corenet --------------------------------------------------------------------------------
    @pytest.mark.corenet
    @pytest.mark.parametrize(
        "stride, window, image, expected", [(3, 2, (8, 8), (3, 3)), ((2,), [3], (7, 9), (3, 4))])
    def test_int_and_short_shapes(self, Pooling, stride, window, image, expected):
        layer = Pooling(stride, window)
        assert layer.forward(np.random.rand(2, 3, *image)).shape == (2, 3, *expected)

    @pytest.mark.corenet
    @pytest.mark.parametrize("stride", [(2, 2), (1, 1)])
    def test_ties_go_to_first_maximum(self, Pooling, stride):
        layer = Pooling(stride, (2, 2))
        layer.forward(np.ones((1, 1, 2, 2)))
        gradient = layer.backward(np.full((1, 1, 1, 1), 3.0))[0, 0]
        np.testing.assert_array_equal(gradient, [[3.0, 0.0], [0.0, 0.0]])

    @pytest.mark.corenet
    def test_float32_stays_float32(self, Pooling):
        layer = Pooling(2, 2)
        output = layer.forward(np.random.rand(2, 3, 4, 4).astype(np.float32))
        assert output.dtype == np.float32
        assert layer.backward(np.ones(output.shape, dtype=np.float32)).dtype == np.float32
        overlapping = Pooling(1, 2)
        output = overlapping.forward(np.random.rand(1, 1, 3, 3).astype(np.float32))
        assert overlapping.backward(np.ones(output.shape)).dtype == np.float32
        assert Pooling(2, 2).forward(np.arange(16).reshape(1, 1, 4, 4)).dtype == np.float64

    @pytest.mark.corenet
    def test_repr_and_registered(self, Pooling):
        assert repr(Pooling((2, 2), (2, 2))) == "Pooling((2, 2), (2, 2))"
        assert repr(Pooling(3, [2])) == "Pooling((3, 3), (2, 2))"
        assert corenet.get_registry().layers["Pooling"] is Pooling

    @pytest.mark.corenet
    def test_input_errors(self, Pooling):
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

    @pytest.mark.corenet
    @pytest.mark.parametrize(
        "args, name",
        [((0, 2), "stride_shape"), (((1, 2, 3), 2), "stride_shape"), ((2, (2, 0)), "pooling_shape"),
         ((2, 2.0), "pooling_shape")],
    )
    def test_bad_constructor_arguments(self, Pooling, args, name):
        with pytest.raises(ValueError, match=name):
            Pooling(*args)
