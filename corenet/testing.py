"""Helpers for plugin authors and tests: numerical gradient checks, a fixed batch, accuracy.

:func:`check_gradients` is the one-call check (input and every parameter of a layer);
:class:`FixedBatch` is a data layer that always yields the same batch.

A check runs ``layers`` (a list of layers ending in a loss layer with
``forward(prediction, label)`` and ``backward(label)``) and compares the analytic
gradient from ``backward`` with central differences. The error reported is the
relative error ``||analytic - numeric|| / max(||analytic|| + ||numeric||, tiny)``.
Pass ``seed`` for layers that draw random numbers (Dropout): the global NumPy
generator is reseeded before every forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class L2Loss:
    """0.5 * sum((prediction - label)^2): a smooth loss for gradient checks."""

    def __init__(self) -> None:
        self.testing_phase = False
        self.trainable = False
        self._difference = None

    def forward(self, prediction_tensor: np.ndarray, label_tensor: np.ndarray) -> float:
        self._difference = prediction_tensor - label_tensor
        return float(0.5 * np.sum(self._difference**2))

    def backward(self, label_tensor: np.ndarray) -> np.ndarray:
        return self._difference


class ReferenceL2:
    """A minimal L2 regularizer (gradient alpha * w, norm alpha * sum(w^2)) for core tests
    that must not depend on the L1/L2 regularizer plugin being installed."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def calculate_gradient(self, weights: np.ndarray) -> np.ndarray:
        return self.alpha * np.asarray(weights)

    def norm(self, weights: np.ndarray) -> float:
        return float(self.alpha * np.sum(np.square(weights)))


def _loss(layers: Sequence, input_tensor: np.ndarray, label_tensor: np.ndarray, seed: int | None) -> float:
    if seed is not None:
        np.random.seed(seed)
    activation = input_tensor
    for layer in layers[:-1]:
        activation = layer.forward(activation)
    return float(layers[-1].forward(activation, label_tensor))


def _backward(layers: Sequence, label_tensor: np.ndarray) -> np.ndarray:
    error = layers[-1].backward(label_tensor)
    for layer in reversed(layers[:-1]):
        error = layer.backward(error)
    return error


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``||a - n|| / max(||a|| + ||n||, 1e-300)`` over all entries."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    scale = max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-300)
    return float(np.linalg.norm(analytic - numeric) / scale)


