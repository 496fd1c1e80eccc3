"""Optimizers: ``calculate_update(weights, gradient) -> new weights``.

Every optimizer inherits :class:`Optimizer`, which holds an optional regularizer.
With a regularizer R the update is ``step(w, g) - lr * R.calculate_gradient(w)``,
the shrinkage computed on the weights before the step.
"""

from __future__ import annotations

import numpy as np


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def _check_rate(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return value


class Optimizer:
    """Base optimizer: a learning rate and an optional regularizer."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = _check_positive("learning_rate", learning_rate)
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
        """New weights after one step (plus the regularizer's shrinkage if one is set)."""
        updated = self.step(weight_tensor, gradient_tensor)
        if self.regularizer is not None:
            updated = updated - self.learning_rate * self.regularizer.calculate_gradient(weight_tensor)
        return updated

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"


class Sgd(Optimizer):
    """Plain gradient descent: w - lr * g."""

    def step(self, weight_tensor, gradient_tensor):
        return weight_tensor - self.learning_rate * gradient_tensor


class SgdWithMomentum(Optimizer):
    """Momentum: v <- mu * v - lr * g; w + v."""

    def __init__(self, learning_rate: float, momentum_rate: float) -> None:
        super().__init__(learning_rate)
        self.momentum_rate = _check_rate("momentum_rate", momentum_rate)
        self.velocity = None

    def step(self, weight_tensor, gradient_tensor):
        change = -self.learning_rate * np.asarray(gradient_tensor)
        if self.velocity is not None:
            change = change + self.momentum_rate * self.velocity
        self.velocity = change
        return weight_tensor + change


class Adam(Optimizer):
    """Adam with bias correction; k counts steps from 1, eps = 1e-8."""

    eps = 1e-8

    def __init__(self, learning_rate: float, mu: float = 0.9, rho: float = 0.999) -> None:
        super().__init__(learning_rate)
        self.mu = _check_rate("mu", mu)
        self.rho = _check_rate("rho", rho)
        self.first_moment = None
        self.second_moment = None
        self.iteration = 0

    def step(self, weight_tensor, gradient_tensor):
        g = np.asarray(gradient_tensor)
        self.iteration += 1
        if self.first_moment is None:
            self.first_moment = (1.0 - self.mu) * g
            self.second_moment = (1.0 - self.rho) * (g * g)
        else:
            self.first_moment = self.mu * self.first_moment + (1.0 - self.mu) * g
            self.second_moment = self.rho * self.second_moment + (1.0 - self.rho) * (g * g)
        m_hat = self.first_moment / (1.0 - self.mu**self.iteration)
        r_hat = self.second_moment / (1.0 - self.rho**self.iteration)
        return weight_tensor - self.learning_rate * m_hat / (np.sqrt(r_hat) + self.eps)
