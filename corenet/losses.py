"""CrossEntropyLoss for one-hot labels after a SoftMax."""

from __future__ import annotations

import numpy as np

from corenet.dtype import as_float_array
from corenet.errors import ShapeError
from corenet.shapes import check_finite

_EPS = np.finfo(np.float64).eps


class CrossEntropyLoss:
    """forward: -sum(label * log(prediction + eps)) over the batch; backward: -label / prediction.

    The eps stays out of backward, so after a SoftMax whose correct-class
    probability is tiny the error still reaches the logits intact; entries whose
    label is 0 get exactly 0. A prediction of exactly 0 (or a subnormal) where the
    label is not 0 is divided as the dtype's smallest normal number, so the error
    stays finite (SoftMax never outputs less than that number). Predictions must
    be probabilities: negative ones (a missing SoftMax) are refused.
    """

    #: NeuralNetwork refuses to train it after a last layer that does not output probabilities
    expects_probabilities = True

    def __init__(self) -> None:
        self.testing_phase = False
        self.trainable = False
        self._prediction = None

    def forward(self, prediction_tensor: np.ndarray, label_tensor: np.ndarray) -> float:
        prediction = as_float_array(prediction_tensor, "CrossEntropyLoss: prediction")
        label = as_float_array(label_tensor, "CrossEntropyLoss: label")
        if prediction.shape != label.shape:
            indices = label.ndim == 1 and prediction.ndim == 2 and label.shape[0] == prediction.shape[0]
            hint = "; the labels look like class indices: give one-hot rows of shape (batch, classes)"
            raise ShapeError(
                f"CrossEntropyLoss: prediction shape {prediction.shape} differs from label shape "
                f"{label.shape}{hint if indices else ''}"
            )
        check_finite("CrossEntropyLoss", prediction, "prediction")
        check_finite("CrossEntropyLoss", label, "label")
        if prediction.size and prediction.min() < 0:
            raise ValueError(
                f"CrossEntropyLoss: predictions must be probabilities (a SoftMax output), got values "
                f"down to {prediction.min():.4g}; is the SoftMax layer missing before the loss?"
            )
        self._prediction = prediction
        mask = label != 0
        return float(-np.sum(label[mask] * np.log(prediction[mask] + _EPS)))

    def backward(self, label_tensor: np.ndarray) -> np.ndarray:
        if self._prediction is None:
            raise ShapeError("CrossEntropyLoss: backward called before forward")
        label = as_float_array(label_tensor, "CrossEntropyLoss: label")
        if label.shape != self._prediction.shape:
            raise ShapeError(
                f"CrossEntropyLoss: label shape {label.shape} differs from prediction shape "
                f"{self._prediction.shape}"
            )
        error = np.zeros(self._prediction.shape, dtype=np.result_type(self._prediction.dtype, np.float32))
        mask = label != 0
        error[mask] = -label[mask] / np.maximum(self._prediction[mask], np.finfo(error.dtype).tiny)
        return error

    def __repr__(self) -> str:
        return "CrossEntropyLoss()"
