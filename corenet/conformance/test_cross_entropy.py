"""Conformance group TestCrossEntropyLoss: -sum(label * log(p + eps)); backward -label / p (no eps)."""

from __future__ import annotations

import numpy as np
import pytest

from corenet.errors import ShapeError
from corenet.layers.activations import SoftMax
from corenet.losses import CrossEntropyLoss
from corenet.testing import gradient_check

TOLERANCE = 1e-5
EPS = np.finfo(np.float64).eps


def one_hot(indices: np.ndarray, classes: int) -> np.ndarray:
    labels = np.zeros((indices.size, classes))
    labels[np.arange(indices.size), indices] = 1.0
    return labels


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class TestCrossEntropyLoss:
    batch, classes = 8, 5

    def setup_method(self) -> None:
        np.random.seed(1)
        self.logits = np.random.standard_normal((self.batch, self.classes)) * 2
        self.targets = np.random.randint(0, self.classes, self.batch)
        self.label_tensor = one_hot(self.targets, self.classes)

    def test_flags(self):
        assert CrossEntropyLoss().trainable is False
        assert CrossEntropyLoss().testing_phase is False

    def test_forward_value_summed_over_batch(self):
        prediction = softmax(self.logits)
        loss = CrossEntropyLoss().forward(prediction, self.label_tensor)
        expected = -np.sum(np.log(prediction[np.arange(self.batch), self.targets] + EPS))
        assert isinstance(loss, float)
        assert loss == pytest.approx(expected, rel=1e-12)

    def test_perfect_prediction_has_zero_loss(self):
        loss = CrossEntropyLoss().forward(self.label_tensor.copy(), self.label_tensor)
        assert loss == pytest.approx(-self.batch * np.log(1 + EPS), abs=1e-14)
        assert loss < 1e-13

    def test_zero_probability_for_the_correct_class_stays_finite(self):
        prediction = np.array([[0.0, 1.0], [0.5, 0.5]])
        loss = CrossEntropyLoss().forward(prediction, np.array([[1.0, 0.0], [1.0, 0.0]]))
        assert loss == pytest.approx(-np.log(EPS) - np.log(0.5 + EPS), rel=1e-12)

    def test_zero_label_entries_ignore_zero_predictions(self):
        # 0 * log(0 + eps) must not turn into nan, even for a prediction of exactly 0
        loss = CrossEntropyLoss().forward(np.array([[1.0, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0]]))
        assert np.isfinite(loss)

    def test_backward_is_minus_label_over_prediction_without_eps(self):
        prediction = softmax(self.logits)
        loss = CrossEntropyLoss()
        loss.forward(prediction, self.label_tensor)
        error = loss.backward(self.label_tensor)
        expected = np.where(self.label_tensor != 0, -self.label_tensor / prediction, 0.0)
        np.testing.assert_array_equal(error, expected)
        assert np.all(error[self.label_tensor == 0] == 0)

    def test_backward_soft_labels(self):
        label = np.array([[0.25, 0.75, 0.0]])
        prediction = np.array([[0.5, 0.25, 0.25]])
        loss = CrossEntropyLoss()
        loss.forward(prediction, label)
        np.testing.assert_allclose(loss.backward(label), [[-0.5, -3.0, 0.0]], rtol=1e-15)

    def test_gradient_check(self):
        prediction = np.random.uniform(0.05, 1.0, (self.batch, self.classes))
        label = np.random.uniform(0.0, 1.0, (self.batch, self.classes))
        assert gradient_check([CrossEntropyLoss()], prediction, label) <= TOLERANCE

    def test_composite_gradient_is_prediction_minus_label(self):
        layer, loss = SoftMax(), CrossEntropyLoss()
        prediction = layer.forward(self.logits)
        loss.forward(prediction, self.label_tensor)
        error = layer.backward(loss.backward(self.label_tensor))
        np.testing.assert_allclose(error, prediction - self.label_tensor, rtol=0, atol=1e-12)

    def test_tiny_correct_class_probability_still_gives_minus_one(self):
        # exp(-101.2) ~ 1e-44: the correct class is all but impossible after the SoftMax
        logits = np.array([[0.0, 101.2, 100.0, 99.0], [3.0, 1.0, 2.0, 0.0]])
        label = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
        layer, loss = SoftMax(), CrossEntropyLoss()
        prediction = layer.forward(logits)
        assert 1e-46 < prediction[0, 0] < 1e-42
        value = loss.forward(prediction, label)
        assert np.isfinite(value)
        error = layer.backward(loss.backward(label))
        assert np.all(np.isfinite(error))
        assert error[0, 0] == pytest.approx(-1.0, abs=1e-12)
        np.testing.assert_allclose(error[0, 1:], prediction[0, 1:], rtol=1e-10)
        np.testing.assert_allclose(error, prediction - label, rtol=0, atol=1e-12)

    def test_float32_error_stays_float32(self):
        prediction = softmax(self.logits).astype(np.float32)
        loss = CrossEntropyLoss()
        loss.forward(prediction, self.label_tensor.astype(np.float32))
        assert loss.backward(self.label_tensor.astype(np.float32)).dtype == np.float32

    def test_shape_mismatch_in_forward(self):
        with pytest.raises(ShapeError, match=r"CrossEntropyLoss.*\(2, 3\).*\(2, 4\)"):
            CrossEntropyLoss().forward(np.full((2, 3), 1 / 3), np.zeros((2, 4)))

    def test_class_index_labels_get_a_one_hot_hint(self):
        with pytest.raises(ShapeError, match=r"\(2, 3\) differs from label shape \(2,\); .*one-hot"):
            CrossEntropyLoss().forward(np.full((2, 3), 1 / 3), np.array([0, 2]))

    def test_backward_before_forward(self):
        with pytest.raises(ShapeError, match="CrossEntropyLoss: backward called before forward"):
            CrossEntropyLoss().backward(np.zeros((2, 3)))

    def test_shape_mismatch_in_backward(self):
        loss = CrossEntropyLoss()
        loss.forward(np.full((2, 3), 1 / 3), one_hot(np.array([0, 1]), 3))
        with pytest.raises(ShapeError, match=r"CrossEntropyLoss.*\(3, 3\)"):
            loss.backward(np.zeros((3, 3)))

    def test_matches_torch_nll_of_log_softmax(self):
        torch = pytest.importorskip("torch")
        logits = torch.tensor(self.logits, dtype=torch.float64, requires_grad=True)
        target = torch.from_numpy(self.targets.astype(np.int64))
        reference = torch.nn.functional.nll_loss(torch.log_softmax(logits, dim=1), target, reduction="sum")
        reference.backward()
        cross_entropy = torch.nn.functional.cross_entropy(
            torch.tensor(self.logits, dtype=torch.float64), target, reduction="sum"
        )

        layer, loss = SoftMax(), CrossEntropyLoss()
        value = loss.forward(layer.forward(self.logits), self.label_tensor)
        error = layer.backward(loss.backward(self.label_tensor))
        assert value == pytest.approx(reference.item(), rel=0, abs=1e-8)
        assert value == pytest.approx(cross_entropy.item(), rel=0, abs=1e-8)
        np.testing.assert_allclose(error, logits.grad.numpy(), rtol=0, atol=1e-8)
