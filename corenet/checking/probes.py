"""Instruments for conformance tests that see a layer only through the exercise's own protocol.

A foreign layer exposes ``weights``, ``gradient_weights``, ``optimizer`` and
``initialize(weights_initializer, bias_initializer)`` and nothing else; these
objects let a test control and observe everything else through that protocol:

- :class:`KnownArrays` is an initializer handing out known arrays (by call order and
  requested shape) and recording every request; a test can perturb a handed-out array
  and call ``initialize`` again, which gives central differences w.r.t. weights the
  layer never exposes (an RNN's output layer).
- :class:`Probe` is an optimizer that records every ``(weights, gradient)`` it is
  given and changes nothing: the gradient of every tensor a layer updates.
- :class:`Tracked` wraps a real optimizer and logs which copy updated which tensor,
  so :func:`shared_optimizer` can tell one optimizer object shared by two tensors
  (mixed Adam/momentum state) from one copy per tensor.
- :func:`locate` finds where the values of a known array sit inside another array,
  whatever the layout (transposed, stacked with a bias row, ...).
- :func:`footprint` / :func:`growth` describe memory that grows from call to call.
"""

from __future__ import annotations

import copy
import types
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np


# -- initializers ---------------------------------------------------------------------------------
@dataclass
class Request:
    """One ``initialize(weights_shape, fan_in, fan_out)`` call and the array it was given."""

    shape: tuple[int, ...]
    fan_in: Any
    fan_out: Any
    array: np.ndarray


@dataclass
class KnownArrays:
    """An initializer whose n-th request gets a known array of the requested shape.

    ``rewind()`` before each ``layer.initialize(...)`` hands out the same arrays again
    (in request order), including any change a test made to ``requests[i].array``.
    Values are N(0, scale²) from a generator seeded by (seed, request index): all
    distinct, so :func:`locate` can find them inside the layer's tensors.
    """

    seed: int
    scale: float = 0.5
    requests: list[Request] = field(default_factory=list)
    _next: int = 0

    def initialize(self, weights_shape, fan_in, fan_out) -> np.ndarray:
        shape = tuple(int(n) for n in np.atleast_1d(weights_shape))
        index = self._next
        self._next += 1
        if index < len(self.requests) and self.requests[index].shape == shape:
            request = self.requests[index]
            request.fan_in, request.fan_out = fan_in, fan_out
        else:
            rng = np.random.default_rng([self.seed, index])
            request = Request(shape, fan_in, fan_out, rng.normal(0.0, self.scale, shape))
            del self.requests[index:]
            self.requests.append(request)
        return request.array.copy()

    def rewind(self) -> None:
        """The next request is the first again."""
        self._next = 0

    def with_fans(self, fan_in, fan_out) -> list[Request]:
        """The requests made with these fans."""
        return [r for r in self.requests if (r.fan_in, r.fan_out) == (fan_in, fan_out)]

    def __deepcopy__(self, memo) -> KnownArrays:  # a layer keeping a copy still hands out the same arrays
        return self


# -- optimizers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Update:
    """One ``calculate_update`` call: which optimizer object, the weights and gradient it got, what it returned."""

    owner: int
    weights: np.ndarray
    gradient: np.ndarray
    result: np.ndarray


class _Recorder:
    """Shared part of Probe and Tracked: a log every copy appends to, a regularizer slot."""

    def __init__(self, log: list[Update] | None = None) -> None:
        self.log = [] if log is None else log
        self.regularizer = None

    def add_regularizer(self, regularizer) -> None:
        self.regularizer = regularizer

    def record(self, weights, gradient, result) -> None:
        self.log.append(Update(id(self), np.array(weights, dtype=np.float64), np.array(gradient, dtype=np.float64),
                               np.array(result, dtype=np.float64)))


class Probe(_Recorder):
    """An optimizer that records what it is given and returns the weights unchanged (a copy)."""

    learning_rate = 0.0

    def calculate_update(self, weight_tensor, gradient_tensor):
        result = np.array(weight_tensor, copy=True)
        self.record(weight_tensor, gradient_tensor, result)
        return result

    def __deepcopy__(self, memo) -> Probe:
        clone = Probe(self.log)
        clone.regularizer = copy.deepcopy(self.regularizer, memo)
        return clone


class Tracked(_Recorder):
    """A real optimizer (``inner``) whose every copy logs the updates it makes into one shared log."""

    def __init__(self, inner, log: list[Update] | None = None) -> None:
        super().__init__(log)
        self.inner = inner

    @property
    def learning_rate(self):
        return self.inner.learning_rate

    @property
    def regularizer(self):
        return getattr(self.inner, "regularizer", None)

    @regularizer.setter
    def regularizer(self, value) -> None:
        if "inner" in vars(self):
            self.inner.regularizer = value

    def add_regularizer(self, regularizer) -> None:
        self.inner.add_regularizer(regularizer)

    def calculate_update(self, weight_tensor, gradient_tensor):
        weights = np.array(weight_tensor, dtype=np.float64)  # before an in-place update can change it
        try:
            result = self.inner.calculate_update(weight_tensor, gradient_tensor)
        except Exception:
            self.record(weights, gradient_tensor, weights)  # so shared_optimizer can still name the cause
            raise
        self.record(weights, gradient_tensor, result)
        return result

    def __deepcopy__(self, memo) -> Tracked:
        return Tracked(copy.deepcopy(self.inner, memo), self.log)

    def __repr__(self) -> str:
        return repr(self.inner)


