"""Conformance group TestReLU: max(0, x) on any shape, the error passed where x > 0."""

from __future__ import annotations

import numpy as np
import pytest

from corenet.checking.agreement import Chain, train_side_by_side
from corenet.checking.doubles import ArrayInitializer, away_from_zero
from corenet.checking.expect import expect, expect_close, expect_equal, expect_gradient, expect_shape
from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

pytestmark = pytest.mark.contract
TOLERANCE = 1e-5


@pytest.fixture
def ReLU(impl):
    return impl("ReLU")


class TestReLU:
    def setup_method(self) -> None:
        np.random.seed(7)

    # -- contract: what the exercise asks -------------------------------------------------------
    def test_flags(self, ReLU):
        layer = ReLU()
        expect_equal(getattr(layer, "trainable", None), False, "ReLU().trainable")
        expect_equal(getattr(layer, "testing_phase", None), False, "ReLU().testing_phase",
                     "the exercise sets testing_phase False by default (in the base layer)")

    def test_forward(self, ReLU):
        x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
        expect_close(ReLU().forward(x), [[0.0, 0.0, 0.0, 0.5, 3.0]], "forward output", rtol=0, atol=0)

    def test_forward_half_positive(self, ReLU):
        x = np.concatenate([-np.ones((5, 4)), np.ones((5, 4))], axis=1)
        output = ReLU().forward(x)
        expect_shape(output, x.shape, "forward output")
        expect_equal(int(np.sum(output > 0)), 20, "number of positive outputs for 20 positive inputs of 40")

    def test_backward_masks_the_error(self, ReLU):
        layer = ReLU()
        layer.forward(np.array([[-1.0, 0.5, 2.0], [3.0, -4.0, 1e-3]]))
        error = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
        expect_close(layer.backward(error), [[0.0, 20.0, 30.0], [40.0, 0.0, 60.0]], "backward output",
                     "pass the error where the forward input was positive, 0 elsewhere", rtol=0, atol=0)

    @pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4), (2, 2, 3, 3)])
    def test_any_shape(self, ReLU, shape):
        layer = ReLU()
        x = away_from_zero(shape)
        expect_close(layer.forward(x), np.maximum(x, 0), f"forward output for a {len(shape)}-D input")
        error = np.random.standard_normal(shape)
        expect_close(layer.backward(error), error * (x > 0), f"backward output for a {len(shape)}-D input")

    def test_gradient_check(self, ReLU):
        x = away_from_zero((8, 5))
        label = np.random.standard_normal((8, 5))
        expect_gradient(gradient_check([ReLU(), L2Loss()], x, label), "gradient w.r.t. the input")

    def test_gradient_check_4d(self, ReLU):
        x = away_from_zero((2, 3, 4, 4))
        label = np.random.standard_normal((2, 3, 4, 4))
        expect_gradient(gradient_check([ReLU(), L2Loss()], x, label), "gradient w.r.t. a 4-D input")

    def test_gradient_check_between_fully_connected_layers(self, ReLU, impl):
        FullyConnected = impl.reference("FullyConnected")
        x = np.random.standard_normal((6, 4))
        label = np.random.standard_normal((6, 2))
        first, second = FullyConnected(4, 5), FullyConnected(5, 2)
        first.weights = np.random.standard_normal((5, 5))
        assert np.abs(first.forward(x)).min() > 1e-3  # every hidden pre-activation away from the kink
        layers = [first, ReLU(), second, L2Loss()]
        expect_gradient(gradient_check(layers, x, label), "gradient through FullyConnected-ReLU-FullyConnected")
        expect_gradient(gradient_check_weights(layers, x, label, layer_index=0),
                        "gradient of the first FullyConnected's weights through the ReLU")

    # -- reference: agreement with corenet and PyTorch --------------------------------------------
    @pytest.mark.reference
    def test_trains_like_the_reference(self, ReLU, impl):
        FullyConnected, Sgd = impl.reference("FullyConnected"), impl.reference("Sgd")
        reference_relu = impl.reference("ReLU")

        def chain(relu_class):
            layers = [FullyConnected(4, 6), relu_class(), FullyConnected(6, 3)]
            for index in (0, 2):
                layers[index].initialize(ArrayInitializer(index), ArrayInitializer(10 + index))
                layers[index].optimizer = Sgd(0.05)
            return Chain(layers)

        x = np.random.standard_normal((7, 4))
        label = np.random.standard_normal((7, 3))
        train_side_by_side(chain(ReLU), chain(reference_relu), x, label, steps=6,
                           what="FullyConnected-ReLU-FullyConnected")

    @pytest.mark.reference
    def test_matches_torch(self, ReLU):
        torch = pytest.importorskip("torch")
        x = away_from_zero((5, 3, 4))
        error = np.random.standard_normal(x.shape)
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        ty = torch.nn.ReLU()(tx)
        ty.backward(torch.from_numpy(error))
        layer = ReLU()
        expect_close(layer.forward(x), ty.detach().numpy(), "forward output vs torch.nn.ReLU")
        expect_close(layer.backward(error), tx.grad.numpy(), "backward output vs torch.nn.ReLU")

    # -- corenet: extras of corenet's own layer -------------------------------------------------
    @pytest.mark.corenet
    def test_one_dimensional_input(self, ReLU):
        layer = ReLU()
        x = np.random.standard_normal(6)
        np.testing.assert_array_equal(layer.forward(x), np.maximum(x, 0))

    @pytest.mark.corenet
    def test_zero_input_passes_no_error(self, ReLU):
        layer = ReLU()
        layer.forward(np.array([[-1.0, 0.0, -0.0, 1e-300]]))
        np.testing.assert_array_equal(layer.backward(np.ones((1, 4))), [[0.0, 0.0, 0.0, 1.0]])

    @pytest.mark.corenet
    def test_dtypes(self, ReLU):
        layer = ReLU()
        out32 = layer.forward(np.array([[-1.0, 2.0]], dtype=np.float32))
        assert out32.dtype == np.float32
        assert layer.backward(np.ones((1, 2), dtype=np.float32)).dtype == np.float32
        out_int = layer.forward(np.array([[-1, 2]]))
        assert out_int.dtype == np.float64
        np.testing.assert_array_equal(out_int, [[0.0, 2.0]])

    @pytest.mark.corenet
    def test_does_not_modify_input(self, ReLU):
        x = np.array([[-1.0, 2.0]])
        ReLU().forward(x)
        expect(np.array_equal(x, [[-1.0, 2.0]]), "forward changed its input array in place")

    @pytest.mark.corenet
    def test_backward_before_forward(self, ReLU):
        with pytest.raises(ShapeError, match=r"ReLU\(\).*backward called before forward"):
            ReLU().backward(np.zeros((2, 3)))

    @pytest.mark.corenet
    def test_wrong_error_shape(self, ReLU):
        layer = ReLU()
        layer.forward(np.zeros((2, 3)))
        with pytest.raises(ShapeError, match=r"ReLU\(\).*\(2, 3\).*\(3, 2\)"):
            layer.backward(np.zeros((3, 2)))

    @pytest.mark.corenet
    def test_scalar_input_is_refused(self, ReLU):
        with pytest.raises(ShapeError, match="ReLU"):
            ReLU().forward(np.float64(3.0))
