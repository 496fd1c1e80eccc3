"""The learning-rate schedule of the worked examples (`corenet recall`, `corenet digit-rows`)."""

from __future__ import annotations

import numpy as np


def cosine_decay(initial: float, epoch: int, epochs: int) -> float:
    """Learning rate of ``epoch`` (0-based): a cosine from ``initial`` at the first epoch down to
    ``initial / 20`` at the last."""
    progress = epoch / max(epochs - 1, 1)
    low = initial / 20.0
    return low + 0.5 * (initial - low) * (1.0 + np.cos(np.pi * progress))
