"""Conformance group TestCrossEntropyLoss: -sum(label * log(p + eps)); backward -label / p."""

from __future__ import annotations

import numpy as np
import pytest

from corenet.checking.doubles import ArrayInitializer, one_hot
from corenet.checking.expect import expect, expect_close, expect_gradient
from corenet.errors import ShapeError
from corenet.testing import gradient_check

pytestmark = pytest.mark.contract
TOLERANCE = 1e-5
EPS = np.finfo(np.float64).eps


@pytest.fixture
def CrossEntropyLoss(impl):
    return impl("CrossEntropyLoss")


@pytest.fixture
def SoftMax(impl):
    return impl.reference("SoftMax")


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def scalar(value, what: str) -> float:
    expect(np.ndim(value) == 0, f"{what} has shape {np.shape(value)}, expected a single number",
           "sum the loss over the whole batch")
    return float(value)


class TestCrossEntropyLoss:
    batch, classes = 8, 5

    def setup_method(self) -> None:
        np.random.seed(1)
        self.logits = np.random.standard_normal((self.batch, self.classes)) * 2
        self.targets = np.random.randint(0, self.classes, self.batch)
        self.label_tensor = one_hot(self.targets, self.classes)

    # -- contract -------------------------------------------------------------------------------
    def test_forward_value_summed_over_batch(self, CrossEntropyLoss):
        prediction = softmax(self.logits)
        loss = scalar(CrossEntropyLoss().forward(prediction, self.label_tensor), "forward's loss")
        expected = -np.sum(np.log(prediction[np.arange(self.batch), self.targets] + EPS))
        expect_close(loss, expected, "forward's loss", "-sum(label * log(prediction + eps)) over the whole batch, "
                     "not the mean", rtol=1e-12)

    def test_perfect_prediction_has_zero_loss(self, CrossEntropyLoss):
        loss = scalar(CrossEntropyLoss().forward(self.label_tensor.copy(), self.label_tensor), "forward's loss")
        expect(abs(loss) < 1e-13, f"the loss of a perfect prediction is {loss:.3g}, expected 0")

    def test_zero_probability_for_the_correct_class_stays_finite(self, CrossEntropyLoss):
        prediction = np.array([[0.0, 1.0], [0.5, 0.5]])
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = CrossEntropyLoss().forward(prediction, np.array([[1.0, 0.0], [1.0, 0.0]]))
        expect_close(scalar(loss, "forward's loss"), -np.log(EPS) - np.log(0.5 + EPS), "loss with a zero "
                     "probability for the correct class", "add eps = np.finfo(float).eps inside the log", rtol=1e-12)

    def test_zero_label_entries_ignore_zero_predictions(self, CrossEntropyLoss):
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = CrossEntropyLoss().forward(np.array([[1.0, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0]]))
        expect(np.isfinite(loss), f"the loss is {loss} when a wrong class has probability 0",
               "add eps inside the log so 0 * log(0 + eps) stays 0")

    def test_backward_is_minus_label_over_prediction(self, CrossEntropyLoss):
        prediction = softmax(self.logits)
        loss = CrossEntropyLoss()
        loss.forward(prediction, self.label_tensor)
        error = loss.backward(self.label_tensor)
        expect_close(error, -self.label_tensor / prediction, "backward output", "-label / prediction, using the "
                     "prediction stored in forward", rtol=1e-12)

    def test_backward_soft_labels(self, CrossEntropyLoss):
        label = np.array([[0.25, 0.75, 0.0]])
        loss = CrossEntropyLoss()
        loss.forward(np.array([[0.5, 0.25, 0.25]]), label)
        expect_close(loss.backward(label), [[-0.5, -3.0, 0.0]], "backward output for soft labels", rtol=1e-12)

    def test_gradient_check(self, CrossEntropyLoss):
        prediction = np.random.uniform(0.05, 1.0, (self.batch, self.classes))
        label = np.random.uniform(0.0, 1.0, (self.batch, self.classes))
        expect_gradient(gradient_check([CrossEntropyLoss()], prediction, label), "gradient w.r.t. the prediction")

    def test_composite_gradient_is_prediction_minus_label(self, CrossEntropyLoss, SoftMax):
        layer, loss = SoftMax(), CrossEntropyLoss()
        prediction = layer.forward(self.logits)
        loss.forward(prediction, self.label_tensor)
        error = layer.backward(loss.backward(self.label_tensor))
        expect_close(error, prediction - self.label_tensor, "error at the SoftMax input", atol=1e-12)

    # -- reference ------------------------------------------------------------------------------
    @pytest.mark.reference
    def test_trains_like_the_reference(self, CrossEntropyLoss, SoftMax, impl):
        FullyConnected, Adam = impl.reference("FullyConnected"), impl.reference("Adam")  # noqa: N806
        x = np.random.standard_normal((self.batch, 6))
        runs = []
        for loss_class in (CrossEntropyLoss, impl.reference("CrossEntropyLoss")):
            layer, softmax_layer, loss = FullyConnected(6, self.classes), SoftMax(), loss_class()
            layer.initialize(ArrayInitializer(1), ArrayInitializer(2))
            layer.optimizer = Adam(0.05, 0.9, 0.999)
            values = []
            for _ in range(6):
                values.append(float(loss.forward(softmax_layer.forward(layer.forward(x)), self.label_tensor)))
                layer.backward(softmax_layer.backward(loss.backward(self.label_tensor)))
            runs.append(values)
        expect_close(runs[0], runs[1], "losses over 6 Adam steps of FullyConnected-SoftMax-CrossEntropyLoss "
                     "vs corenet's reference", rtol=1e-9)

    @pytest.mark.reference
    def test_matches_torch_nll_of_log_softmax(self, CrossEntropyLoss, SoftMax):
        torch = pytest.importorskip("torch")
        logits = torch.tensor(self.logits, dtype=torch.float64, requires_grad=True)
        target = torch.from_numpy(self.targets.astype(np.int64))
        reference = torch.nn.functional.nll_loss(torch.log_softmax(logits, dim=1), target, reduction="sum")
        reference.backward()
        layer, loss = SoftMax(), CrossEntropyLoss()
        value = loss.forward(layer.forward(self.logits), self.label_tensor)
        error = layer.backward(loss.backward(self.label_tensor))
        expect_close(value, reference.item(), "loss vs torch's summed cross-entropy", atol=1e-8, rtol=0)
        expect_close(error, logits.grad.numpy(), "error at the SoftMax input vs torch", atol=1e-8, rtol=0)

    # -- corenet --------------------------------------------------------------------------------
    @pytest.mark.corenet
    def test_flags_and_float_result(self, CrossEntropyLoss):
        assert CrossEntropyLoss().trainable is False
        assert CrossEntropyLoss().testing_phase is False
        assert isinstance(CrossEntropyLoss().forward(softmax(self.logits), self.label_tensor), float)

    @pytest.mark.corenet
    def test_backward_has_no_eps_and_exact_zeros(self, CrossEntropyLoss):
        prediction = softmax(self.logits)
        loss = CrossEntropyLoss()
        loss.forward(prediction, self.label_tensor)
        error = loss.backward(self.label_tensor)
        expected = np.where(self.label_tensor != 0, -self.label_tensor / prediction, 0.0)
        np.testing.assert_array_equal(error, expected)
        assert np.all(error[self.label_tensor == 0] == 0)

    @pytest.mark.corenet
    def test_tiny_correct_class_probability_still_gives_minus_one(self, CrossEntropyLoss, SoftMax):
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

    @pytest.mark.corenet
    def test_float32_error_stays_float32(self, CrossEntropyLoss):
        prediction = softmax(self.logits).astype(np.float32)
        loss = CrossEntropyLoss()
        loss.forward(prediction, self.label_tensor.astype(np.float32))
        assert loss.backward(self.label_tensor.astype(np.float32)).dtype == np.float32

    @pytest.mark.corenet
    def test_shape_mismatch_in_forward(self, CrossEntropyLoss):
        with pytest.raises(ShapeError, match=r"CrossEntropyLoss.*\(2, 3\).*\(2, 4\)"):
            CrossEntropyLoss().forward(np.full((2, 3), 1 / 3), np.zeros((2, 4)))

    @pytest.mark.corenet
    def test_class_index_labels_get_a_one_hot_hint(self, CrossEntropyLoss):
        with pytest.raises(ShapeError, match=r"\(2, 3\) differs from label shape \(2,\); .*one-hot"):
            CrossEntropyLoss().forward(np.full((2, 3), 1 / 3), np.array([0, 2]))

    @pytest.mark.corenet
    def test_backward_before_forward(self, CrossEntropyLoss):
        with pytest.raises(ShapeError, match="CrossEntropyLoss: backward called before forward"):
            CrossEntropyLoss().backward(np.zeros((2, 3)))

    @pytest.mark.corenet
    def test_shape_mismatch_in_backward(self, CrossEntropyLoss):
        loss = CrossEntropyLoss()
        loss.forward(np.full((2, 3), 1 / 3), one_hot(np.array([0, 1]), 3))
        with pytest.raises(ShapeError, match=r"CrossEntropyLoss.*\(3, 3\)"):
            loss.backward(np.zeros((3, 3)))
