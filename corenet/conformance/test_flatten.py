"""Conformance group TestFlatten: (batch, ...) -> (batch, -1) and back."""

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


@pytest.fixture
def Flatten(impl):
    return impl("Flatten")


class TestFlatten:
    def setup_method(self) -> None:
        np.random.seed(11)

    # -- contract -------------------------------------------------------------------------------
    def test_flags(self, Flatten):
        layer = Flatten()
        expect_equal(getattr(layer, "trainable", None), False, "Flatten().trainable")
        expect_equal(getattr(layer, "testing_phase", None), False, "Flatten().testing_phase")

    @pytest.mark.parametrize("shape", [(9, 3, 4, 11), (2, 5, 7), (4, 6), (3, 2, 2, 2, 2)])
    def test_forward_shape_and_order(self, Flatten, shape):
        x = np.random.rand(*shape)
        output = Flatten().forward(x)
        expect_shape(output, (shape[0], int(np.prod(shape[1:]))), f"forward output for input {shape}",
                     "keep the batch axis and flatten the rest")
        expect_close(output, x.reshape(shape[0], -1), "forward output", "keep NumPy's (C) order: reshape(batch, -1)",
                     rtol=0, atol=0)

    @pytest.mark.parametrize("shape", [(9, 3, 4, 11), (2, 5, 7), (4, 6)])
    def test_backward_restores_shape(self, Flatten, shape):
        layer = Flatten()
        x = np.random.rand(*shape)
        output = layer.forward(x)
        error = np.random.rand(*output.shape)
        gradient = layer.backward(error)
        expect_shape(gradient, shape, "backward output", "reshape the error to the shape of the last forward input")
        expect_close(gradient, error.reshape(shape), "backward output", rtol=0, atol=0)

    def test_non_contiguous_input(self, Flatten):
        x = np.random.rand(3, 4, 5, 6).transpose(0, 2, 1, 3)
        layer = Flatten()
        expect_close(layer.forward(x)[2], x[2].ravel(), "forward output of a transposed (non-contiguous) input",
                     rtol=0, atol=0)
        expect_shape(layer.backward(layer.forward(x)), x.shape, "backward output")

    def test_gradient_check(self, Flatten):
        x = np.random.rand(2, 3, 4, 2)
        label = np.random.rand(2, 24)
        expect_gradient(gradient_check([Flatten(), L2Loss()], x, label), "gradient w.r.t. the input")

    def test_shape_follows_last_forward(self, Flatten):
        layer = Flatten()
        layer.forward(np.zeros((2, 3, 4)))
        layer.forward(np.zeros((5, 2, 2, 2)))
        expect_shape(layer.backward(np.zeros((5, 8))), (5, 2, 2, 2), "backward output after two forwards",
                     "store the input shape in every forward")

    # -- reference ------------------------------------------------------------------------------
    @pytest.mark.reference
    def test_trains_like_the_reference(self, Flatten, impl):
        Conv, FullyConnected, Sgd = (impl.reference(n) for n in ("Conv", "FullyConnected", "Sgd"))  # noqa: N806

        def chain(flatten_class):
            conv, fc = Conv((1, 1), (2, 3, 3), 3), FullyConnected(3 * 4 * 5, 2)
            for index, layer in enumerate((conv, fc)):
                layer.initialize(ArrayInitializer(index), ArrayInitializer(5 + index))
                layer.optimizer = Sgd(0.01)
            return Chain([conv, flatten_class(), fc])

        x = np.random.standard_normal((3, 2, 4, 5))
        label = np.random.standard_normal((3, 2))
        train_side_by_side(chain(Flatten), chain(impl.reference("Flatten")), x, label, steps=5,
                           what="Conv-Flatten-FullyConnected")

    @pytest.mark.reference
    def test_matches_torch_flatten(self, Flatten):
        torch = pytest.importorskip("torch")
        x = np.random.standard_normal((3, 2, 4, 5))
        expect_close(Flatten().forward(x), torch.flatten(torch.from_numpy(x), 1).numpy(),
                     "forward output vs torch.flatten(x, 1)", rtol=0, atol=0)

    # -- corenet --------------------------------------------------------------------------------
    @pytest.mark.corenet
    def test_backward_of_the_output_is_the_input(self, Flatten):
        layer = Flatten()
        x = np.random.rand(2, 3, 4)
        np.testing.assert_array_equal(layer.backward(layer.forward(x)), x)

    @pytest.mark.corenet
    def test_dtypes(self, Flatten):
        layer = Flatten()
        output = layer.forward(np.ones((2, 3, 4), dtype=np.float32))
        assert output.dtype == np.float32
        assert layer.backward(np.ones((2, 12), dtype=np.float32)).dtype == np.float32
        assert Flatten().forward(np.arange(24).reshape(2, 3, 4)).dtype == np.float64

    @pytest.mark.corenet
    def test_errors(self, Flatten):
        layer = Flatten()
        with pytest.raises(ShapeError, match="before forward"):
            layer.backward(np.zeros((2, 12)))
        layer.forward(np.zeros((2, 3, 4)))
        with pytest.raises(ShapeError, match=r"Flatten\(\).*\(2, 12\)"):
            layer.backward(np.zeros((2, 11)))
        with pytest.raises(ShapeError, match="empty batch"):
            layer.forward(np.zeros((0, 3)))

    @pytest.mark.corenet
    def test_repr_and_registered(self, Flatten):
        assert repr(Flatten()) == "Flatten()"
        assert corenet.get_registry().layers["Flatten"] is Flatten
