"""TestSigmoid: the logistic sigmoid activation (stores its activations; σ' = y(1 - y))."""

import warnings

import numpy as np
import pytest

from corenet_recurrent.conformance.activation_contract import ActivationContract

pytestmark = pytest.mark.contract


class TestSigmoid(ActivationContract):
    name = "Sigmoid"

    @staticmethod
    def function(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-x))

    @staticmethod
    def derivative(y: np.ndarray) -> np.ndarray:
        return y * (1.0 - y)

    @staticmethod
    def torch_function(torch, x):
        return torch.sigmoid(x)

    @pytest.mark.corenet
    def test_extreme_inputs_do_not_overflow(self, cls):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = cls().forward(np.array([[-1000.0, 1000.0, -745.0]]))
        assert y[0, 0] == 0.0 and y[0, 1] == 1.0 and 0 < y[0, 2] < 1e-300
        assert cls().forward(np.zeros((1, 1)))[0, 0] == 0.5
