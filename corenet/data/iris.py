"""IrisData: scikit-learn's bundled iris flowers (150 samples, 4 features, 3 classes)."""

from __future__ import annotations

import numpy as np

from corenet.data.base import ArrayData, one_hot, stratified_split
from corenet.dtype import get_default_dtype


class IrisData(ArrayData):
    """Iris with a fixed stratified split: 33 of each class (99) train, the other 51 test.

    Features are standardised with the training set's per-feature mean and
    standard deviation (kept as ``feature_mean``/``feature_std``). ``next()`` ->
    (batch_size, 4) input, (batch_size, 3) one-hot labels, reshuffled every epoch
    with ``np.random`` when ``random`` is True.
    Arrays use :func:`corenet.get_default_dtype` at construction.
    """

    classes = 3
    split_seed = 0

    def __init__(self, batch_size: int, random: bool = True) -> None:
        from sklearn.datasets import load_iris

        data = load_iris()
        features = np.asarray(data.data, dtype=np.float64)
        targets = np.asarray(data.target)
        train, test = stratified_split(targets, 2 / 3, self.split_seed)
        #: per-feature mean and standard deviation of the raw training features
        self.feature_mean = features[train].mean(axis=0)
        self.feature_std = features[train].std(axis=0)
        features = ((features - self.feature_mean) / self.feature_std).astype(get_default_dtype())
        labels = one_hot(targets, self.classes)
        super().__init__(batch_size, features[train], labels[train], features[test], labels[test], random)
