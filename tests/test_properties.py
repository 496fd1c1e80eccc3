"""Property-based tests (hypothesis): shape contracts and numerical gradients of Conv, Pooling,
Flatten, BatchNormalization and FullyConnected for random shapes, strides and kernels, and
save/load round trips of random networks built from the registry.

Every suite runs a bounded, derandomized number of examples (the whole file takes seconds).
"""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corenet
from corenet.data.synthetic import RandomData
from corenet.testing import check_gradients

TOLERANCE = 1e-5
SHAPES = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
GRADIENTS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIPS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

REGISTRY = corenet.get_registry()
Conv = REGISTRY.layers["Conv"]
Pooling = REGISTRY.layers["Pooling"]
Flatten = REGISTRY.layers["Flatten"]
FullyConnected = REGISTRY.layers["FullyConnected"]
BatchNormalization = REGISTRY.layers.get("BatchNormalization")
needs_batchnorm = pytest.mark.skipif(BatchNormalization is None, reason="corenet-batchnorm is not installed")

small = st.integers(1, 3)


def random_input(seed: int, shape) -> np.ndarray:
    return np.random.RandomState(seed).standard_normal(shape)


# -- Conv --------------------------------------------------------------------------------------
@st.composite
def conv_2d(draw, max_size: int = 7, max_batch: int = 3, max_kernels: int = 3):
    channels, kernels = draw(small), draw(st.integers(1, max_kernels))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    shape = (draw(st.integers(1, max_batch)), channels, draw(st.integers(1, max_size)),
             draw(st.integers(1, max_size)))
    return stride, (channels, *kernel), kernels, shape


@st.composite
def conv_1d(draw, max_size: int = 9):
    channels, kernels, kernel = draw(small), draw(small), draw(st.integers(1, 5))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3))))
    return stride, (channels, kernel), kernels, (draw(small), channels, draw(st.integers(1, max_size)))


