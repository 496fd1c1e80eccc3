"""DigitData: scikit-learn's bundled 8x8 handwritten digits (1797 samples, 10 classes)."""

from __future__ import annotations

import numpy as np

from corenet.data.base import ArrayData, one_hot, stratified_split
from corenet.dtype import get_default_dtype


class DigitData(ArrayData):
    """Digits as (b, 1, 8, 8) images scaled from 0..16 to [0, 1], one-hot over 10 classes.

    Fixed stratified split: 2/3 train (1198), 1/3 test (599). ``next()`` reshuffles
    the training set every epoch with ``np.random`` when ``random`` is True.
    """

    classes = 10
    split_seed = 0

    def __init__(self, batch_size: int, random: bool = True) -> None:
        from sklearn.datasets import load_digits

        data = load_digits()
        images = (np.asarray(data.data, dtype=np.float64) / 16.0).reshape(-1, 1, 8, 8)
        images = images.astype(get_default_dtype())
        targets = np.asarray(data.target)
        train, test = stratified_split(targets, 2 / 3, self.split_seed)
        labels = one_hot(targets, self.classes)
        super().__init__(batch_size, images[train], labels[train], images[test], labels[test], random)
