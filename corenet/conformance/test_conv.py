"""Conformance group TestConv: 'same' cross-correlation, strides, gradients, initialization, updates."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import corenet
from corenet.checking.agreement import train_side_by_side
from corenet.checking.doubles import ArrayInitializer, RecordingInitializer, known_values
from corenet.checking.expect import expect, expect_close, expect_equal, expect_gradient, expect_shape
from corenet.errors import ShapeError
from corenet.testing import L2Loss, gradient_check, gradient_check_weights

pytestmark = pytest.mark.contract
SAME_HINT = ("cross-correlate with zero padding so that the output before striding has the input's size "
             "(an even kernel length k pads k//2 before and (k-1)//2 after, like scipy.signal.correlate 'same'), "
             "then keep every stride-th position")


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


def check_gradients(layer, input_shape, flatten, seed: int = 0) -> None:
    rng = np.random.RandomState(seed)
    x = rng.uniform(-1.0, 1.0, input_shape)
    layer.weights = rng.uniform(-1.0, 1.0, np.shape(layer.weights))
    layer.bias = rng.uniform(-1.0, 1.0, np.shape(layer.bias))
    output_size = int(np.prod(layer.forward(x).shape[1:]))
    label = rng.uniform(-1.0, 1.0, (input_shape[0], output_size))
    layers = [layer, flatten(), L2Loss()]
    expect_gradient(gradient_check(layers, x, label), f"gradient w.r.t. the input (input {input_shape})")
    expect_gradient(gradient_check_weights(layers, x, label, parameter="weights"),
                    f"gradient_weights (input {input_shape})", "forward must use the array assigned to weights")
    expect_gradient(gradient_check_weights(layers, x, label, parameter="bias"),
                    f"gradient_bias (input {input_shape})", "the bias gradient sums the error over batch and space")


@pytest.fixture
def Conv(impl):
    return impl("Conv")


@pytest.fixture
def Flatten(impl):
    return impl.reference("Flatten")


def sgd(impl, rate: float):
    return impl.reference("Sgd")(rate)


class TestConv:
    def setup_method(self) -> None:
        np.random.seed(17)

    # -- contract -------------------------------------------------------------------------------
    def test_trainable_and_parameters(self, Conv):
        conv = Conv((1, 1), (3, 5, 8), 4)
        expect_equal(getattr(conv, "trainable", None), True, "Conv(...).trainable")
        expect_equal(getattr(conv, "testing_phase", None), False, "Conv(...).testing_phase")
        expect_shape(conv.weights, (4, 3, 5, 8), "Conv((1, 1), (3, 5, 8), 4).weights",
                     "weights has shape (num_kernels, channels, m, n)")
        expect_shape(conv.bias, (4,), "Conv((1, 1), (3, 5, 8), 4).bias", "one bias per kernel")
        for name in ("weights", "bias"):
            values = np.asarray(getattr(conv, name))
            expect(0.0 <= values.min() and values.max() < 1.0, f"the initial {name} are not in [0, 1)",
                   "draw them with np.random.uniform(0, 1, shape) in the constructor")

    @pytest.mark.parametrize(
        "stride, image, kernel, expected",
        [
            ((1, 1), (3, 10, 14), (3, 5, 8), (10, 14)),
            ((3, 2), (3, 10, 14), (3, 5, 8), (4, 7)),
            ((3, 2), (3, 11, 15), (3, 5, 8), (4, 8)),
            ((2, 2), (2, 7, 7), (2, 4, 4), (4, 4)),
            ([1, 3], (1, 5, 5), (1, 1, 1), (5, 2)),
        ],
    )
    def test_output_shape_2d(self, Conv, stride, image, kernel, expected):
        conv = Conv(stride, kernel, 5)
        output = conv.forward(np.random.rand(2, *image))
        expect_shape(output, (2, 5, *expected), f"forward output of Conv({stride}, {kernel}, 5) on {image}",
                     "'same' padding, then every stride-th position: ceil(size / stride)")
        expect_shape(conv.backward(np.random.rand(*output.shape)), (2, *image), "backward output")

    @pytest.mark.parametrize("stride, length, kernel, expected", [([2], 15, 3, 8), ((1,), 15, 4, 15),
                                                                  ((3,), 10, 1, 4)])
    def test_output_shape_1d(self, Conv, stride, length, kernel, expected):
        conv = Conv(stride, (3, kernel), 4)
        expect_shape(conv.weights, (4, 3, kernel), f"Conv({stride}, (3, {kernel}), 4).weights")
        output = conv.forward(np.random.rand(2, 3, length))
        expect_shape(output, (2, 4, expected), f"forward output of the 1-D Conv({stride}, (3, {kernel}), 4)")
        expect_shape(conv.backward(np.random.rand(*output.shape)), (2, 3, length), "backward output (1-D)")

    @pytest.mark.parametrize(
        "stride, input_shape, kernel",
        [
            ((1, 1), (2, 3, 6, 7), (3, 3, 3)),
            ((2, 3), (3, 2, 7, 8), (2, 3, 5)),
            ((1, 1), (2, 3, 4, 4), (3, 1, 1)),
            ((2,), (2, 3, 9), (3, 3)),
            ((1,), (2, 2, 6), (2, 5)),
        ],
    )
    def test_forward_matches_direct_sum(self, Conv, stride, input_shape, kernel):
        conv = Conv(stride, kernel, 3)
        x = np.random.uniform(-1, 1, input_shape)
        expected = reference_conv(x, conv.weights, conv.bias, stride)
        expect_close(conv.forward(x), expected, f"forward output of Conv({stride}, {kernel}, 3)", SAME_HINT,
                     rtol=1e-10, atol=1e-10)

    def test_forward_uses_assigned_parameters(self, Conv):
        conv = Conv((1, 1), (3, 3, 3), 1)
        weights = np.zeros((1, 3, 3, 3))
        weights[0, 1, 1, 1] = 1.0  # picks the centre of channel 1
        conv.weights = weights
        conv.bias = np.array([0.0])
        x = np.random.rand(2, 3, 5, 6)
        expect_close(conv.forward(x)[:, 0], x[:, 1], "forward output of a kernel that picks channel 1's centre",
                     "forward must use the arrays assigned to weights and bias", rtol=1e-12)
        conv.bias = np.array([2.5])
        expect_close(conv.forward(x)[:, 0], x[:, 1] + 2.5, "forward output after assigning bias = [2.5]", rtol=1e-12)

    def test_one_by_one_kernel_is_channel_mixing(self, Conv, Flatten):
        conv = Conv((1, 1), (3, 1, 1), 4)
        x = np.random.rand(2, 3, 4, 5)
        expected = np.einsum("kc,bcyx->bkyx", conv.weights[:, :, 0, 0], x) + conv.bias[None, :, None, None]
        expect_close(conv.forward(x), expected, "forward output of a 1x1 kernel", rtol=1e-12)
        check_gradients(conv, (2, 3, 3, 4), Flatten)

    @pytest.mark.parametrize(
        "stride, kernel, input_shape",
        [
            ((1, 1), (3, 3, 3), (2, 3, 5, 6)),
            ((2, 2), (2, 3, 3), (2, 2, 5, 6)),
            ((1, 2), (2, 4, 2), (2, 2, 5, 5)),
            ((3, 2), (2, 2, 3), (2, 2, 7, 6)),
            ((1, 1), (1, 3, 3), (2, 1, 5, 6)),
            ((2, 3), (1, 4, 3), (3, 1, 7, 8)),
        ],
    )
    def test_gradients_2d(self, Conv, Flatten, stride, kernel, input_shape):
        check_gradients(Conv(stride, kernel, 3), input_shape, Flatten)

    @pytest.mark.parametrize(
        "stride, kernel, input_shape",
        [((1,), (3, 3), (2, 3, 7)), ((2,), (2, 4), (2, 2, 9)), ((2,), (1, 3), (2, 1, 9))],
    )
    def test_gradients_1d(self, Conv, Flatten, stride, kernel, input_shape):
        check_gradients(Conv(stride, kernel, 2), input_shape, Flatten)

    @pytest.mark.parametrize("kernel, fans", [((3, 5, 8), (120, 160)), ((2, 3), (6, 15))])
    def test_initialize_passes_shape_and_fans(self, Conv, kernel, fans):
        conv = Conv((1,) * (len(kernel) - 1), kernel, 4 if len(kernel) == 3 else 5)
        weights_init, bias_init = RecordingInitializer(0.25), RecordingInitializer(-0.5)
        conv.initialize(weights_init, bias_init)
        shape = (4 if len(kernel) == 3 else 5, *kernel)
        expect(weights_init.calls, "initialize did not call weights_initializer.initialize")
        expect_equal(weights_init.calls[0], (shape, *fans), "(shape, fan_in, fan_out) given to the weights "
                     "initializer", "fan_in = channels * m * n, fan_out = num_kernels * m * n")
        expect_close(conv.weights, np.full(shape, 0.25), "weights after initialize")
        expect_close(conv.bias, np.full(shape[0], -0.5), "bias after initialize",
                     "take the bias from bias_initializer.initialize")

    def test_sgd_update(self, Conv, impl):
        conv = Conv((2, 1), (2, 3, 3), 3)
        conv.optimizer = sgd(impl, 0.5)
        weights, bias = np.array(conv.weights), np.array(conv.bias)
        x = np.random.rand(2, 2, 5, 4)
        error = np.random.rand(*conv.forward(x).shape)
        conv.backward(error)
        expect_close(conv.gradient_bias, error.sum(axis=(0, 2, 3)), "gradient_bias",
                     "sum the error over batch and space per kernel")
        expect_close(conv.weights, weights - 0.5 * conv.gradient_weights, "weights after one Sgd(0.5) step")
        expect_close(conv.bias, bias - 0.5 * conv.gradient_bias, "bias after one Sgd(0.5) step",
                     "update the bias too, with its own copy of the optimizer")

    def test_no_optimizer_no_update(self, Conv):
        conv = Conv((1, 1), (2, 3, 3), 2)
        weights, bias = np.array(conv.weights), np.array(conv.bias)
        conv.backward(np.ones(conv.forward(np.random.rand(1, 2, 4, 4)).shape))
        expect_close(conv.weights, weights, "weights after backward without an optimizer", rtol=0, atol=0)
        expect_close(conv.bias, bias, "bias after backward without an optimizer", rtol=0, atol=0)

    def test_update_learns(self, Conv, impl):
        conv = Conv((3, 2), (3, 5, 8), 4)
        conv.optimizer = impl.reference("SgdWithMomentum")(1e-3, 0.9)
        conv.initialize(impl.reference("He")(), impl.reference("Constant")(0.1))
        x = np.random.uniform(-1, 1, (2, 3, 10, 14))
        target = np.random.uniform(-1, 1, (2, 4, 4, 7))
        losses = []
        for _ in range(10):
            difference = conv.forward(x) - target
            losses.append(0.5 * np.sum(difference**2))
            conv.backward(difference)
        expect(losses[-1] < 0.5 * losses[0], f"10 momentum steps took the loss only from {losses[0]:.4g} "
               f"to {losses[-1]:.4g}")

    # -- reference ------------------------------------------------------------------------------
    @pytest.mark.reference
    @pytest.mark.parametrize(
        "stride, kernel, input_shape",
        [((1, 1), (2, 3, 3), (3, 2, 5, 6)), ((2, 1), (2, 4, 2), (2, 2, 6, 5)), ((2,), (3, 4), (2, 3, 9))],
    )
    @pytest.mark.parametrize("optimizer", ["SgdWithMomentum", "Adam"])
    def test_trains_like_the_reference(self, Conv, impl, stride, kernel, input_shape, optimizer):
        make_optimizer = {"SgdWithMomentum": lambda: impl.reference("SgdWithMomentum")(0.01, 0.9),
                          "Adam": lambda: impl.reference("Adam")(0.01, 0.9, 0.999)}[optimizer]
        layers = []
        for cls in (Conv, impl.reference("Conv")):
            layer = cls(stride, kernel, 3)
            layer.initialize(ArrayInitializer(1), ArrayInitializer(2))
            layer.optimizer = make_optimizer()
            layers.append(layer)
        x = np.random.standard_normal(input_shape)
        label = np.random.standard_normal(layers[1].forward(x).shape)
        train_side_by_side(*layers, x, label, steps=5, what=f"Conv({stride}, {kernel}, 3) with {optimizer}",
                           attributes=("gradient_weights", "gradient_bias"))

    @pytest.mark.reference
    def test_even_kernel_pads_like_scipy_same(self, Conv):
        # even length 4: two zeros before, one after; the output at 0 sees x[-2..1]
        conv = Conv((1,), (1, 4), 1)
        conv.weights = np.array([[[1.0, 0.0, 0.0, 0.0]]])
        conv.bias = np.array([0.0])
        x = np.arange(1.0, 7.0)[None, None, :]
        expect_close(conv.forward(x)[0, 0], [0.0, 0.0, 1.0, 2.0, 3.0, 4.0], "forward output of kernel [1, 0, 0, 0]",
                     SAME_HINT)
        conv.weights = np.array([[[0.0, 0.0, 0.0, 1.0]]])
        expect_close(conv.forward(x)[0, 0], [2.0, 3.0, 4.0, 5.0, 6.0, 0.0], "forward output of kernel [0, 0, 0, 1]",
                     SAME_HINT)

    @pytest.mark.reference
    @pytest.mark.parametrize("stride, input_shape, kernel", [((1, 1), (2, 2, 6, 5), (2, 4, 2)),
                                                             ((2, 2), (2, 3, 7, 6), (3, 2, 4))])
    def test_even_kernels_match_direct_sum(self, Conv, stride, input_shape, kernel):
        conv = Conv(stride, kernel, 3)
        x = np.random.uniform(-1, 1, input_shape)
        expect_close(conv.forward(x), reference_conv(x, conv.weights, conv.bias, stride),
                     f"forward output of Conv({stride}, {kernel}, 3)", SAME_HINT, rtol=1e-10, atol=1e-10)

    @pytest.mark.reference
    def test_repeated_calls_and_changing_shapes(self, Conv):
        conv = Conv((1, 2), (2, 3, 2), 3)
        rng = np.random.RandomState(4)
        for shape in [(2, 2, 5, 6), (3, 2, 5, 6), (3, 2, 4, 7), (3, 2, 4, 7)]:
            x = rng.normal(size=shape)
            expect_close(conv.forward(x), reference_conv(x, conv.weights, conv.bias, (1, 2)),
                         f"forward output for an input of shape {shape} after other shapes",
                         "do not keep sizes from an earlier forward", rtol=1e-10, atol=1e-10)

    @pytest.mark.reference
    def test_backward_twice_gives_the_same_gradients(self, Conv):
        conv = Conv((1, 1), (2, 3, 3), 2)
        x = np.random.rand(2, 2, 4, 5)
        error = np.random.rand(*conv.forward(x).shape)
        first = np.array(conv.backward(error))
        first_weights, first_bias = np.array(conv.gradient_weights), np.array(conv.gradient_bias)
        hint = "compute the gradients afresh in every backward instead of adding to the last ones"
        expect_close(conv.backward(error), first, "backward output of a repeated backward", rtol=1e-12)
        expect_close(conv.gradient_weights, first_weights, "gradient_weights of a repeated backward", hint, rtol=1e-12)
        expect_close(conv.gradient_bias, first_bias, "gradient_bias of a repeated backward", hint, rtol=1e-12)

    @pytest.mark.reference
    @pytest.mark.parametrize(
        "input_shape, kernel, stride",
        [
            ((3, 4, 9, 8), (4, 3, 3), (1, 1)),
            ((2, 3, 10, 9), (3, 4, 2), (2, 3)),
            ((2, 2, 7, 7), (2, 5, 5), (2, 2)),
            ((3, 4, 11), (4, 3), (1,)),
            ((2, 3, 12), (3, 4), (3,)),
            ((3, 1, 9, 8), (1, 5, 5), (1, 1)),  # one input channel (LeNet's first layer)
            ((2, 1, 12), (1, 4), (3,)),
        ],
    )
    def test_matches_torch_float64(self, Conv, input_shape, kernel, stride):
        torch = pytest.importorskip("torch")
        functional = torch.nn.functional
        conv = Conv(stride, kernel, 5)
        conv.initialize(ArrayInitializer(3), ArrayInitializer(4))
        rng = np.random.RandomState(1)
        x = rng.normal(size=input_shape)
        output = conv.forward(x)
        error = rng.normal(size=output.shape)
        input_gradient = conv.backward(error)

        x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        w_t = torch.tensor(known_values((5, *kernel), 3), dtype=torch.float64, requires_grad=True)
        b_t = torch.tensor(known_values((5,), 4), dtype=torch.float64, requires_grad=True)
        padding = []
        for size in reversed(kernel[1:]):  # F.pad lists the last axis first
            padding += [size // 2, (size - 1) // 2]
        function = functional.conv1d if len(kernel) == 2 else functional.conv2d
        out_t = function(functional.pad(x_t, padding), w_t, b_t, stride=stride)
        out_t.backward(torch.tensor(error, dtype=torch.float64))
        for what, ours, theirs in (("forward output", output, out_t), ("backward output", input_gradient, x_t.grad),
                                   ("gradient_weights", conv.gradient_weights, w_t.grad),
                                   ("gradient_bias", conv.gradient_bias, b_t.grad)):
            theirs = theirs.detach().numpy()
            expect_close(ours, theirs, f"{what} vs torch conv", rtol=1e-8, atol=1e-8 * np.abs(theirs).max())

    # -- corenet --------------------------------------------------------------------------------
    @pytest.mark.corenet
    def test_parameter_details(self, Conv):
        conv = Conv((1, 1), (3, 5, 8), 4)
        assert conv.weights.dtype == np.float64 and conv.bias.dtype == np.float64
        assert conv.gradient_weights is None and conv.gradient_bias is None
        assert Conv.parameter_names == ("weights", "bias")

    @pytest.mark.corenet
    def test_default_dtype_and_reproducible(self, Conv):
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

    @pytest.mark.corenet
    @pytest.mark.parametrize("stride, image, kernel, expected", [(2, (2, 7, 7), (2, 4, 4), (4, 4)),
                                                                 ((2,), (2, 6, 9), (2, 3, 2), (3, 5))])
    def test_int_and_short_strides(self, Conv, stride, image, kernel, expected):
        assert Conv(stride, kernel, 5).forward(np.random.rand(2, *image)).shape == (2, 5, *expected)

    @pytest.mark.corenet
    def test_integer_parameters(self, Conv):
        conv = Conv(1, (3, 3, 3), 1)
        weights = np.zeros((1, 3, 3, 3), dtype=int)
        weights[0, 1, 1, 1] = 1
        conv.weights, conv.bias = weights, np.array([0])
        x = np.random.rand(2, 3, 5, 6)
        np.testing.assert_array_equal(conv.forward(x)[:, 0], x[:, 1])

    @pytest.mark.corenet
    def test_initialize_exact_calls_and_arrays(self, Conv):
        conv = Conv((1, 1), (3, 5, 8), 4)
        weights_init, bias_init = RecordingInitializer(0.25), RecordingInitializer(0.25)
        conv.initialize(weights_init, bias_init)
        assert weights_init.calls == [((4, 3, 5, 8), 3 * 5 * 8, 4 * 5 * 8)]
        assert bias_init.calls == [((4,), 3 * 5 * 8, 4 * 5 * 8)]
        assert conv.weights is weights_init.returned and conv.bias is bias_init.returned

    @pytest.mark.corenet
    def test_each_parameter_has_its_own_optimizer(self, Conv, impl):
        conv = Conv(1, (2, 3, 3), 2)
        optimizer = impl.reference("SgdWithMomentum")(0.1, 0.9)
        conv.optimizer = optimizer
        weights_opt, bias_opt = conv.parameter_optimizer("weights"), conv.parameter_optimizer("bias")
        assert weights_opt is not bias_opt and optimizer not in (weights_opt, bias_opt)
        x = np.random.rand(2, 2, 4, 4)
        for _ in range(2):
            weights, bias = conv.weights.copy(), conv.bias.copy()
            conv.forward(x)
            conv.backward(np.ones((2, 2, 4, 4)))
        assert weights_opt.velocity.shape == (2, 2, 3, 3) and bias_opt.velocity.shape == (2,)
        np.testing.assert_allclose(conv.weights - weights, weights_opt.velocity)
        np.testing.assert_allclose(conv.bias - bias, bias_opt.velocity)
        assert optimizer.velocity is None

    @pytest.mark.corenet
    def test_float32_stays_float32(self, Conv, impl):
        conv = Conv((1, 2), (2, 3, 3), 3)
        conv.optimizer = sgd(impl, 0.1)
        x = np.random.rand(2, 2, 5, 6).astype(np.float32)
        output = conv.forward(x)
        assert output.dtype == np.float32
        gradient = conv.backward(np.ones(output.shape, dtype=np.float32))
        assert gradient.dtype == np.float32
        assert conv.gradient_weights.dtype == np.float32 and conv.gradient_bias.dtype == np.float32
        assert Conv(1, (1, 3), 2).forward(np.arange(12).reshape(2, 1, 6)).dtype == np.float64
        x64 = np.random.rand(2, 2, 5, 6)
        expected = reference_conv(x64, conv.weights, conv.bias, (1, 2))
        np.testing.assert_allclose(conv.forward(x64.astype(np.float32)), expected, rtol=1e-5, atol=1e-5)

    @pytest.mark.corenet
    @pytest.mark.parametrize("kernel", [(1, 1, 1), (1, 3, 3)])
    def test_results_are_not_overwritten_by_later_calls(self, Conv, kernel):
        # batch 1 and a 1x1 kernel are where a view of internal scratch space would be contiguous
        conv = Conv(1, kernel, 1)
        output = conv.forward(np.ones((1, 1, 3, 3)))
        gradient = conv.backward(np.ones((1, 1, 3, 3)))
        saved_output, saved_gradient = output.copy(), gradient.copy()
        conv.forward(np.full((1, 1, 3, 3), 7.0))
        conv.backward(np.full((1, 1, 3, 3), 5.0))
        np.testing.assert_array_equal(output, saved_output)
        np.testing.assert_array_equal(gradient, saved_gradient)

    @pytest.mark.corenet
    def test_pickle_and_deepcopy(self, Conv):
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

    @pytest.mark.corenet
    def test_repr_and_registered(self, Conv):
        assert repr(Conv((1, 1), (3, 5, 5), 8)) == "Conv((1, 1), (3, 5, 5), 8)"
        assert repr(Conv(2, (3, 5, 5), 8)) == "Conv((2, 2), (3, 5, 5), 8)"
        assert repr(Conv([2], (3, 5), 8)) == "Conv((2,), (3, 5), 8)"
        assert corenet.get_registry().layers["Conv"] is Conv

    @pytest.mark.corenet
    def test_wrong_rank_and_channels(self, Conv):
        conv = Conv(1, (3, 3, 3), 2)
        with pytest.raises(ShapeError, match=r"Conv\(.*4-D.*got a 3-D"):
            conv.forward(np.zeros((2, 3, 5)))
        with pytest.raises(ShapeError, match=r"expects 3 input channels but got 4"):
            conv.forward(np.zeros((2, 4, 5, 5)))
        with pytest.raises(ShapeError, match=r"3-D"):
            Conv(1, (3, 3), 2).forward(np.zeros((2, 3, 5, 5)))

    @pytest.mark.corenet
    def test_backward_errors(self, Conv):
        conv = Conv(1, (1, 3, 3), 2)
        with pytest.raises(ShapeError, match="before forward"):
            conv.backward(np.zeros((1, 2, 4, 4)))
        conv.forward(np.zeros((1, 1, 4, 4)))
        with pytest.raises(ShapeError, match=r"\(1, 2, 4, 4\)"):
            conv.backward(np.zeros((1, 2, 4, 5)))

    @pytest.mark.corenet
    def test_assigned_parameters_of_wrong_shape(self, Conv):
        conv = Conv(1, (1, 3, 3), 2)
        conv.weights = np.zeros((2, 1, 3, 2))
        with pytest.raises(ShapeError, match=r"weights must have shape \(2, 1, 3, 3\)"):
            conv.forward(np.zeros((1, 1, 4, 4)))
        conv.weights = np.zeros((2, 1, 3, 3))
        conv.bias = np.zeros(3)
        with pytest.raises(ShapeError, match="bias must have 2 entries"):
            conv.forward(np.zeros((1, 1, 4, 4)))

    @pytest.mark.corenet
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
    def test_bad_constructor_arguments(self, Conv, args, name):
        with pytest.raises(ValueError, match=name):
            Conv(*args)