def _correlate_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Reference 'same' cross-correlation of (c, y, x) with (c, m, n), k//2 zeros before each axis."""
    c, m, n = kernel.shape
    y, x = image.shape[1:]
    padded = np.zeros((c, y + m - 1, x + n - 1))
    padded[:, m // 2: m // 2 + y, n // 2: n // 2 + x] = image
    out = np.zeros((y, x))
    for i in range(m):
        for j in range(n):
            out += np.einsum("cyx,c->yx", padded[:, i: i + y, j: j + x], kernel[:, i, j])
    return out


@SHAPES
@given(conv_2d(), st.integers(0, 2**16))
def test_conv_2d_shape_contract_and_values(spec, seed):
    stride, convolution_shape, kernels, shape = spec
    layer = Conv(stride, convolution_shape, kernels)
    x = random_input(seed, shape)
    output = layer.forward(x)
    sy, sx = layer.stride_shape
    assert output.shape == (shape[0], kernels, math.ceil(shape[2] / sy), math.ceil(shape[3] / sx))
    for b in range(shape[0]):
        for k in range(kernels):
            expected = _correlate_same(x[b], layer.weights[k])[::sy, ::sx] + layer.bias[k]
            np.testing.assert_allclose(output[b, k], expected, rtol=1e-10, atol=1e-12)
    error = random_input(seed + 1, output.shape)
    assert layer.backward(error).shape == shape
    assert layer.gradient_weights.shape == layer.weights.shape == (kernels, *convolution_shape)
    assert layer.gradient_bias.shape == (kernels,)
    np.testing.assert_allclose(layer.gradient_bias, error.sum(axis=(0, 2, 3)), rtol=1e-12)


@SHAPES
@given(conv_1d(), st.integers(0, 2**16))
def test_conv_1d_shape_contract(spec, seed):
    stride, convolution_shape, kernels, shape = spec
    layer = Conv(stride, convolution_shape, kernels)
    x = random_input(seed, shape)
    output = layer.forward(x)
    assert output.shape == (shape[0], kernels, math.ceil(shape[2] / layer.stride_shape[0]))
    # a 1-D convolution is the 2-D one on (1, x) images with (1, m) kernels
    twin = Conv((1, layer.stride_shape[0]), (convolution_shape[0], 1, convolution_shape[1]), kernels)
    twin.weights, twin.bias = layer.weights[:, :, None, :], layer.bias
    np.testing.assert_allclose(output, twin.forward(x[:, :, None, :])[:, :, 0, :], rtol=1e-12, atol=1e-14)
    assert layer.backward(random_input(seed + 1, output.shape)).shape == shape


@GRADIENTS
@given(conv_2d(max_size=5, max_batch=2, max_kernels=2), st.integers(0, 2**16))
def test_conv_2d_gradients(spec, seed):
    stride, convolution_shape, kernels, shape = spec
    layer = Conv(stride, convolution_shape, kernels)
    assert set(check_gradients(layer, random_input(seed, shape), tolerance=TOLERANCE, label_seed=seed + 1)) == {
        "input", "weights", "bias"}


@GRADIENTS
@given(conv_1d(max_size=6), st.integers(0, 2**16))
def test_conv_1d_gradients(spec, seed):
    stride, convolution_shape, kernels, shape = spec
    layer = Conv(stride, convolution_shape, kernels)
    assert set(check_gradients(layer, random_input(seed, shape), tolerance=TOLERANCE, label_seed=seed + 1)) == {
        "input", "weights", "bias"}


# -- Pooling -----------------------------------------------------------------------------------
@st.composite
def pooling(draw, max_size: int = 8):
    window = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = (draw(small), draw(small), draw(st.integers(window[0], max_size)),
             draw(st.integers(window[1], max_size)))
    return stride, window, shape


def distinct_values(seed: int, shape) -> np.ndarray:
    """Values at least 0.1 apart, so no perturbation of 1e-5 changes which one is a window's maximum."""
    size = int(np.prod(shape))
    return np.random.RandomState(seed).permutation(size).reshape(shape) * 0.1 - size * 0.05


@SHAPES
@given(pooling(), st.integers(0, 2**16))
def test_pooling_shape_contract_and_routing(spec, seed):
    stride, window, shape = spec
    layer = Pooling(stride, window)
    x = distinct_values(seed, shape)
    output = layer.forward(x)
    out_y, out_x = (shape[2] - window[0]) // stride[0] + 1, (shape[3] - window[1]) // stride[1] + 1
    assert output.shape == (*shape[:2], out_y, out_x)
    for i in range(out_y):
        for j in range(out_x):
            top, left = i * stride[0], j * stride[1]
            patch = x[:, :, top: top + window[0], left: left + window[1]]
            np.testing.assert_array_equal(output[:, :, i, j], patch.max(axis=(2, 3)))
    error = random_input(seed, output.shape)
    gradient = layer.backward(error)
    assert gradient.shape == shape
    # every error arrives somewhere, and only at window maxima (input entries that are outputs)
    np.testing.assert_allclose(gradient.sum(axis=(2, 3)), error.sum(axis=(2, 3)), rtol=1e-12, atol=1e-12)
    assert np.all(np.isin(x[gradient != 0], output))


@GRADIENTS
@given(pooling(max_size=6), st.integers(0, 2**16))
def test_pooling_gradients(spec, seed):
    stride, window, shape = spec
    layer = Pooling(stride, window)
    x = distinct_values(seed, shape)
    check_gradients(layer, x, tolerance=TOLERANCE, label_seed=seed + 1)  # input only: Pooling has no weights


# -- Flatten -----------------------------------------------------------------------------------
@SHAPES
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(1, 3), st.integers(0, 2**16))
def test_flatten_round_trip(tail, batch, seed):
    shape = (batch, *tail)
    layer = Flatten()
    x = random_input(seed, shape)
    output = layer.forward(x)
    assert output.shape == (batch, int(np.prod(tail)))
    np.testing.assert_array_equal(output.reshape(shape), x)
    np.testing.assert_array_equal(layer.backward(output), x)
    check_gradients(layer, x, tolerance=TOLERANCE, label_seed=seed + 1)


