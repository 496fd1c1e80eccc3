"""The fast BatchNormalization: statistics on a (b, c, y·x) view, elementwise chains in cache-sized blocks.

Same constructor, attributes and results as
:class:`corenet_batchnorm.batchnorm.BatchNormalization` (which spells out the
formulas); forward and backward compute them without the (b·y·x, c) copies, see
:mod:`corenet_fast.batchnorm_sums`.
"""

from __future__ import annotations

import numpy as np
from corenet_batchnorm import batchnorm as reference

from corenet.shapes import check_error
from corenet_fast import batchnorm_sums as S


class BatchNormalization(reference.BatchNormalization):
    """BatchNormalization computed on a channel view (see the module docstring)."""

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = self.check_input(input_tensor)
        view = S.channel_view(x)
        gamma, beta = self.parameter("weights", np.float64), self.parameter("bias", np.float64)
        if self.testing_phase:
            data, data_mean = view, self.moving_mean.astype(np.float64)
            variance = self.moving_variance.astype(np.float64)
        else:
            data, data_mean, mean, variance = S.batch_moments(view)
            self.update_moving_averages(mean, variance)
        scale = 1.0 / np.sqrt(variance + self.epsilon)
        self._cache = (x.shape, data, data_mean, scale, self.testing_phase)
        return S.normalize(data, data_mean, scale, gamma, beta).reshape(x.shape)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        shape = None if self._cache is None else self._cache[0]
        error = check_error(self, error_tensor, shape)
        _, data, data_mean, scale, testing = self._cache
        error_view = S.channel_view(error).astype(data.dtype, copy=False)
        gamma = self.parameter("weights", np.float64)
        gradient_weights, gradient_bias = S.parameter_gradients(error_view, data, data_mean, scale)
        if testing:  # fixed statistics: the input only passes through the scale γ·s
            gradient = np.multiply(error_view, S.expand(gamma * scale, error_view))
        else:
            gradient = S.input_gradient(error_view, data, data_mean, scale, gamma, gradient_weights, gradient_bias)
        self.gradient_weights = gradient_weights.astype(data.dtype, copy=False)
        self.gradient_bias = gradient_bias.astype(data.dtype, copy=False)
        self.apply_update("weights", self.gradient_weights)
        self.apply_update("bias", self.gradient_bias)
        return gradient.reshape(shape)
