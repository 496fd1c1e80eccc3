"""TestTanH: the hyperbolic tangent activation (stores its activations; tanh' = 1 - y²)."""

import numpy as np
import pytest

from corenet_recurrent.conformance.activation_contract import ActivationContract

pytestmark = pytest.mark.contract


class TestTanH(ActivationContract):
    name = "TanH"

    @pytest.mark.corenet
    def test_saturates_exactly(self, cls):
        y = cls().forward(np.linspace(-30, 30, 60).reshape(3, 20))
        assert y[0, 0] == -1.0 and y[-1, -1] == 1.0