# -- FullyConnected ----------------------------------------------------------------------------
@SHAPES
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**16))
def test_fully_connected_contract_and_gradients(batch, inputs, outputs, seed):
    layer = FullyConnected(inputs, outputs)
    x = random_input(seed, (batch, inputs))
    output = layer.forward(x)
    assert output.shape == (batch, outputs)
    np.testing.assert_allclose(output, x @ layer.weights[:-1] + layer.weights[-1], rtol=1e-12)
    assert layer.backward(random_input(seed + 1, output.shape)).shape == (batch, inputs)
    assert layer.gradient_weights.shape == (inputs + 1, outputs)
    assert set(check_gradients(layer, x, tolerance=TOLERANCE, label_seed=seed + 1)) == {"input", "weights"}


# -- BatchNormalization ------------------------------------------------------------------------
@st.composite
def batchnorm_input(draw):
    channels = draw(small)
    if draw(st.booleans()):
        shape = (draw(st.integers(3, 6)), channels)
    else:
        shape = (draw(st.integers(1, 3)), channels, draw(st.integers(1, 3)), draw(st.integers(2, 3)))
        if shape[0] * shape[2] * shape[3] < 3:
            shape = (3, *shape[1:])
    return shape


@needs_batchnorm
@SHAPES
@given(batchnorm_input(), st.integers(0, 2**16))
def test_batchnorm_normalizes_each_channel(shape, seed):
    layer = BatchNormalization(shape[1])
    layer.weights = 1.0 + np.arange(shape[1]) * 0.5
    layer.bias = np.arange(shape[1]) - 1.0
    x = random_input(seed, shape) * 3 + 2
    output = layer.forward(x)
    assert output.shape == shape and output.dtype == x.dtype
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    np.testing.assert_allclose(output.mean(axis=axes), layer.bias, atol=1e-9)
    np.testing.assert_allclose(output.std(axis=axes), layer.weights, rtol=1e-6)
    assert layer.backward(random_input(seed + 1, shape)).shape == shape
    assert layer.gradient_weights.shape == layer.gradient_bias.shape == (shape[1],)


@needs_batchnorm
@GRADIENTS
@given(batchnorm_input(), st.booleans(), st.integers(0, 2**16))
def test_batchnorm_gradients(shape, testing, seed):
    layer = BatchNormalization(shape[1])
    layer.weights = 1.0 + np.arange(shape[1]) * 0.5
    layer.bias = np.arange(shape[1]) * 0.1
    x = random_input(seed, shape)
    if testing:  # fixed moving statistics from one training batch
        layer.forward(random_input(seed + 2, shape))
        layer.testing_phase = True
    assert set(check_gradients(layer, x, tolerance=TOLERANCE, label_seed=seed + 1)) == {"input", "weights", "bias"}


# -- save/load round trips of networks built from the registry --------------------------------
ACTIVATIONS = [name for name in ("ReLU", "TanH", "Sigmoid") if name in REGISTRY.layers]
OPTIMIZERS = {"Sgd": (1e-2,), "SgdWithMomentum": (1e-2, 0.9), "Adam": (1e-3, 0.9, 0.999)}
INITIALIZERS = sorted(REGISTRY.initializers)
REGULARIZERS = sorted(REGISTRY.regularizers)


def layer(name: str, *args):
    return REGISTRY.layers[name](*args)


