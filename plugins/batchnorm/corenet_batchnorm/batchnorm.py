"""BatchNormalization for vectors (b, c) and images (b, c, y, x).

Training phase: normalise every channel with the batch mean and biased variance
(ε = 1e-11), then scale by γ (``weights``) and shift by β (``bias``); keep moving
averages ``moving = 0.8·moving + 0.2·batch`` of mean and variance, the first
training batch setting them directly. Testing phase: normalise with the moving
averages (before any training batch they are mean 0 and variance 1, as in
PyTorch). Statistics are computed on a (b, c, y·x) view (see
:mod:`corenet_batchnorm.functional`); ``reformat`` offers the course's
(b·y·x, c) layout. Any (b, c, ...) input works; the output keeps its dtype.
"""

from __future__ import annotations

import numpy as np

from corenet.base import TrainableLayer
from corenet.dtype import get_default_dtype
from corenet.errors import ShapeError
from corenet.shapes import check_error, check_input, check_size, positive_int
from corenet_batchnorm import functional as F


class BatchNormalization(TrainableLayer):
    """Batch normalization over ``channels`` (axis 1).

    ``weights`` γ and ``bias`` β: (channels,), each updated by its own optimizer copy.
    forward/backward: (b, channels) or (b, channels, y, x) -> same shape.
    """

    parameter_names = ("weights", "bias")
    transient = ("_cache",)
    epsilon = F.EPSILON
    momentum = 0.8  # weight of the old moving average

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = positive_int("channels", channels, "BatchNormalization")
        self.weights = self.bias = None
        self.initialize(None, None)
        self.gradient_weights = None
        self.gradient_bias = None
        dtype = get_default_dtype()
        self.moving_mean = np.zeros(self.channels, dtype=dtype)
        self.moving_variance = np.ones(self.channels, dtype=dtype)
        self.moving_initialized = False  # becomes True with the first training batch
        self._image_shape = None  # shape of the last (b, c, ...) input, for reformat
        self._cache = None  # what backward needs from the last forward

    def initialize(self, weights_initializer=None, bias_initializer=None) -> None:
        """γ = ones, β = zeros, whatever initializers are given (they are ignored)."""
        dtype = get_default_dtype()
        self.weights = np.ones(self.channels, dtype=dtype)
        self.bias = np.zeros(self.channels, dtype=dtype)

    # -- layout ------------------------------------------------------------
    def reformat(self, tensor: np.ndarray) -> np.ndarray:
        """Image (b, c, y, x) -> (b·y·x, c); a vector (b·y·x, c) -> the last image input's shape."""
        array = np.asarray(tensor)
        if array.ndim > 2:
            check_size(self, array, 1, self.channels, "channels")
            self._image_shape = array.shape
            return np.moveaxis(array, 1, -1).reshape(-1, self.channels)
        if array.ndim != 2:
            raise ShapeError(f"{self!r}.reformat takes (b, c, y, x) or (b*y*x, c), got shape {array.shape}")
        if self._image_shape is None:
            raise ShapeError(f"{self!r}.reformat of a (b*y*x, c) vector needs an image input first")
        batch, channels, *spatial = self._image_shape
        rows = batch * int(np.prod(spatial))
        if array.shape != (rows, channels):
            raise ShapeError(
                f"{self!r}.reformat: a vector for the last image shape {self._image_shape} must be "
                f"({rows}, {channels}), got {array.shape}"
            )
        return np.ascontiguousarray(np.moveaxis(array.reshape(batch, *spatial, channels), -1, 1))

    # -- forward/backward --------------------------------------------------
    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (2, 3, 4, 5), "(batch, channels) or (batch, channels, y, x)")
        check_size(self, x, 1, self.channels, "channels")
        if x.ndim > 2:
            self._image_shape = x.shape
        view = F.channel_view(x)
        gamma, beta = self._parameter("weights"), self._parameter("bias")
        if self.testing_phase:
            data, data_mean = view, self.moving_mean.astype(np.float64)
            variance = self.moving_variance.astype(np.float64)
        else:
            data, data_mean, mean, variance = F.batch_moments(view)
            self._update_moving_averages(mean, variance)
        scale = 1.0 / np.sqrt(variance + self.epsilon)
        self._cache = (x.shape, data, data_mean, scale, self.testing_phase)
        return F.normalize(data, data_mean, scale, gamma, beta).reshape(x.shape)

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        shape = None if self._cache is None else self._cache[0]
        error = check_error(self, error_tensor, shape)
        _, data, data_mean, scale, testing = self._cache
        error_view = F.channel_view(error).astype(data.dtype, copy=False)
        gamma = self._parameter("weights")
        gradient_weights, gradient_bias = F.parameter_gradients(error_view, data, data_mean, scale)
        if testing:  # fixed statistics: the input only passes through the scale γ·s
            gradient = np.multiply(error_view, F.expand(gamma * scale, error_view))
        else:
            gradient = F.input_gradient(error_view, data, data_mean, scale, gamma,
                                        gradient_weights, gradient_bias)
        dtype = np.result_type(self.weights, data.dtype)
        self.gradient_weights = gradient_weights.astype(dtype, copy=False)
        self.gradient_bias = gradient_bias.astype(np.result_type(self.bias, data.dtype), copy=False)
        self.apply_update("weights", self.gradient_weights)
        self.apply_update("bias", self.gradient_bias)
        return gradient.reshape(shape)

    # -- helpers -----------------------------------------------------------
    def _parameter(self, name: str) -> np.ndarray:
        """γ or β as float64 (c,), whatever array was assigned (integer arrays included)."""
        value = np.asarray(getattr(self, name))
        if value.size != self.channels:
            raise ShapeError(
                f"{self!r}: {name} has {value.size} entries, expected one per channel ({self.channels})"
            )
        return value.astype(np.float64, copy=False).reshape(self.channels)

    def _update_moving_averages(self, mean: np.ndarray, variance: np.ndarray) -> None:
        dtype = self.moving_mean.dtype
        if self.moving_initialized:
            mean = self.momentum * self.moving_mean + (1.0 - self.momentum) * mean
            variance = self.momentum * self.moving_variance + (1.0 - self.momentum) * variance
        self.moving_mean = np.asarray(mean, dtype=dtype)
        self.moving_variance = np.asarray(variance, dtype=dtype)
        self.moving_initialized = True

    def __repr__(self) -> str:
        return f"BatchNormalization({self.channels})"
