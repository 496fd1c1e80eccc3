"""BatchNormalization for vectors (b, c) and images (b, c, y, x) (also (b, c, x) and (b, c, z, y, x)).

Training phase: normalise every channel with the batch mean and biased variance
(ε = 1e-11), then scale by γ (``weights``) and shift by β (``bias``); keep moving
averages ``moving = 0.8·moving + 0.2·batch`` of mean and variance, the first
training batch setting them directly. Testing phase: normalise with the moving
averages (before any training batch they are mean 0 and variance 1, as in PyTorch).
Images are normalised as vectors: ``reformat`` turns (b, c, y, x) into (b·y·x, c)
and back, and the formulas of :mod:`corenet_batchnorm.functional` run on those.
The output keeps the input's floating dtype.
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

    ``weights`` γ and ``bias`` β: (channels,), each updated by its own optimizer copy;
    ``moving_mean`` and ``moving_variance``: (channels,).
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

    def reformat(self, tensor: np.ndarray) -> np.ndarray:
        """Image (b, c, y, x) -> vectors (b·y·x, c); vectors (b·y·x, c) -> the last image input's shape."""
        array = np.asarray(tensor)
        if array.ndim > 2:
            check_size(self, array, 1, self.channels, "channels")
            self._image_shape = array.shape
            return F.to_vectors(array)
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
        return F.from_vectors(array, self._image_shape)

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        """(b, c[, ...]) -> normalised, scaled and shifted, same shape and dtype."""
        x = self.check_input(input_tensor)
        vectors = self.reformat(x) if x.ndim > 2 else x  # (N, c)
        gamma, beta = self.parameter("weights", x.dtype), self.parameter("bias", x.dtype)
        if self.testing_phase:
            mean, variance = self.moving_mean, self.moving_variance
        else:
            mean, variance = F.batch_statistics(vectors)
            self.update_moving_averages(mean, variance)
        mean, variance = mean.astype(x.dtype), variance.astype(x.dtype)
        normalized = (vectors - mean) / np.sqrt(variance + x.dtype.type(self.epsilon))  # x̂, (N, c)
        self._cache = (x.shape, vectors, normalized, mean, variance, self.testing_phase)
        output = gamma * normalized + beta
        return self.reformat(output) if x.ndim > 2 else output

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        """Error like the forward output -> error for the input; sets gradient_weights (γ) and gradient_bias (β)."""
        shape = None if self._cache is None else self._cache[0]
        error = check_error(self, error_tensor, shape)
        _, vectors, normalized, mean, variance, testing = self._cache
        error_vectors = (self.reformat(error) if error.ndim > 2 else error).astype(vectors.dtype, copy=False)
        gamma = self.parameter("weights", vectors.dtype)
        self.gradient_weights = np.sum(error_vectors * normalized, axis=0)  # ∂γ = Σ E·x̂
        self.gradient_bias = np.sum(error_vectors, axis=0)  # ∂β = Σ E
        if testing:  # fixed statistics: the input only passes through γ·s
            gradient = error_vectors * gamma / np.sqrt(variance + vectors.dtype.type(self.epsilon))
        else:
            gradient = F.compute_bn_gradients(error_vectors, vectors, gamma, mean, variance, self.epsilon)
        self.apply_update("weights", self.gradient_weights)
        self.apply_update("bias", self.gradient_bias)
        return self.reformat(gradient) if len(shape) > 2 else gradient

    # -- helpers shared with faster subclasses ---------------------------------
    def check_input(self, input_tensor) -> np.ndarray:
        """The input as a float (b, c, ...) array with ``channels`` channels; in the training phase also
        at least two values per channel (a variance from one value is 0, which would set the moving
        variance to 0 and blow the testing phase up)."""
        x = check_input(self, input_tensor, (2, 3, 4, 5), "(batch, channels) or (batch, channels, y, x)")
        check_size(self, x, 1, self.channels, "channels")
        if x.ndim > 2:
            self._image_shape = x.shape
        if not self.testing_phase and x.size // self.channels < 2:
            raise ShapeError(
                f"{self!r}: refusing a training batch of shape {x.shape}: it has one value per channel, whose "
                f"variance is 0 and would drive the moving variance to 0; train with at least 2 samples per "
                f"batch (or set testing_phase for single samples)"
            )
        return x

    def parameter(self, name: str, dtype: np.dtype) -> np.ndarray:
        """γ or β as a (c,) array in ``dtype``, whatever array was assigned (integer arrays included)."""
        value = np.asarray(getattr(self, name))
        if value.size != self.channels:
            raise ShapeError(
                f"{self!r}: {name} has {value.size} entries, expected one per channel ({self.channels})"
            )
        return value.astype(dtype, copy=False).reshape(self.channels)

    def update_moving_averages(self, mean: np.ndarray, variance: np.ndarray) -> None:
        """moving = 0.8·moving + 0.2·batch for mean and variance; the first training batch sets them."""
        dtype = self.moving_mean.dtype
        if self.moving_initialized:
            mean = self.momentum * self.moving_mean + (1.0 - self.momentum) * mean
            variance = self.momentum * self.moving_variance + (1.0 - self.momentum) * variance
        self.moving_mean = np.asarray(mean, dtype=dtype)
        self.moving_variance = np.asarray(variance, dtype=dtype)
        self.moving_initialized = True

    def __repr__(self) -> str:
        return f"BatchNormalization({self.channels})"