@st.composite
def image_network(draw):
    """Conv blocks (optional BatchNormalization, activation, Pooling, Dropout) -> Flatten -> FC stack."""
    channels, size = draw(small), draw(st.integers(4, 6))
    layers, shape = [], (channels, size, size)
    for _ in range(draw(st.integers(1, 2))):
        kernels, stride = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        kernel = (shape[0], draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        layers.append(layer("Conv", stride, kernel, kernels))
        shape = (kernels, math.ceil(shape[1] / stride), math.ceil(shape[2] / stride))
        if BatchNormalization is not None and draw(st.booleans()):
            layers.append(layer("BatchNormalization", kernels))
        layers.append(layer(draw(st.sampled_from(ACTIVATIONS))))
        if min(shape[1:]) >= 2 and draw(st.booleans()):
            layers.append(layer("Pooling", 2, 2))
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
        if "Dropout" in REGISTRY.layers and draw(st.booleans()):
            layers.append(layer("Dropout", draw(st.sampled_from([0.5, 0.8, 1.0]))))
    layers.append(layer("Flatten"))
    return (channels, size, size), layers, int(np.prod(shape))


@st.composite
def vector_network(draw, features: int):
    """FC -> [BatchNormalization] -> activation -> [Dropout] blocks."""
    layers = []
    for _ in range(draw(st.integers(0, 2))):
        width = draw(st.integers(2, 6))
        layers.append(layer("FullyConnected", features, width))
        if BatchNormalization is not None and draw(st.booleans()):
            layers.append(layer("BatchNormalization", width))
        layers.append(layer(draw(st.sampled_from(ACTIVATIONS))))
        if "Dropout" in REGISTRY.layers and draw(st.booleans()):
            layers.append(layer("Dropout", 0.7))
        features = width
    return layers, features


@st.composite
def networks(draw):
    """(input shape, network) for a random architecture, optimizer, regularizer and initializers."""
    classes = draw(st.integers(2, 4))
    kind = draw(st.sampled_from(["image", "vector", "sequence"]
                                if "RNN" in REGISTRY.layers else ["image", "vector"]))
    if kind == "image":
        input_shape, front, features = draw(image_network())
    elif kind == "vector":
        input_shape, front, features = (draw(st.integers(1, 5)),), [], None
        features = input_shape[0]
    else:
        input_shape, features = (draw(st.integers(1, 4)),), None
        cell = draw(st.sampled_from([name for name in ("RNN", "LSTM") if name in REGISTRY.layers]))
        recurrent = layer(cell, input_shape[0], draw(st.integers(1, 4)), draw(st.integers(2, 5)))
        recurrent.memorize = draw(st.booleans())
        front, features = [recurrent], recurrent.output_size
    middle, features = draw(vector_network(features))
    layers = [*front, *middle, layer("FullyConnected", features, classes), layer("SoftMax")]

    optimizer_name = draw(st.sampled_from(sorted(OPTIMIZERS)))
    optimizer = REGISTRY.optimizers[optimizer_name](*OPTIMIZERS[optimizer_name])
    if REGULARIZERS and draw(st.booleans()):
        optimizer.add_regularizer(REGISTRY.regularizers[draw(st.sampled_from(REGULARIZERS))](1e-3))
    weights, bias = (REGISTRY.initializers[draw(st.sampled_from(INITIALIZERS))]() for _ in range(2))
    net = corenet.NeuralNetwork(optimizer, weights, bias)
    for item in layers:
        net.append_layer(item)
    net.loss_layer = REGISTRY.losses["CrossEntropyLoss"]()
    return input_shape, classes, net


@ROUND_TRIPS
@given(networks(), st.integers(0, 2**16))
def test_save_load_round_trip(built, seed):
    input_shape, classes, net = built
    data = RandomData(input_shape, 4, classes)
    net.data_layer = data
    np.random.seed(seed)
    net.train(2)  # optimizer state, moving averages and carried state exist before saving
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("error")  # saving and loading warn about nothing
        path = Path(folder) / "net.pkl"
        corenet.save(path, net)
        other_data = RandomData(input_shape, 4, classes)
        loaded = corenet.load(path, other_data)
    assert loaded.data_layer is other_data and net.data_layer is data
    assert [repr(item) for item in loaded.layers] == [repr(item) for item in net.layers]
    assert loaded.loss == net.loss and loaded.phase == net.phase
    probe = np.random.RandomState(seed).random_sample((3, *input_shape))
    np.testing.assert_array_equal(loaded.test(probe), net.test(probe))
    np.random.seed(seed + 1)
    net.train(2)
    np.random.seed(seed + 1)
    loaded.train(2)
    assert loaded.loss == net.loss  # bit for bit: weights, optimizer copies and layer state survived
    np.testing.assert_array_equal(loaded.test(probe), net.test(probe))

