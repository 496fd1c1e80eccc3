"""Shared machinery of the data layers: batching over fixed arrays, one-hot labels, splits.

A data layer built on :class:`ArrayData` holds a fixed training and test set.
``next()`` returns ``batch_size`` training samples, walking through a permutation
of the training set and drawing a new one (``np.random.permutation``) at every
epoch boundary; a batch that crosses the boundary is completed from the next
epoch. With ``random=False`` the order is the stored order. The first
permutation is drawn on the first ``next()``, so ``np.random.seed`` set any time
before that reproduces every batch.
"""

from __future__ import annotations

import numpy as np

from corenet.dtype import get_default_dtype
from corenet.shapes import boolean, positive_int


def check_batch_size(batch_size) -> int:
    """Return ``batch_size`` as an int, refusing bools, non-integers and values < 1."""
    return positive_int("batch_size", batch_size)


def one_hot(labels: np.ndarray, classes: int, dtype=None) -> np.ndarray:
    """(n,) integer class indices in [0, classes) -> (n, classes) one-hot rows."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"one_hot takes a 1-D array of class indices, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(
            f"class indices must lie in [0, {classes}), got values from {labels.min()} to {labels.max()}"
        )
    encoded = np.zeros((labels.shape[0], classes), dtype=dtype or get_default_dtype())
    encoded[np.arange(labels.shape[0]), labels.astype(np.intp)] = 1
    return encoded


def stratified_split(labels: np.ndarray, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed (train, test) index arrays keeping each class's share in both parts.

    Uses a private ``np.random.RandomState(seed)``: the split is part of the data
    set's definition and does not depend on (or disturb) the global generator.
    Within each part the indices are in a seeded shuffled order.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction!r}")
    rng = np.random.RandomState(seed)
    labels = np.asarray(labels)
    train, test = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        cut = int(round(train_fraction * members.size))
        train.append(members[:cut])
        test.append(members[cut:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


class ArrayData:
    """Batches from fixed arrays: ``next() -> (input, label)``, ``get_test_set() -> (input, label)``.

    ``train_input``/``test_input`` are (n, ...) arrays, ``train_label``/``test_label``
    (n, classes) one-hot. ``last_input`` is the input of the latest ``next()``
    (None before the first), e.g. to inspect a batch that made training fail.
    """

    def __init__(
        self,
        batch_size: int,
        train_input: np.ndarray,
        train_label: np.ndarray,
        test_input: np.ndarray,
        test_label: np.ndarray,
        random: bool = True,
    ) -> None:
        self.batch_size = check_batch_size(batch_size)
        self.random = boolean("random", random, type(self).__name__)
        if train_input.shape[0] != train_label.shape[0] or test_input.shape[0] != test_label.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: inputs and labels differ in count "
                f"(train {train_input.shape[0]} vs {train_label.shape[0]}, "
                f"test {test_input.shape[0]} vs {test_label.shape[0]})"
            )
        if train_input.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: the training set is empty")
        self._train_input = train_input
        self._train_label = train_label
        self._test_input = test_input
        self._test_label = test_label
        self._order = np.empty(0, dtype=np.intp)
        self._position = 0
        self.epoch = 0
        self.last_input: np.ndarray | None = None

    @property
    def train_size(self) -> int:
        """Number of training samples."""
        return int(self._train_input.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, without the batch axis (e.g. (1, 28, 28))."""
        return tuple(self._train_input.shape[1:])

    @property
    def test_size(self) -> int:
        """Number of test samples."""
        return int(self._test_input.shape[0])

    def _new_epoch(self) -> None:
        n = self.train_size
        self._order = np.random.permutation(n) if self.random else np.arange(n)
        self._position = 0
        self.epoch += 1

    def _next_indices(self) -> np.ndarray:
        chunks = []
        needed = self.batch_size
        while needed:
            if self._position >= self._order.size:
                self._new_epoch()
            chunk = self._order[self._position:self._position + needed]
            self._position += chunk.size
            needed -= chunk.size
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """The next training batch: (batch_size, ...) input and (batch_size, classes) one-hot labels."""
        indices = self._next_indices()
        batch_input = self._train_input[indices]
        self.last_input = batch_input
        return batch_input, self._train_label[indices]

    def get_test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole test set (copies): (n_test, ...) input and (n_test, classes) one-hot labels."""
        return self._test_input.copy(), self._test_label.copy()

    def get_train_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole training set (copies), in stored order."""
        return self._train_input.copy(), self._train_label.copy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size})"
