"""Conformance group TestSoftMax: row-wise softmax of (batch, classes), backward y * (E - sum(E * y))."""

from __future__ import annotations

import numpy as np
import pytest

from corenet.checking.agreement import Chain, train_side_by_side
from corenet.checking.doubles import ArrayInitializer, one_hot
from corenet.checking.expect import expect, expect_close, expect_equal, expect_gradient, expect_shape
from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

pytestmark = pytest.mark.contract
TOLERANCE = 1e-5
SHIFT_HINT = "subtract each row's maximum before np.exp"


@pytest.fixture
def SoftMax(impl):
    return impl("SoftMax")


class TestSoftMax:
    batch, classes = 9, 4

    def setup_method(self) -> None:
        np.random.seed(42)
        self.input_tensor = np.random.standard_normal((self.batch, self.classes))
        self.label_tensor = one_hot(np.random.randint(0, self.classes, self.batch), self.classes)

    # -- contract -------------------------------------------------------------------------------
    def test_flags(self, SoftMax):
        expect_equal(getattr(SoftMax(), "trainable", None), False, "SoftMax().trainable")
        expect_equal(getattr(SoftMax(), "testing_phase", None), False, "SoftMax().testing_phase")

    def test_forward_is_a_distribution(self, SoftMax):
        output = SoftMax().forward(self.input_tensor)
        expect_shape(output, (self.batch, self.classes), "forward output")
        expect(np.all(output > 0), "forward output has entries <= 0; probabilities must be positive")
        expect_close(output.sum(axis=1), np.ones(self.batch), "row sums of the forward output",
                     "normalise over the classes (axis 1), not over the batch")

    def test_forward_value(self, SoftMax):
        output = SoftMax().forward(np.array([[0.0, np.log(2.0), np.log(5.0)]]))
        expect_close(output, [[1 / 8, 2 / 8, 5 / 8]], "softmax of [0, log 2, log 5]")

    def test_equal_logits_give_uniform(self, SoftMax):
        expect_close(SoftMax().forward(np.full((3, 5), 7.0)), np.full((3, 5), 0.2), "softmax of equal logits")

    def test_shift_invariance(self, SoftMax):
        shifted = self.input_tensor + np.random.standard_normal((self.batch, 1)) * 50
        expect_close(SoftMax().forward(shifted), SoftMax().forward(self.input_tensor),
                     "softmax of logits shifted per row", SHIFT_HINT, rtol=1e-10)

    def test_large_logits_are_stable(self, SoftMax):
        x = np.array([[1000.0, 999.0, -1000.0], [1e5, 1e5, 0.0], [-1e4, -1e4 - 1.0, -1e4 - 2.0]])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            output = SoftMax().forward(x)
        e = np.exp([0.0, -1.0, -2.0])
        expect_close(output, [[e[0] / e[:2].sum(), e[1] / e[:2].sum(), 0.0], [0.5, 0.5, 0.0], e / e.sum()],
                     "softmax of logits around +-1000 and 1e5", SHIFT_HINT)

    def test_backward_formula(self, SoftMax):
        layer = SoftMax()
        y = layer.forward(self.input_tensor)
        error = np.random.standard_normal((self.batch, self.classes))
        expected = y * (error - np.sum(error * y, axis=1, keepdims=True))
        expect_close(layer.backward(error), expected, "backward output",
                     "use the stored forward output y: y * (E - sum(E * y, axis=1))", rtol=1e-10, atol=1e-14)

    def test_backward_rows_sum_to_zero(self, SoftMax):
        layer = SoftMax()
        layer.forward(self.input_tensor)
        error = layer.backward(np.random.standard_normal((self.batch, self.classes)))
        expect_close(error.sum(axis=1), np.zeros(self.batch), "row sums of the backward output", atol=1e-12)

    def test_gradient_check_with_l2_loss(self, SoftMax):
        label = np.random.standard_normal((self.batch, self.classes))
        expect_gradient(gradient_check([SoftMax(), L2Loss()], self.input_tensor, label), "gradient w.r.t. the input")

    def test_gradient_check_with_cross_entropy(self, SoftMax, impl):
        layers = [SoftMax(), impl.reference("CrossEntropyLoss")()]
        expect_gradient(gradient_check(layers, self.input_tensor, self.label_tensor),
                        "gradient w.r.t. the input under a cross-entropy loss")

    def test_gradient_check_after_fully_connected(self, SoftMax, impl):
        x = np.random.standard_normal((self.batch, 5))
        layers = [impl.reference("FullyConnected")(5, self.classes), SoftMax(), impl.reference("CrossEntropyLoss")()]
        expect_gradient(gradient_check(layers, x, self.label_tensor), "gradient through FullyConnected-SoftMax")
        expect_gradient(gradient_check_weights(layers, x, self.label_tensor),
                        "FullyConnected's gradient_weights through the SoftMax")

    # -- reference ------------------------------------------------------------------------------
    @pytest.mark.reference
    def test_trains_like_the_reference(self, SoftMax, impl):
        FullyConnected, Adam = impl.reference("FullyConnected"), impl.reference("Adam")  # noqa: N806

        def chain(softmax_class):
            layer = FullyConnected(5, self.classes)
            layer.initialize(ArrayInitializer(1), ArrayInitializer(2))
            layer.optimizer = Adam(0.05, 0.9, 0.999)
            return Chain([layer, softmax_class()])

        x = np.random.standard_normal((self.batch, 5))
        train_side_by_side(chain(SoftMax), chain(impl.reference("SoftMax")), x, self.label_tensor, steps=6,
                           what="FullyConnected-SoftMax")

    @pytest.mark.reference
    def test_matches_torch(self, SoftMax):
        torch = pytest.importorskip("torch")
        x = self.input_tensor * 5
        error = np.random.standard_normal(x.shape)
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        ty = torch.softmax(tx, dim=1)
        ty.backward(torch.from_numpy(error))
        layer = SoftMax()
        expect_close(layer.forward(x), ty.detach().numpy(), "forward output vs torch.softmax", atol=1e-8)
        expect_close(layer.backward(error), tx.grad.numpy(), "backward output vs torch.softmax", atol=1e-8)

    # -- corenet --------------------------------------------------------------------------------
    @pytest.mark.corenet
    def test_large_logits_raise_no_warning(self, SoftMax):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            output = SoftMax().forward(np.array([[1000.0, 999.0, -1000.0], [1e5, 1e5, 0.0]]))
        assert np.all(np.isfinite(output))

    @pytest.mark.corenet
    def test_dtypes(self, SoftMax):
        layer = SoftMax()
        out32 = layer.forward(self.input_tensor.astype(np.float32))
        assert out32.dtype == np.float32
        assert layer.backward(np.ones_like(out32)).dtype == np.float32
        assert layer.forward(np.array([[1, 2, 3]])).dtype == np.float64

    @pytest.mark.corenet
    @pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
    def test_wrong_rank_says_so(self, SoftMax, shape):
        with pytest.raises(ShapeError, match=r"SoftMax\(\) takes \(batch, classes\), a 2-D array"):
            SoftMax().forward(np.zeros(shape))

    @pytest.mark.corenet
    def test_backward_before_forward(self, SoftMax):
        with pytest.raises(ShapeError, match="backward called before forward"):
            SoftMax().backward(np.zeros((2, 3)))

    @pytest.mark.corenet
    def test_wrong_error_shape(self, SoftMax):
        layer = SoftMax()
        layer.forward(np.zeros((2, 3)))
        with pytest.raises(ShapeError, match=r"SoftMax\(\).*\(2, 3\).*\(2, 4\)"):
            layer.backward(np.zeros((2, 4)))
