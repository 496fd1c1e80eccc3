"""The fast Dropout: bit-coded keep-masks and two threads for large tensors.

Same constructor, attributes and behaviour as :class:`corenet_dropout.dropout.Dropout`;
the masks have the same distribution (each unit kept with probability p, scaled by
1/p) but come from a different use of NumPy's global generator
(:mod:`corenet_fast.dropout_mask`), so a seed gives other masks than the reference's.

The mask is kept already scaled (``1 / probability`` or 0, in the input's dtype),
so forward and backward are one multiplication each, split over the batch axis
between two threads for large tensors (:mod:`corenet_fast.threads`). The mask
buffer is private and refilled in place by the next training forward of the same
shape and dtype; the arrays forward and backward return are always new.
"""

from __future__ import annotations

import numpy as np
from corenet_dropout import dropout as reference

from corenet.shapes import check_error, check_input
from corenet_fast.dropout_mask import keep_mask
from corenet_fast.threads import over_rows


class Dropout(reference.Dropout):
    """Dropout with cheap masks and a helper thread (see the module docstring)."""

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        x = check_input(self, input_tensor, (1, 2, 3, 4, 5), "an array with a batch axis")
        self._shape = x.shape
        if self.testing_phase or self.probability == 1.0:
            self._mask = None
            return x
        keep = keep_mask(x.shape, self.probability)
        scale = x.dtype.type(1.0 / self.probability)
        mask = self._mask if _fits(self._mask, x) else np.empty(x.shape, dtype=x.dtype)
        out = np.empty_like(x)

        def scaled_mask_and_output(rows: slice) -> None:
            np.multiply(keep[rows], scale, out=mask[rows])  # 1/p where kept, 0 elsewhere
            np.multiply(x[rows], mask[rows], out=out[rows])

        over_rows(scaled_mask_and_output, len(x), x.size)
        self._mask = mask
        return out

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        error = check_error(self, error_tensor, self._shape)
        if self._mask is None:
            return error
        mask = self._mask
        if error.dtype != mask.dtype:  # an error in another float dtype: scale in the error's own dtype
            out = np.multiply(error, error.dtype.type(1.0 / self.probability))
            out *= mask != 0
            return out
        out = np.empty_like(error)
        over_rows(lambda rows: np.multiply(error[rows], mask[rows], out=out[rows]), len(error), error.size)
        return out


def _fits(buffer: np.ndarray | None, tensor: np.ndarray) -> bool:
    """Whether ``buffer`` can hold a mask for ``tensor`` (same shape and dtype)."""
    return buffer is not None and buffer.shape == tensor.shape and buffer.dtype == tensor.dtype
