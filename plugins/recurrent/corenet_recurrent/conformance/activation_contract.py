"""The tests of an element-wise activation that stores its activations (TanH, Sigmoid), whoever wrote it.

``class TestTanH(ActivationContract)`` sets ``name``, ``function`` (NumPy) and
``derivative`` (of the activation y) and tests ``impl(name)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from corenet.checking.expect import expect, expect_close, expect_equal, expect_gradient, expect_shape
from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check

SHAPES = [(5, 4), (2, 3, 4, 4), (7,)]


class ActivationContract:
    name = "TanH"
    scale = 3.0  # input spread: well inside and outside the linear region

    @staticmethod
    def function(x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    @staticmethod
    def derivative(y: np.ndarray) -> np.ndarray:
        return 1.0 - y**2

    @staticmethod
    def torch_function(torch, x):
        return torch.tanh(x)

    @pytest.fixture
    def cls(self, impl):
        return impl(self.name)

    def data(self, shape, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        return rng.normal(size=shape) * self.scale, rng.normal(size=shape)

    # == contract ====================================================================================
    def test_flags(self, cls):
        layer = cls()
        expect_equal(getattr(layer, "trainable", None), False, f"{self.name}().trainable")
        expect_equal(getattr(layer, "testing_phase", None), False, f"{self.name}().testing_phase")

    @pytest.mark.parametrize("shape", SHAPES, ids=["2-D", "4-D", "1-D"])
    def test_forward_values(self, cls, shape):
        x, _ = self.data(shape)
        output = cls().forward(x)
        expect_shape(output, shape, "forward output")
        expect_close(output, self.function(x), f"{self.name} forward output", rtol=1e-12, atol=1e-14)

    @pytest.mark.parametrize("shape", SHAPES, ids=["2-D", "4-D", "1-D"])
    def test_backward_is_the_error_times_the_derivative(self, cls, shape):
        x, error = self.data(shape)
        layer = cls()
        y = self.function(x)
        layer.forward(x)
        expect_close(layer.backward(error), error * self.derivative(y), f"{self.name} backward output",
                     "backward multiplies the error by the derivative computed from the stored activations",
                     rtol=1e-10, atol=1e-14)

    def test_backward_uses_the_stored_activations(self, cls):
        """Changing the input array after forward must not change backward: the activations are what is kept."""
        x, error = self.data((4, 6), seed=1)
        y = self.function(x)
        layer = cls()
        layer.forward(x)
        x[...] = 0.0
        expect(np.allclose(layer.backward(error), error * self.derivative(y), rtol=1e-10, atol=1e-14),
               "backward changed when the input array was modified after forward: store the activations "
               "(forward's output), not the input, and compute the derivative from them")

    @pytest.mark.parametrize("shape", SHAPES, ids=["2-D", "4-D", "1-D"])
    def test_gradient(self, cls, shape):
        x, labels = self.data(shape, seed=2)
        expect_gradient(gradient_check([cls(), L2Loss()], x, labels), "the error backward returns", tolerance=1e-7)

    # == reference ===================================================================================
    @pytest.mark.reference
    def test_agrees_with_the_reference_over_several_calls(self, cls, impl):
        layer, twin = cls(), impl.reference(self.name)()
        for call in range(4):
            x, error = self.data((6, 5), seed=10 + call)
            expect_close(layer.forward(x), twin.forward(x), f"forward output of call {call + 1}", rtol=1e-12,
                         atol=1e-14)
            expect_close(layer.backward(error), twin.backward(error), f"backward output of call {call + 1}",
                         rtol=1e-10, atol=1e-14)

    @pytest.mark.reference
    def test_agrees_with_torch(self, cls):
        torch = pytest.importorskip("torch")
        x, error = self.data((6, 3), seed=4)
        layer = cls()
        output = layer.forward(x)
        xt = torch.tensor(x, requires_grad=True)
        yt = self.torch_function(torch, xt)
        (yt * torch.from_numpy(error)).sum().backward()
        expect_close(output, yt.detach().numpy(), "forward output vs torch", rtol=0, atol=1e-12)
        expect_close(layer.backward(error), xt.grad.numpy(), "backward output vs torch", rtol=0, atol=1e-12)

    # == corenet extras ==============================================================================
    @pytest.mark.corenet
    def test_keeps_the_activations_attribute(self, cls):
        layer = cls()
        y = layer.forward(np.array([[0.3, -2.0]]))
        np.testing.assert_array_equal(layer.activations, y)

    @pytest.mark.corenet
    def test_dtypes(self, cls):
        layer = cls()
        assert layer.forward(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
        assert layer.backward(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
        assert layer.forward(np.array([[1, -1]])).dtype == np.float64
        assert layer.forward(np.array([[True, False]])).dtype == np.float64

    @pytest.mark.corenet
    def test_backward_errors(self, cls):
        with pytest.raises(ShapeError, match="before forward"):
            cls().backward(np.ones((2, 2)))
        layer = cls()
        layer.forward(np.ones((2, 3)))
        with pytest.raises(ShapeError, match=r"\(2, 3\)"):
            layer.backward(np.ones((3, 2)))

    @pytest.mark.corenet
    def test_registered(self, cls):
        import corenet

        assert corenet.get_registry().name_of(cls) == self.name
