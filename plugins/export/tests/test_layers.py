"""Every exportable layer, alone or in small stacks, against corenet: Conv 1-D/2-D with strides and even
kernels (corenet's asymmetric 'same' padding), 1x1 kernels, overlapping pooling, BatchNormalization on
vectors, signals and images, TanH, Sigmoid, RNN and LSTM with random weights in every gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from corenet_export import ExportError, export_onnx, export_torch
from corenet_export.verify import corenet_outputs, run_onnx, run_torch

import corenet
from corenet.network import NeuralNetwork

registry = corenet.get_registry()


def layer(name: str, *args):
    return registry.layers[name](*args)


def batch_norm(channels: int):
    """A BatchNormalization with random γ, β and moving statistics (as after training)."""
    norm = layer("BatchNormalization", channels)
    norm.weights = np.random.uniform(0.5, 2.0, channels)
    norm.bias = np.random.uniform(-1.0, 1.0, channels)
    norm.moving_mean = np.random.uniform(-1.0, 1.0, channels)
    norm.moving_variance = np.random.uniform(0.1, 3.0, channels)
    return norm


def network(*layers) -> NeuralNetwork:
    net = NeuralNetwork(None, None, None)
    net.layers.extend(layers)  # as built: append_layer would initialize them with the network's initializers
    return net


def stacks() -> dict[str, tuple]:
    """name -> (layers factory, input shape)."""
    return {
        "conv2d-3x3": (lambda: [layer("Conv", (1, 1), (2, 3, 3), 4)], (3, 2, 6, 7)),
        "conv2d-4x4-even": (lambda: [layer("Conv", (1, 1), (2, 4, 4), 3)], (3, 2, 6, 7)),
        "conv2d-2x3-strided": (lambda: [layer("Conv", (2, 3), (1, 2, 3), 2)], (2, 1, 7, 8)),
        "conv2d-1x1": (lambda: [layer("Conv", 1, (3, 1, 1), 2)], (2, 3, 4, 5)),
        "conv1d-4-stride2-bn": (lambda: [layer("Conv", (2,), (2, 4), 3), batch_norm(3), layer("ReLU")], (4, 2, 9)),
        "conv1d-3": (lambda: [layer("Conv", 1, (1, 3), 2), layer("TanH")], (3, 1, 10)),
        "pooling-overlapping": (lambda: [layer("Pooling", (2, 2), (3, 3)), layer("Pooling", (1, 2), (2, 3))],
                                (2, 3, 9, 11)),
        "fc-bn-tanh-sigmoid": (lambda: [layer("FullyConnected", 5, 6), batch_norm(6), layer("TanH"),
                                        layer("FullyConnected", 6, 3), layer("Sigmoid")], (7, 5)),
        "conv-bn-pool-dropout-softmax": (lambda: [layer("Conv", (1, 1), (1, 3, 3), 4), batch_norm(4),
                                                  layer("ReLU"), layer("Pooling", (2, 2), (2, 2)),
                                                  layer("Flatten"), layer("Dropout", 0.5),
                                                  layer("FullyConnected", 64, 5), layer("SoftMax")], (6, 1, 8, 8)),
        "rnn": (lambda: [layer("RNN", 3, 5, 2)], (12, 3)),
        "lstm": (lambda: [layer("LSTM", 3, 5, 2)], (12, 3)),
    }


STACKS = stacks()


def worst_relative(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - e| over max |e|: outputs of single layers pass through zero, so element-wise ratios would not do."""
    return float(np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max())


@pytest.fixture(params=sorted(STACKS))
def stack(request):
    np.random.seed(7)
    make, shape = STACKS[request.param]
    net = network(*make())
    x = np.random.uniform(-1.0, 1.0, shape)
    return request.param, net, x


def test_pytorch_matches_each_layer(stack, tmp_path: Path):
    pytest.importorskip("torch")
    name, net, x = stack
    expected = corenet_outputs(net, [x])[0]
    result = export_torch(net, tmp_path / "stack.pt")
    actual = run_torch(result.weights, result.module, result.class_name, [x])[0]
    assert actual.shape == expected.shape
    assert worst_relative(actual, expected) < 1e-12, name