def numerical_gradient(func, array: np.ndarray, epsilon: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of the scalar ``func()`` w.r.t. ``array`` (perturbed in place)."""
    gradient = np.zeros(array.shape, dtype=np.float64)
    flat = array.reshape(-1)
    for index in range(flat.size):
        original = flat[index]
        flat[index] = original + epsilon
        plus = func()
        flat[index] = original - epsilon
        minus = func()
        flat[index] = original
        gradient.reshape(-1)[index] = (plus - minus) / (2 * epsilon)
    return gradient


def gradient_check(
    layers: Sequence,
    input_tensor: np.ndarray,
    label_tensor: np.ndarray,
    *,
    epsilon: float = 1e-5,
    seed: int | None = None,
) -> float:
    """Relative error of the gradient w.r.t. the input of ``layers[0]``."""
    x = np.array(input_tensor, dtype=np.float64)
    _loss(layers, x, label_tensor, seed)
    analytic = _backward(layers, label_tensor)
    numeric = numerical_gradient(lambda: _loss(layers, x, label_tensor, seed), x, epsilon)
    return relative_error(analytic, numeric)


def gradient_check_weights(
    layers: Sequence,
    input_tensor: np.ndarray,
    label_tensor: np.ndarray,
    *,
    layer_index: int = 0,
    parameter: str = "weights",
    gradient: str | None = None,
    epsilon: float = 1e-5,
    seed: int | None = None,
) -> float:
    """Relative error of the gradient w.r.t. ``layers[layer_index].<parameter>``.

    ``gradient`` names the attribute holding the analytic gradient (default
    ``gradient_<parameter>``, e.g. ``gradient_weights``/``gradient_bias``). The
    parameter is perturbed by assigning a float64 copy to the layer, so the layer's
    forward must use whatever array was assigned.
    """
    layer = layers[layer_index]
    gradient = gradient or f"gradient_{parameter}"
    values = np.array(getattr(layer, parameter), dtype=np.float64)
    setattr(layer, parameter, values)
    x = np.array(input_tensor, dtype=np.float64)
    _loss(layers, x, label_tensor, seed)
    _backward(layers, label_tensor)
    analytic = np.array(getattr(layer, gradient), dtype=np.float64)

    def loss() -> float:
        setattr(layer, parameter, values)
        return _loss(layers, x, label_tensor, seed)

    numeric = numerical_gradient(loss, values, epsilon)
    return relative_error(analytic, numeric)


def calculate_accuracy(prediction: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose arg-max matches the one-hot ``labels``' arg-max."""
    prediction = np.asarray(prediction)
    labels = np.asarray(labels)
    if prediction.shape[0] != labels.shape[0]:
        raise ValueError(f"prediction has {prediction.shape[0]} rows but labels have {labels.shape[0]}")
    return float(np.mean(np.argmax(prediction, axis=1) == np.argmax(labels, axis=1)))


class FixedBatch:
    """A data layer whose ``next()`` yields the same ``(input_tensor, label_tensor)`` every time.

    Each call returns fresh copies (a layer that writes into its input cannot change the next
    batch); both attributes may be reassigned between calls; ``calls`` counts ``next()`` calls.
    Shapes are whatever the network takes, e.g. (b, features) and one-hot (b, classes).
    """

    def __init__(self, input_tensor: np.ndarray, label_tensor: np.ndarray) -> None:
        self.input_tensor = input_tensor
        self.label_tensor = label_tensor
        self.calls = 0

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        return np.array(self.input_tensor, copy=True), np.array(self.label_tensor, copy=True)


def check_gradients(
    layers,
    input_tensor: np.ndarray,
    label_tensor: np.ndarray | None = None,
    *,
    parameters: Sequence[str] | None = None,
    tolerance: float = 1e-5,
    epsilon: float = 1e-5,
    seed: int | None = None,
    label_seed: int = 0,
) -> dict[str, float]:
    """Check ``backward`` against central differences (float64) w.r.t. the input and every parameter.

    ``layers`` is one layer or a list of them; an :class:`L2Loss` closes the chain. The label
    defaults to standard-normal values shaped like the chain's output (``label_seed``).
    ``parameters`` names the first layer's parameters to check; by default every layer's
    ``parameter_names`` (trainable layers; ``weights`` for a trainable layer without that list).
    ``seed`` reseeds NumPy before every forward pass (layers that draw random numbers).
    Returns ``{"input": error, "weights": error, ...}`` (``"layers[1].bias"`` beyond the first
    layer) and raises AssertionError naming every relative error above ``tolerance``.
    """
    chain = list(layers) if isinstance(layers, (list, tuple)) else [layers]
    x = np.array(input_tensor, dtype=np.float64)
    if label_tensor is None:
        output = x
        if seed is not None:
            np.random.seed(seed)
        for layer in chain:
            output = layer.forward(output)
        label_tensor = np.random.RandomState(label_seed).standard_normal(np.shape(output))
    checked = [*chain, L2Loss()]
    errors = {"input": gradient_check(checked, x, label_tensor, epsilon=epsilon, seed=seed)}
    for index, layer in enumerate(chain):
        if parameters is not None:
            names = tuple(parameters) if index == 0 else ()
        elif getattr(layer, "trainable", False):
            names = tuple(getattr(layer, "parameter_names", ("weights",)))
        else:
            names = ()
        for name in names:
            key = name if index == 0 else f"layers[{index}].{name}"
            errors[key] = gradient_check_weights(checked, x, label_tensor, layer_index=index, parameter=name,
                                                 epsilon=epsilon, seed=seed)
    wrong = {key: error for key, error in errors.items() if not error <= tolerance}
    if wrong:
        details = ", ".join(f"{key} {error:.3g}" for key, error in wrong.items())
        raise AssertionError(f"gradient check failed (relative error > {tolerance:g}): {details}")
    return errors
