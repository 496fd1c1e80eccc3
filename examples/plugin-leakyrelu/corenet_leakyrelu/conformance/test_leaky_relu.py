import numpy as np
from corenet_leakyrelu.leaky_relu import LeakyReLU

from corenet.testing import L2Loss, gradient_check


class TestLeakyReLU:
    def test_forward(self):
        out = LeakyReLU(0.1).forward(np.array([[-2.0, 3.0]]))
        np.testing.assert_allclose(out, [[-0.2, 3.0]])

    def test_gradient(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(4, 5))
        x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
        assert gradient_check([LeakyReLU(0.1), L2Loss()], x, rng.normal(size=(4, 5))) < 1e-7