def test_onnxruntime_matches_each_layer(stack, tmp_path: Path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    name, net, x = stack
    expected = corenet_outputs(net, [x])[0]
    actual = run_onnx(export_onnx(net, tmp_path / "stack.onnx").path, [x])[0]
    assert actual.shape == expected.shape
    assert worst_relative(actual, expected) < 1e-5, name


def test_even_kernels_pad_more_before_than_after(tmp_path: Path):
    """corenet pads k // 2 before and (k - 1) // 2 after: an explicit F.pad in PyTorch, asymmetric ONNX pads."""
    pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    net = network(layer("Conv", (1, 1), (1, 4, 3), 2))
    source = export_torch(net, tmp_path / "even.pt").module.read_text()
    assert "x = F.pad(x, (1, 1, 2, 1))" in source  # x axis: 3 -> 1, 1; y axis: 4 -> 2 before, 1 after
    assert "nn.Conv2d(1, 2, kernel_size=(4, 3), stride=(1, 1), dtype=DTYPE)" in source
    model = onnx.load(str(export_onnx(net, tmp_path / "even.onnx").path))
    (conv,) = [node for node in model.graph.node if node.op_type == "Conv"]
    pads = next(a for a in conv.attribute if a.name == "pads").ints
    assert list(pads) == [2, 1, 1, 1]  # (y, x) before, then (y, x) after


def test_odd_kernels_pad_inside_the_convolution(tmp_path: Path):
    pytest.importorskip("torch")
    source = export_torch(network(layer("Conv", (1, 1), (1, 5, 5), 2)), tmp_path / "odd.pt").module.read_text()
    assert "padding=(2, 2)" in source and "F.pad" not in source


def test_lstm_gates_reach_onnx_in_its_order(tmp_path: Path):
    """corenet's (i, f, g, o) column blocks become ONNX's (i, o, f, c) rows of W, R and B."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    lstm = layer("LSTM", 2, 3, 1)
    blocks = np.arange(4).repeat(3).astype(np.float64)  # every column holds its gate's number
    lstm.weights = np.tile(blocks, (2 + 3 + 1, 1))
    model = onnx.load(str(export_onnx(network(lstm), tmp_path / "lstm.onnx").path))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert weights["layer0.W"].shape == (1, 12, 2)
    np.testing.assert_array_equal(weights["layer0.W"][0, :, 0], np.repeat([0, 3, 1, 2], 3))
    np.testing.assert_array_equal(weights["layer0.R"][0, :, 0], np.repeat([0, 3, 1, 2], 3))
    np.testing.assert_array_equal(weights["layer0.B"][0, :12], np.repeat([0, 3, 1, 2], 3))
    np.testing.assert_array_equal(weights["layer0.B"][0, 12:], 0)


def test_a_dense_layer_after_images_asks_for_flatten():
    from corenet_export.plan import plan

    with pytest.raises(ExportError, match=r"layer 1 \(FullyConnected\(4, 2\)\) needs a rank-2 input.*Flatten"):
        plan(network(layer("Conv", 1, (1, 3, 3), 1), layer("FullyConnected", 4, 2)))


def test_batchnorm_first_needs_the_input_rank(tmp_path: Path):
    pytest.importorskip("torch")
    net = network(batch_norm(2), layer("ReLU"))
    with pytest.raises(ExportError, match=r"layer 0 \(BatchNormalization\(2\)\).*--input-rank"):
        export_torch(net, tmp_path / "bn.pt")
    x = np.random.uniform(-1, 1, (3, 2, 4, 4))
    result = export_torch(net, tmp_path / "bn.pt", input_rank=4)
    assert "nn.BatchNorm2d(2, eps=1e-11, momentum=0.2" in result.module.read_text()
    actual = run_torch(result.weights, result.module, result.class_name, [x])[0]
    assert worst_relative(actual, corenet_outputs(net, [x])[0]) < 1e-12


def test_batchnorm_keeps_corenets_epsilon(tmp_path: Path):
    """A channel with zero moving variance is scaled by 1 / sqrt(1e-11): only corenet's epsilon gives that."""
    pytest.importorskip("torch")
    norm = batch_norm(2)
    norm.moving_variance = np.array([0.0, 1.0])
    net = network(layer("FullyConnected", 3, 2), norm)
    x = np.random.uniform(-1, 1, (5, 3))
    result = export_torch(net, tmp_path / "eps.pt")
    actual = run_torch(result.weights, result.module, result.class_name, [x])[0]
    expected = corenet_outputs(net, [x])[0]
    assert np.abs(expected[:, 0]).max() > 1e4  # the epsilon matters here
    np.testing.assert_allclose(actual, expected, rtol=1e-12)
