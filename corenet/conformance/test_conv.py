"""TestConv: shapes, padding, strides, gradients, initialization, updates, errors, PyTorch parity."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import corenet
from corenet.errors import ShapeError
from corenet.initializers import Constant, He
from corenet.layers.flatten import Flatten
from corenet.optimizers import Sgd, SgdWithMomentum
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

Conv = corenet.get_registry().layers["Conv"]  # selected; CORENET_IMPL picks the tier


def reference_conv(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, strides) -> np.ndarray:
    """Direct-sum 'same' cross-correlation (k//2 zeros before, (k-1)//2 after), then subsampling."""
    one_d = x.ndim == 3
    if one_d:
        x, weights, strides = x[:, :, None, :], weights[:, :, None, :], (1, strides[0])
    m, n = weights.shape[2:]
    batch, _, y, width = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (m // 2, (m - 1) // 2), (n // 2, (n - 1) // 2)))
    out = np.zeros((batch, weights.shape[0], y, width))
    for row in range(y):
        for col in range(width):
            window = padded[:, :, row : row + m, col : col + n]
            out[:, :, row, col] = np.tensordot(window, weights, axes=([1, 2, 3], [1, 2, 3])) + bias
    out = out[:, :, :: strides[0], :: strides[1]]
    return out[:, :, 0, :] if one_d else out


def check_gradients(layer: Conv, input_shape, seed: int = 0) -> None:
    rng = np.random.RandomState(seed)
    x = rng.uniform(-1.0, 1.0, input_shape)
    layer.weights = rng.uniform(-1.0, 1.0, layer.weights.shape)
    layer.bias = rng.uniform(-1.0, 1.0, layer.bias.shape)
    output_size = int(np.prod(layer.forward(x).shape[1:]))
    label = rng.uniform(-1.0, 1.0, (input_shape[0], output_size))
    layers = [layer, Flatten(), L2Loss()]
    assert gradient_check(layers, x, label) <= 1e-5
    assert gradient_check_weights(layers, x, label, parameter="weights") <= 1e-5
    assert gradient_check_weights(layers, x, label, parameter="bias") <= 1e-5


class RecordingInitializer:
    def __init__(self) -> None:
        self.calls = []
        self.returned = None

    def initialize(self, weights_shape, fan_in, fan_out):
        self.calls.append((tuple(weights_shape), fan_in, fan_out))
        self.returned = np.full(weights_shape, 0.25)
        return self.returned


class TestConv:
    def test_trainable_and_parameters(self):
        conv = Conv((1, 1), (3, 5, 8), 4)
        assert conv.trainable and not conv.testing_phase
        assert conv.weights.shape == (4, 3, 5, 8) and conv.bias.shape == (4,)
        assert conv.weights.dtype == np.float64 and conv.bias.dtype == np.float64
        assert 0.0 <= conv.weights.min() and conv.weights.max() < 1.0
        assert 0.0 <= conv.bias.min() and conv.bias.max() < 1.0
        assert conv.gradient_weights is None and conv.gradient_bias is None
        assert Conv.parameter_names == ("weights", "bias")

    def test_default_dtype_and_reproducible(self):
        previous = corenet.get_default_dtype()
        corenet.set_default_dtype(np.float32)
        try:
            conv = Conv(1, (2, 3, 3), 2)
        finally:
            corenet.set_default_dtype(previous)
        assert conv.weights.dtype == np.float32 and conv.bias.dtype == np.float32
        np.random.seed(3)
        first = Conv(1, (2, 3, 3), 2)
        np.random.seed(3)
        second = Conv(1, (2, 3, 3), 2)
        np.testing.assert_array_equal(first.weights, second.weights)
        np.testing.assert_array_equal(first.bias, second.bias)

    @pytest.mark.parametrize(
        "stride, image, kernel, expected",
        [
            ((1, 1), (3, 10, 14), (3, 5, 8), (10, 14)),
            ((3, 2), (3, 10, 14), (3, 5, 8), (4, 7)),
            ((3, 2), (3, 11, 15), (3, 5, 8), (4, 8)),
            (2, (2, 7, 7), (2, 4, 4), (4, 4)),
            ((2,), (2, 6, 9), (2, 3, 2), (3, 5)),
            ([1, 3], (1, 5, 5), (1, 1, 1), (5, 2)),
        ],
    )
    def test_output_shape_2d(self, stride, image, kernel, expected):
        conv = Conv(stride, kernel, 5)
        output = conv.forward(np.random.rand(2, *image))
        assert output.shape == (2, 5, *expected)
        assert conv.backward(np.random.rand(*output.shape)).shape == (2, *image)

    @pytest.mark.parametrize("stride, length, kernel, expected", [([2], 15, 3, 8), (1, 15, 4, 15), ((3,), 10, 1, 4)])
    def test_output_shape_1d(self, stride, length, kernel, expected):
        conv = Conv(stride, (3, kernel), 4)
        assert conv.weights.shape == (4, 3, kernel)
        output = conv.forward(np.random.rand(2, 3, length))
        assert output.shape == (2, 4, expected)
        assert conv.backward(np.random.rand(*output.shape)).shape == (2, 3, length)

    @pytest.mark.parametrize(
        "stride, input_shape, kernel",
        [
            ((1, 1), (2, 3, 6, 7), (3, 3, 3)),
            ((1, 1), (2, 2, 6, 5), (2, 4, 2)),
            ((2, 3), (3, 2, 7, 8), (2, 3, 4)),
            ((1, 1), (2, 3, 4, 4), (3, 1, 1)),
            ((2,), (2, 3, 9), (3, 4)),
            ((1,), (2, 2, 6), (2, 3)),
        ],
    )
    def test_forward_matches_direct_sum(self, stride, input_shape, kernel):
        conv = Conv(stride, kernel, 3)
        x = np.random.uniform(-1, 1, input_shape)
        expected = reference_conv(x, conv.weights, conv.bias, conv.stride_shape)
        np.testing.assert_allclose(conv.forward(x), expected, rtol=1e-12, atol=1e-12)

    def test_even_kernel_pads_like_scipy_same(self):
        # even length 4: two zeros before, one after; the output at 0 sees x[-2..1]
        conv = Conv(1, (1, 4), 1)
        conv.weights = np.array([[[1.0, 0.0, 0.0, 0.0]]])
        conv.bias = np.array([0])
        x = np.arange(1.0, 7.0)[None, None, :]
        np.testing.assert_array_equal(conv.forward(x)[0, 0], [0.0, 0.0, 1.0, 2.0, 3.0, 4.0])
        conv.weights = np.array([[[0.0, 0.0, 0.0, 1.0]]])
        np.testing.assert_array_equal(conv.forward(x)[0, 0], [2.0, 3.0, 4.0, 5.0, 6.0, 0.0])

    def test_forward_uses_assigned_parameters(self):
        conv = Conv(1, (3, 3, 3), 1)
        weights = np.zeros((1, 3, 3, 3), dtype=int)
        weights[0, 1, 1, 1] = 1  # picks the centre of channel 1
        conv.weights = weights
        conv.bias = np.array([0])
        x = np.random.rand(2, 3, 5, 6)
        np.testing.assert_array_equal(conv.forward(x)[:, 0], x[:, 1])
        conv.bias = np.array([2.5])
        np.testing.assert_array_equal(conv.forward(x)[:, 0], x[:, 1] + 2.5)

    def test_one_by_one_kernel_is_channel_mixing(self):
        conv = Conv((1, 1), (3, 1, 1), 4)
        x = np.random.rand(2, 3, 4, 5)
        expected = np.einsum("kc,bcyx->bkyx", conv.weights[:, :, 0, 0], x) + conv.bias[None, :, None, None]
        np.testing.assert_allclose(conv.forward(x), expected, rtol=1e-12)
        check_gradients(conv, (2, 3, 3, 4))

    @pytest.mark.parametrize(
        "stride, kernel, input_shape",
        [
            ((1, 1), (3, 3, 3), (2, 3, 5, 6)),
            ((2, 2), (2, 3, 3), (2, 2, 5, 6)),
            ((1, 2), (2, 4, 2), (2, 2, 5, 5)),
            ((3, 2), (2, 2, 3), (2, 2, 7, 6)),
            ((1, 1), (1, 3, 3), (2, 1, 5, 6)),  # one input channel: batch-first internally
            ((2, 3), (1, 4, 3), (3, 1, 7, 8)),
        ],
    )
    def test_gradients_2d(self, stride, kernel, input_shape):
        check_gradients(Conv(stride, kernel, 3), input_shape)

    @pytest.mark.parametrize(
        "stride, kernel, input_shape",
        [((1,), (3, 3), (2, 3, 7)), ((2,), (2, 4), (2, 2, 9)), ((2,), (1, 3), (2, 1, 9))],
    )
    def test_gradients_1d(self, stride, kernel, input_shape):
        check_gradients(Conv(stride, kernel, 2), input_shape)

    def test_initialize_passes_shapes_and_fans(self):
        conv = Conv((1, 1), (3, 5, 8), 4)
        weights_init, bias_init = RecordingInitializer(), RecordingInitializer()
        conv.initialize(weights_init, bias_init)
        assert weights_init.calls == [((4, 3, 5, 8), 3 * 5 * 8, 4 * 5 * 8)]
        assert bias_init.calls == [((4,), 3 * 5 * 8, 4 * 5 * 8)]
        assert conv.weights is weights_init.returned and conv.bias is bias_init.returned

    def test_initialize_1d_fans(self):
        conv = Conv(1, (2, 3), 5)
        weights_init, bias_init = RecordingInitializer(), RecordingInitializer()
        conv.initialize(weights_init, bias_init)
        assert weights_init.calls == [((5, 2, 3), 6, 15)]
        assert bias_init.calls == [((5,), 6, 15)]

    def test_sgd_update(self):
        conv = Conv((2, 1), (2, 3, 3), 3)
        conv.optimizer = Sgd(0.5)
        weights, bias = conv.weights.copy(), conv.bias.copy()
        x = np.random.rand(2, 2, 5, 4)
        error = np.random.rand(*conv.forward(x).shape)
        conv.backward(error)
        np.testing.assert_allclose(conv.weights, weights - 0.5 * conv.gradient_weights)
        np.testing.assert_allclose(conv.bias, bias - 0.5 * conv.gradient_bias)
        np.testing.assert_allclose(conv.gradient_bias, error.sum(axis=(0, 2, 3)))

    def test_no_optimizer_no_update(self):
        conv = Conv(1, (2, 3, 3), 2)
        weights, bias = conv.weights.copy(), conv.bias.copy()
        conv.backward(np.ones(conv.forward(np.random.rand(1, 2, 4, 4)).shape))
        np.testing.assert_array_equal(conv.weights, weights)
        np.testing.assert_array_equal(conv.bias, bias)

    def test_each_parameter_has_its_own_optimizer(self):
        conv = Conv(1, (2, 3, 3), 2)
        optimizer = SgdWithMomentum(0.1, 0.9)
        conv.optimizer = optimizer
        weights_opt, bias_opt = conv.parameter_optimizer("weights"), conv.parameter_optimizer("bias")
        assert weights_opt is not bias_opt and optimizer not in (weights_opt, bias_opt)
        x = np.random.rand(2, 2, 4, 4)
        for _ in range(2):
            weights, bias = conv.weights.copy(), conv.bias.copy()
            conv.forward(x)
            conv.backward(np.ones((2, 2, 4, 4)))
        # second step: w + (0.9 * v1 - 0.1 * g2), with each tensor's own velocity
        assert weights_opt.velocity.shape == (2, 2, 3, 3) and bias_opt.velocity.shape == (2,)
        np.testing.assert_allclose(conv.weights - weights, weights_opt.velocity)
        np.testing.assert_allclose(conv.bias - bias, bias_opt.velocity)
        assert optimizer.velocity is None

    def test_update_learns(self):
        np.random.seed(0)
        conv = Conv((3, 2), (3, 5, 8), 4)
        conv.optimizer = SgdWithMomentum(1e-3, 0.9)
        conv.initialize(He(), Constant(0.1))
        x = np.random.uniform(-1, 1, (2, 3, 10, 14))
        target = np.random.uniform(-1, 1, (2, 4, 4, 7))
        losses = []
        for _ in range(10):
            difference = conv.forward(x) - target
            losses.append(0.5 * np.sum(difference**2))
            conv.backward(difference)
        assert losses[-1] < 0.5 * losses[0]

    def test_float32_stays_float32(self):
        conv = Conv((1, 2), (2, 3, 3), 3)
        conv.optimizer = Sgd(0.1)
        x = np.random.rand(2, 2, 5, 6).astype(np.float32)
        output = conv.forward(x)
        assert output.dtype == np.float32
        gradient = conv.backward(np.ones(output.shape, dtype=np.float32))
        assert gradient.dtype == np.float32
        assert conv.gradient_weights.dtype == np.float32 and conv.gradient_bias.dtype == np.float32
        conv64 = Conv(1, (1, 3), 2)
        assert conv64.forward(np.arange(12).reshape(2, 1, 6)).dtype == np.float64

    def test_repeated_calls_and_changing_shapes(self):
        conv = Conv((1, 2), (2, 3, 2), 3)
        rng = np.random.RandomState(4)
        for shape in [(2, 2, 5, 6), (3, 2, 5, 6), (3, 2, 4, 7), (3, 2, 4, 7)]:
            x = rng.normal(size=shape)
            expected = reference_conv(x, conv.weights, conv.bias, conv.stride_shape)
            np.testing.assert_allclose(conv.forward(x), expected, rtol=1e-12, atol=1e-12)
        x32 = x.astype(np.float32)
        np.testing.assert_allclose(conv.forward(x32), expected, rtol=1e-5, atol=1e-5)

    def test_backward_twice_gives_the_same_gradients(self):
        conv = Conv(1, (2, 3, 3), 2)
        x = np.random.rand(2, 2, 4, 5)
        error = np.random.rand(*conv.forward(x).shape)
        first = conv.backward(error)
        first_weights, first_bias = conv.gradient_weights, conv.gradient_bias
        np.testing.assert_allclose(conv.backward(error), first, rtol=1e-12)
        np.testing.assert_allclose(conv.gradient_weights, first_weights, rtol=1e-12)
        np.testing.assert_allclose(conv.gradient_bias, first_bias, rtol=1e-12)

    @pytest.mark.parametrize("kernel", [(1, 1, 1), (1, 3, 3)])
    def test_results_are_not_overwritten_by_later_calls(self, kernel):
        # batch 1 and a 1x1 kernel are where a view of internal scratch space would be contiguous
        conv = Conv(1, kernel, 1)
        output = conv.forward(np.ones((1, 1, 3, 3)))
        gradient = conv.backward(np.ones((1, 1, 3, 3)))
        saved_output, saved_gradient = output.copy(), gradient.copy()
        conv.forward(np.full((1, 1, 3, 3), 7.0))
        conv.backward(np.full((1, 1, 3, 3), 5.0))
        np.testing.assert_array_equal(output, saved_output)
        np.testing.assert_array_equal(gradient, saved_gradient)

    def test_pickle_and_deepcopy(self):
        conv = Conv(1, (3, 5, 5), 8)
        x = np.random.rand(16, 3, 12, 12)
        output = conv.forward(x)
        restored = pickle.loads(pickle.dumps(conv))
        assert len(pickle.dumps(conv)) < 20_000  # no cached im2col matrix in the pickle
        np.testing.assert_array_equal(restored.weights, conv.weights)
        with pytest.raises(ShapeError, match="before forward"):
            restored.backward(output)
        np.testing.assert_allclose(restored.forward(x), output, rtol=1e-12)
        np.testing.assert_allclose(restored.backward(output), conv.backward(output), rtol=1e-12)
        twin = copy.deepcopy(conv)  # a copy, like a pickle, starts without the scratch space
        np.testing.assert_allclose(twin.forward(x), output, rtol=1e-12)
        assert twin.weights is not conv.weights

    def test_repr(self):
        assert repr(Conv((1, 1), (3, 5, 5), 8)) == "Conv((1, 1), (3, 5, 5), 8)"
        assert repr(Conv(2, (3, 5, 5), 8)) == "Conv((2, 2), (3, 5, 5), 8)"
        assert repr(Conv([2], (3, 5), 8)) == "Conv((2,), (3, 5), 8)"

    def test_registered(self):
        assert corenet.get_registry().layers["Conv"] is Conv

    def test_wrong_rank_and_channels(self):
        conv = Conv(1, (3, 3, 3), 2)
        with pytest.raises(ShapeError, match=r"Conv\(.*4-D.*got a 3-D"):
            conv.forward(np.zeros((2, 3, 5)))
        with pytest.raises(ShapeError, match=r"expects 3 input channels but got 4"):
            conv.forward(np.zeros((2, 4, 5, 5)))
        with pytest.raises(ShapeError, match=r"3-D"):
            Conv(1, (3, 3), 2).forward(np.zeros((2, 3, 5, 5)))

    def test_backward_errors(self):
        conv = Conv(1, (1, 3, 3), 2)
        with pytest.raises(ShapeError, match="before forward"):
            conv.backward(np.zeros((1, 2, 4, 4)))
        conv.forward(np.zeros((1, 1, 4, 4)))
        with pytest.raises(ShapeError, match=r"\(1, 2, 4, 4\)"):
            conv.backward(np.zeros((1, 2, 4, 5)))

    def test_assigned_parameters_of_wrong_shape(self):
        conv = Conv(1, (1, 3, 3), 2)
        conv.weights = np.zeros((2, 1, 3, 2))
        with pytest.raises(ShapeError, match=r"weights must have shape \(2, 1, 3, 3\)"):
            conv.forward(np.zeros((1, 1, 4, 4)))
        conv.weights = np.zeros((2, 1, 3, 3))
        conv.bias = np.zeros(3)
        with pytest.raises(ShapeError, match="bias must have 2 entries"):
            conv.forward(np.zeros((1, 1, 4, 4)))

    @pytest.mark.parametrize(
        "args, name",
        [
            (((1, 1), (3, 3, 3), 0), "num_kernels"),
            (((1, 1), (3, 3, 3), 2.5), "num_kernels"),
            (((1, 1), (3, 3, 3, 3), 2), "convolution_shape"),
            (((1, 1), 3, 2), "convolution_shape"),
            (((1, 1), (3, 0, 3), 2), "convolution_shape"),
            (((1, 1, 1), (3, 3, 3), 2), "stride_shape"),
            (((0, 1), (3, 3, 3), 2), "stride_shape"),
            (((1, 1), (3, 3), 2), "stride_shape"),
            (("1", (3, 3, 3), 2), "stride_shape"),
        ],
    )
    def test_bad_constructor_arguments(self, args, name):
        with pytest.raises(ValueError, match=name):
            Conv(*args)

    @pytest.mark.parametrize(
        "input_shape, kernel, stride",
        [
            ((3, 4, 9, 8), (4, 3, 3), (1, 1)),
            ((2, 3, 10, 9), (3, 4, 2), (2, 3)),
            ((2, 2, 7, 7), (2, 5, 5), (2, 2)),
            ((3, 4, 11), (4, 3), (1,)),
            ((2, 3, 12), (3, 4), (3,)),
            ((3, 1, 9, 8), (1, 5, 5), (1, 1)),  # one input channel (LeNet's first layer)
            ((2, 1, 10, 9), (1, 4, 3), (2, 3)),
            ((2, 1, 12), (1, 4), (3,)),
        ],
    )
    def test_matches_torch_float64(self, input_shape, kernel, stride):
        torch = pytest.importorskip("torch")
        functional = torch.nn.functional
        conv = Conv(stride, kernel, 5)
        rng = np.random.RandomState(1)
        x = rng.normal(size=input_shape)
        output = conv.forward(x)
        error = rng.normal(size=output.shape)
        input_gradient = conv.backward(error)

        x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        w_t = torch.tensor(conv.weights, dtype=torch.float64, requires_grad=True)
        b_t = torch.tensor(conv.bias, dtype=torch.float64, requires_grad=True)
        padding = []
        for size in reversed(kernel[1:]):  # F.pad lists the last axis first
            padding += [size // 2, (size - 1) // 2]
        function = functional.conv1d if len(kernel) == 2 else functional.conv2d
        out_t = function(functional.pad(x_t, padding), w_t, b_t, stride=stride)
        out_t.backward(torch.tensor(error, dtype=torch.float64))

        def close(ours, theirs):
            theirs = theirs.detach().numpy()
            assert ours.shape == theirs.shape
            np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-8 * np.abs(theirs).max())

        close(output, out_t)
        close(input_gradient, x_t.grad)
        close(conv.gradient_weights, w_t.grad)
        close(conv.gradient_bias, b_t.grad)
