"""TestLeakyReLU: tests whichever LeakyReLU is installed (``impl``), so others can check theirs with
``corenet check their_file.py:LeakyReLU``."""

import numpy as np
import pytest

from corenet.checking.expect import expect_close, expect_gradient
from corenet.testing import L2Loss, gradient_check

pytestmark = pytest.mark.contract


@pytest.fixture
def LeakyReLU(impl):
    return impl("LeakyReLU")


class TestLeakyReLU:
    def test_forward(self, LeakyReLU):
        out = LeakyReLU(0.1).forward(np.array([[-2.0, 3.0]]))
        expect_close(out, [[-0.2, 3.0]], "forward output", "negative inputs are scaled by the slope")

    def test_gradient(self, LeakyReLU):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(4, 5))
        x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
        error = gradient_check([LeakyReLU(0.1), L2Loss()], x, rng.normal(size=(4, 5)))
        expect_gradient(error, "gradient w.r.t. the input", tolerance=1e-7)
