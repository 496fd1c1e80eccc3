"""The fast Adam: from the second step on, the moments are updated in place.

Same constructor, attributes and results as :class:`corenet.optimizers.Adam`: the
step is built in two reused scratch arrays with the same operations in the same
order as the formula, so the same bits; only the returned weights are a new array.
With numba (corenet-fast[numba]) the whole step is one compiled pass
(:mod:`corenet_fast.numba.adam`), again the same bits.
"""

from __future__ import annotations

import numpy as np

from corenet import optimizers as reference
from corenet_fast.numba import kernels


class Adam(reference.Adam):
    """Adam whose moments are updated in place (see the module docstring)."""

    _scratch: tuple[np.ndarray, np.ndarray] | None = None  # reused buffers shaped like the gradient

    def step(self, weight_tensor, gradient_tensor):
        g = np.asarray(gradient_tensor)
        if not self._state_matches(g):  # first step, or a scalar/integer/other-dtype gradient
            return super().step(weight_tensor, gradient_tensor)
        self.iteration += 1
        compiled = kernels("adam") if _one_layout(weight_tensor, g, self.first_moment, self.second_moment) else None
        if compiled is not None:
            return self._compiled_step(compiled, weight_tensor, g)
        return weight_tensor - self._step_in_place(g)

    def _compiled_step(self, compiled, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The whole update in one compiled pass; every scalar in the dtype NumPy would compute it in."""
        dtype = g.dtype.type
        out = np.empty_like(w)
        compiled.step(w.reshape(-1), g.reshape(-1), self.first_moment.reshape(-1), self.second_moment.reshape(-1),
                      dtype(self.mu), dtype(1.0 - self.mu), dtype(self.rho), dtype(1.0 - self.rho),
                      dtype(1.0 - self.mu**self.iteration), dtype(1.0 - self.rho**self.iteration),
                      dtype(self.learning_rate), dtype(self.eps), out.reshape(-1))
        return out

    def _state_matches(self, g: np.ndarray) -> bool:
        """True when both moments exist with g's shape and floating dtype (the in-place case)."""
        m, r = self.first_moment, self.second_moment
        return (isinstance(m, np.ndarray) and isinstance(r, np.ndarray) and g.dtype.kind == "f"
                and m.shape == r.shape == g.shape and m.dtype == r.dtype == g.dtype)

    def _step_in_place(self, g: np.ndarray) -> np.ndarray:
        """Update the moments in place; return lr * m_hat / (sqrt(r_hat) + eps) in a scratch array."""
        if self._scratch is None or self._scratch[0].shape != g.shape or self._scratch[0].dtype != g.dtype:
            self._scratch = (np.empty_like(g), np.empty_like(g))
        a, b = self._scratch
        m, r = self.first_moment, self.second_moment
        m *= self.mu  # m <- mu * m + (1 - mu) * g
        m += np.multiply(g, 1.0 - self.mu, out=a)
        r *= self.rho  # r <- rho * r + (1 - rho) * g^2
        r += np.multiply(np.multiply(g, g, out=b), 1.0 - self.rho, out=b)
        step = np.divide(m, 1.0 - self.mu**self.iteration, out=a)  # m_hat
        step *= self.learning_rate
        denominator = np.sqrt(np.divide(r, 1.0 - self.rho**self.iteration, out=b), out=b)  # sqrt(r_hat)
        denominator += self.eps
        step /= denominator
        return step

    def __getstate__(self) -> dict:
        """Copies and checkpoints leave the scratch buffers out (they are rebuilt on demand)."""
        state = self.__dict__.copy()
        state.pop("_scratch", None)
        return state


def _one_layout(*arrays) -> bool:
    """Whether all are C-contiguous arrays of one shape and float64/float32 dtype (the compiled step's case)."""
    first = arrays[0]
    return (isinstance(first, np.ndarray) and first.dtype in (np.float64, np.float32)
            and all(isinstance(a, np.ndarray) and a.shape == first.shape and a.dtype == first.dtype
                    and a.flags.c_contiguous for a in arrays))