def shared_optimizer(log: list[Update]) -> str | None:
    """What is wrong with the updates of one backward pass, or None.

    One optimizer object that updated two different tensors (Adam/momentum state mixed),
    or the same tensor several times (an update inside the loop over time steps).
    """
    by_owner: dict[int, list[Update]] = defaultdict(list)
    for update in log:
        by_owner[update.owner].append(update)
    for updates in by_owner.values():
        if len(updates) < 2:
            continue
        chained = all(later.weights.shape == earlier.result.shape and np.allclose(later.weights, earlier.result)
                      for earlier, later in zip(updates, updates[1:]))
        if chained:
            return (f"the optimizer updated the same weights {len(updates)} times in one backward pass (once per "
                    f"time step?): sum the gradient over the sequence and update once")
        shapes = ", ".join(str(u.weights.shape) for u in updates)
        return (f"one optimizer object updated {len(updates)} different weight tensors (shapes {shapes}) in one "
                f"backward pass: their Adam/momentum state gets mixed; give each tensor its own "
                f"copy.deepcopy(optimizer)")
    return None


# -- locating known values -----------------------------------------------------------------------
def find(values, container, rtol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices into ``container``, found mask) for each element of ``values``.

    Exact matches first; an element stored in lower precision (float32) matches within ``rtol``.
    """
    flat = np.asarray(container, dtype=np.float64).ravel()
    wanted = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 0:
        return np.zeros(wanted.size, dtype=int), np.zeros(wanted.size, dtype=bool)
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    right = np.clip(np.searchsorted(ordered, wanted), 0, flat.size - 1)
    left = np.clip(right - 1, 0, flat.size - 1)
    nearest = np.where(np.abs(ordered[left] - wanted) < np.abs(ordered[right] - wanted), left, right)
    return order[nearest], np.abs(ordered[nearest] - wanted) <= rtol * np.abs(wanted)


def locate(values, container, rtol: float = 1e-6) -> np.ndarray | None:
    """Flat indices into ``container`` holding each element of ``values``, or None unless all are there."""
    positions, found = find(values, container, rtol)
    return positions if found.size and found.all() else None


# -- memory ---------------------------------------------------------------------------------------
_SKIP = (types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType, type)


def footprint(obj: Any, path: str = "layer", depth: int = 6, _seen: set[int] | None = None) -> dict[str, tuple]:
    """Size of every container reachable from ``obj`` by attribute or item, by path:
    ``("bytes", n)`` for arrays, ``("entries", n)`` for lists, tuples, dicts and sets."""
    seen = set() if _seen is None else _seen
    sizes: dict[str, tuple] = {}
    if id(obj) in seen or depth < 0 or isinstance(obj, (*_SKIP, str, bytes)):
        return sizes
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        sizes[path] = ("bytes", obj.nbytes)
    elif isinstance(obj, dict):
        sizes[path] = ("entries", len(obj))
        for key, value in list(obj.items())[:100]:
            sizes.update(footprint(value, f"{path}[{key!r}]", depth - 1, seen))
    elif isinstance(obj, (list, tuple, set, frozenset)):
        sizes[path] = ("entries", len(obj))
        for index, value in enumerate(list(obj)[:100]):
            sizes.update(footprint(value, f"{path}[{index}]", depth - 1, seen))
    elif isinstance(getattr(obj, "__dict__", None), dict):
        for name, value in vars(obj).items():
            sizes.update(footprint(value, f"{path}.{name}", depth - 1, seen))
    return sizes


def growth(before: dict[str, tuple], after: dict[str, tuple], calls: int) -> str | None:
    """One line naming what grew most between two :func:`footprint` snapshots ``calls`` calls apart, or None."""
    grown = []
    for path, (unit, size) in after.items():
        old = before.get(path, (unit, 0))[1]
        if size > old:
            grown.append((size - old, path, unit, old, size))
    total_before = sum(size for unit, size in before.values() if unit == "bytes")
    total_after = sum(size for unit, size in after.values() if unit == "bytes")
    if not grown or (total_after <= total_before and all(unit == "bytes" for _, _, unit, _, _ in grown)):
        return None  # arrays replaced by others of the same total size are not growth
    _, path, unit, old, new = max(grown, key=lambda item: (item[2] == "entries", item[0]))
    return f"{path} grew from {old} to {new} {unit} over {calls} more forward/backward calls"
