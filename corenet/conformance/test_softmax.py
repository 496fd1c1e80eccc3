"""Conformance group TestSoftMax: row-wise softmax of (batch, classes), backward y * (E - sum(E * y))."""

from __future__ import annotations

import numpy as np
import pytest

from corenet.errors import ShapeError
from corenet.layers.activations import SoftMax
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

TOLERANCE = 1e-5


def one_hot(indices: np.ndarray, classes: int) -> np.ndarray:
    labels = np.zeros((indices.size, classes))
    labels[np.arange(indices.size), indices] = 1.0
    return labels


class TestSoftMax:
    batch, classes = 9, 4

    def setup_method(self) -> None:
        np.random.seed(42)
        self.input_tensor = np.random.standard_normal((self.batch, self.classes))
        self.label_tensor = one_hot(np.random.randint(0, self.classes, self.batch), self.classes)

    def test_flags(self):
        assert SoftMax().trainable is False
        assert SoftMax().testing_phase is False

    def test_forward_is_a_distribution(self):
        output = SoftMax().forward(self.input_tensor)
        assert output.shape == (self.batch, self.classes)
        assert np.all(output > 0)
        np.testing.assert_allclose(output.sum(axis=1), 1.0, rtol=1e-12)

    def test_forward_value(self):
        output = SoftMax().forward(np.array([[0.0, np.log(2.0), np.log(5.0)]]))
        np.testing.assert_allclose(output, [[1 / 8, 2 / 8, 5 / 8]], rtol=1e-12)

    def test_equal_logits_give_uniform(self):
        np.testing.assert_allclose(SoftMax().forward(np.full((3, 5), 7.0)), 0.2, rtol=1e-12)

    def test_shift_invariance(self):
        layer = SoftMax()
        shifted = self.input_tensor + np.random.standard_normal((self.batch, 1)) * 50
        np.testing.assert_allclose(layer.forward(shifted), SoftMax().forward(self.input_tensor), rtol=1e-10)

    def test_large_logits_are_stable(self):
        x = np.array([[1000.0, 999.0, -1000.0], [1e5, 1e5, 0.0], [-1e4, -1e4 - 1.0, -1e4 - 2.0]])
        output = SoftMax().forward(x)
        assert np.all(np.isfinite(output))
        e = np.exp([0.0, -1.0])
        np.testing.assert_allclose(output[0, :2], e / e.sum(), rtol=1e-12)
        np.testing.assert_allclose(output[1], [0.5, 0.5, 0.0], atol=1e-300)
        np.testing.assert_allclose(output[2], SoftMax().forward(np.array([[0.0, -1.0, -2.0]]))[0], rtol=1e-12)

    def test_backward_formula(self):
        layer = SoftMax()
        y = layer.forward(self.input_tensor)
        error = np.random.standard_normal((self.batch, self.classes))
        jacobians = np.einsum("bi,ij->bij", y, np.eye(self.classes)) - np.einsum("bi,bj->bij", y, y)
        expected = np.einsum("bij,bi->bj", jacobians, error)
        np.testing.assert_allclose(layer.backward(error), expected, rtol=1e-10, atol=1e-14)

    def test_backward_rows_sum_to_zero(self):
        layer = SoftMax()
        layer.forward(self.input_tensor)
        error = layer.backward(np.random.standard_normal((self.batch, self.classes)))
        np.testing.assert_allclose(error.sum(axis=1), 0.0, atol=1e-12)

    def test_gradient_check_with_l2_loss(self):
        label = np.random.standard_normal((self.batch, self.classes))
        assert gradient_check([SoftMax(), L2Loss()], self.input_tensor, label) <= TOLERANCE

    def test_gradient_check_with_cross_entropy(self):
        layers = [SoftMax(), CrossEntropyLoss()]
        assert gradient_check(layers, self.input_tensor, self.label_tensor) <= TOLERANCE

    def test_gradient_check_after_fully_connected(self):
        x = np.random.standard_normal((self.batch, 5))
        layers = [FullyConnected(5, self.classes), SoftMax(), CrossEntropyLoss()]
        assert gradient_check(layers, x, self.label_tensor) <= TOLERANCE
        assert gradient_check_weights(layers, x, self.label_tensor) <= TOLERANCE

    def test_dtypes(self):
        layer = SoftMax()
        out32 = layer.forward(self.input_tensor.astype(np.float32))
        assert out32.dtype == np.float32
        assert layer.backward(np.ones_like(out32)).dtype == np.float32
        assert layer.forward(np.array([[1, 2, 3]])).dtype == np.float64

    @pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
    def test_wrong_rank_says_so(self, shape):
        with pytest.raises(ShapeError, match=r"SoftMax\(\) takes \(batch, classes\), a 2-D array"):
            SoftMax().forward(np.zeros(shape))

    def test_backward_before_forward(self):
        with pytest.raises(ShapeError, match="backward called before forward"):
            SoftMax().backward(np.zeros((2, 3)))

    def test_wrong_error_shape(self):
        layer = SoftMax()
        layer.forward(np.zeros((2, 3)))
        with pytest.raises(ShapeError, match=r"SoftMax\(\).*\(2, 3\).*\(2, 4\)"):
            layer.backward(np.zeros((2, 4)))

    def test_matches_torch(self):
        torch = pytest.importorskip("torch")
        x = self.input_tensor * 5
        error = np.random.standard_normal(x.shape)
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        ty = torch.softmax(tx, dim=1)
        ty.backward(torch.from_numpy(error))
        layer = SoftMax()
        np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(layer.backward(error), tx.grad.numpy(), rtol=0, atol=1e-8)
