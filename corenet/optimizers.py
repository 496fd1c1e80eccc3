"""Optimizers: ``calculate_update(weights, gradient) -> new weights``.

Every optimizer inherits :class:`Optimizer`, which holds an optional regularizer.
With a regularizer R the update is ``step(w, g) - lr * R.calculate_gradient(w)``,
the shrinkage computed on the weights before the step.
"""

from __future__ import annotations

import numpy as np

from corenet.base import brief
from corenet.shapes import real_number


def _check_rate(owner: str, name: str, value) -> float:
    """A decay/momentum rate: a real number in [0, 1)."""
    return real_number(name, value, owner, low=0.0, high=1.0, high_inclusive=False)


class Optimizer:
    """Base optimizer: a learning rate and an optional regularizer."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = real_number("learning_rate", learning_rate, type(self).__name__,
                                         low=0.0, low_inclusive=False)
        self.regularizer = None

    def add_regularizer(self, regularizer) -> None:
        """Apply ``regularizer`` (has ``calculate_gradient`` and ``norm``) in every update."""
        if not (hasattr(regularizer, "calculate_gradient") and hasattr(regularizer, "norm")):
            raise TypeError(
                f"a regularizer needs calculate_gradient(weights) and norm(weights), got {regularizer!r}"
            )
        self.regularizer = regularizer

    def step(self, weight_tensor, gradient_tensor):
        """The optimizer's own update, without the regularizer."""
        raise NotImplementedError

    def calculate_update(self, weight_tensor, gradient_tensor):
        """New weights after one step (plus the regularizer's shrinkage if one is set).

        The gradient must have the weights' shape (or be a scalar); anything else is
        refused before any state changes.
        """
        _check_update_shapes(type(self).__name__, weight_tensor, gradient_tensor)
        updated = self.step(weight_tensor, gradient_tensor)
        if self.regularizer is not None:
            updated = updated - self.learning_rate * self.regularizer.calculate_gradient(weight_tensor)
        return updated

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"


def _check_update_shapes(owner: str, weight_tensor, gradient_tensor) -> None:
    for name, value in (("weights", weight_tensor), ("gradient", gradient_tensor)):
        dtype = value.dtype if isinstance(value, (np.ndarray, np.generic)) else np.asarray(value).dtype
        if dtype.kind not in "fiub":
            raise ValueError(
                f"{owner}.calculate_update: {name} must be a real numeric array or number, got {brief(value)}"
            )
    weights_shape, gradient_shape = np.shape(weight_tensor), np.shape(gradient_tensor)
    if gradient_shape != weights_shape and gradient_shape != ():
        raise ValueError(
            f"{owner}.calculate_update: the gradient's shape {gradient_shape} differs from the weights' "
            f"shape {weights_shape}"
        )


def _check_state(owner: str, state, gradient_shape: tuple[int, ...]) -> None:
    """Refuse a gradient whose shape differs from the one this optimizer's state was built for."""
    if state is not None and np.shape(state) not in ((), gradient_shape) and gradient_shape != ():
        raise ValueError(
            f"{owner}: this optimizer's state was built for a tensor of shape {np.shape(state)} but now "
            f"gets a gradient of shape {gradient_shape}; give every parameter tensor its own optimizer "
            f"(copy.deepcopy) instead of sharing one"
        )


class Sgd(Optimizer):
    """Plain gradient descent: w - lr * g."""

    def step(self, weight_tensor, gradient_tensor):
        return weight_tensor - self.learning_rate * gradient_tensor


class SgdWithMomentum(Optimizer):
    """Momentum: v <- mu * v - lr * g; w + v."""

    def __init__(self, learning_rate: float, momentum_rate: float) -> None:
        super().__init__(learning_rate)
        self.momentum_rate = _check_rate("SgdWithMomentum", "momentum_rate", momentum_rate)
        self.velocity = None

    def step(self, weight_tensor, gradient_tensor):
        _check_state("SgdWithMomentum", self.velocity, np.shape(gradient_tensor))
        change = -self.learning_rate * np.asarray(gradient_tensor)
        if self.velocity is not None:
            change = change + self.momentum_rate * self.velocity
        self.velocity = change
        return weight_tensor + change


class Adam(Optimizer):
    """Adam with bias correction; k counts steps from 1, eps = 1e-8.

    m <- mu * m + (1 - mu) * g;  r <- rho * r + (1 - rho) * g^2;
    w - lr * m_hat / (sqrt(r_hat) + eps) with m_hat = m / (1 - mu^k), r_hat = r / (1 - rho^k).
    """

    eps = 1e-8

    def __init__(self, learning_rate: float, mu: float = 0.9, rho: float = 0.999) -> None:
        super().__init__(learning_rate)
        self.mu = _check_rate("Adam", "mu", mu)
        self.rho = _check_rate("Adam", "rho", rho)
        self.first_moment = None
        self.second_moment = None
        self.iteration = 0

    def step(self, weight_tensor, gradient_tensor):
        g = np.asarray(gradient_tensor)
        _check_state("Adam", self.first_moment, g.shape)
        self.iteration += 1
        if self.first_moment is None:  # m and r start at 0
            self.first_moment = (1.0 - self.mu) * g
            self.second_moment = (1.0 - self.rho) * (g * g)
        else:
            self.first_moment = self.mu * self.first_moment + (1.0 - self.mu) * g
            self.second_moment = self.rho * self.second_moment + (1.0 - self.rho) * (g * g)
        m_hat = self.first_moment / (1.0 - self.mu**self.iteration)
        r_hat = self.second_moment / (1.0 - self.rho**self.iteration)
        return weight_tensor - self.learning_rate * m_hat / (np.sqrt(r_hat) + self.eps)
