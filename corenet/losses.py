"""CrossEntropyLoss for one-hot labels after a SoftMax."""

from __future__ import annotations

import numpy as np

from corenet.errors import ShapeError

_EPS = np.finfo(np.float64).eps


class CrossEntropyLoss:
    """forward: -sum(label * log(prediction + eps)) over the batch; backward: -label / prediction.

    The eps stays out of backward, so after a SoftMax whose correct-class
    probability underflows the error still reaches the logits intact; entries
    whose label is 0 get exactly 0.
    """

    def __init__(self) -> None:
        self.testing_phase = False
        self.trainable = False
        self._prediction = None

    def forward(self, prediction_tensor: np.ndarray, label_tensor: np.ndarray) -> float:
        prediction = np.asarray(prediction_tensor)
        label = np.asarray(label_tensor)
        if prediction.shape != label.shape:
            raise ShapeError(
                f"CrossEntropyLoss: prediction shape {prediction.shape} differs from label shape {label.shape}"
            )
        self._prediction = prediction
        mask = label != 0
        return float(-np.sum(label[mask] * np.log(prediction[mask] + _EPS)))

    def backward(self, label_tensor: np.ndarray) -> np.ndarray:
        if self._prediction is None:
            raise ShapeError("CrossEntropyLoss: backward called before forward")
        label = np.asarray(label_tensor)
        if label.shape != self._prediction.shape:
            raise ShapeError(
                f"CrossEntropyLoss: label shape {label.shape} differs from prediction shape {self._prediction.shape}"
            )
        error = np.zeros(self._prediction.shape, dtype=np.result_type(self._prediction.dtype, np.float32))
        mask = label != 0
        error[mask] = -label[mask] / self._prediction[mask]
        return error

    def __repr__(self) -> str:
        return "CrossEntropyLoss()"
