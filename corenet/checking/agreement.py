"""Train an implementation side by side with corenet's reference and stop at the first difference.

Both get the same inputs and, at every step, the same error (the L2 loss gradient of the
reference's output), so a difference shows up exactly where it starts: in forward before
any update, in the error returned by backward, or in forward after an update.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from corenet.checking.expect import expect_close

FORWARD_HINT = ("forward differs before any update: check forward, and where initialize puts the "
                "arrays the initializers return")
UPDATE_HINT = ("forward agreed at step {previous}, so the update made in backward at step {previous} "
               "differs: check the weight gradients, that backward applies the optimizer to every weight tensor, "
               "and that each tensor has its own copy of the optimizer")
BACKWARD_HINT = "check the error backward returns for the previous layer"


class Chain:
    """Layers run one after another as one layer (``forward``/``backward``)."""

    def __init__(self, layers: Sequence) -> None:
        self.layers = list(layers)

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            input_tensor = layer.forward(input_tensor)
        return input_tensor

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            error_tensor = layer.backward(error_tensor)
        return error_tensor


def train_side_by_side(target, reference, input_tensor: np.ndarray, label_tensor: np.ndarray, *,
                       steps: int = 5, what: str = "the layer", attributes: Sequence[str] = (),
                       rtol: float = 1e-7, atol: float = 1e-9, compare_backward: bool = True) -> None:
    """Run ``steps`` forward/backward passes of ``target`` and ``reference`` under an L2 loss.

    ``attributes`` (e.g. ``("gradient_weights",)``) are compared after every backward.
    """
    for step in range(1, steps + 1):
        hint = FORWARD_HINT if step == 1 else UPDATE_HINT.format(previous=step - 1)
        expected = np.asarray(reference.forward(np.array(input_tensor)))
        actual = target.forward(np.array(input_tensor))
        expect_close(actual, expected, f"{what}: forward output at step {step} of {steps}", hint,
                     rtol=rtol, atol=atol)
        error = expected - label_tensor
        expected_back = reference.backward(np.array(error))
        actual_back = target.backward(np.array(error))
        if compare_backward:
            expect_close(actual_back, expected_back, f"{what}: backward output at step {step} of {steps}",
                         BACKWARD_HINT, rtol=rtol, atol=atol)
        for name in attributes:
            expect_close(getattr(target, name, None), getattr(reference, name),
                         f"{what}: {name} at step {step} of {steps}", rtol=rtol, atol=atol)
