"""Issue 13, parts 3, 4 and 6: bounded inputs, one-line errors for user mistakes, no silent wrong results.

- YAML configs: alias bombs, deep nesting, huge integers and duplicate keys are refused in
  well under a second with a short message naming the file, line and key; config files must
  be regular files.
- IDX/gzip files: sizes checked against the header before allocating, a gzip bomb refused
  without inflating it, FIFOs and devices refused unread.
- The command line: seeds, epochs, huge numbers, memory-hungry layers and third-party layers
  that raise give one-line errors (``--debug`` shows the traceback).
- Networks: CrossEntropyLoss after a last layer that outputs no probabilities is refused,
  ``np.matrix`` inputs compute like arrays, float32 parameters stay float32 whatever the
  batch's dtype, and a batch larger than the training set is refused in configs.
"""

from __future__ import annotations

import copy
import gzip
import os
import struct
import textwrap
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import corenet
from corenet import resources
from corenet.base import BaseLayer, TrainableLayer
from corenet.cli import app
from corenet.config import ConfigError, build_data, load_config, parse_yaml, read_config_text
from corenet.data.mnist import IDXError, MNISTData, read_idx
from corenet.errors import NetworkError, ShapeError
from corenet.initializers import Constant, He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.conv import Conv
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Adam, Sgd, SgdWithMomentum
from corenet.plugins import get_registry
from corenet.testing import FixedBatch

runner = CliRunner()


def corenet_cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def config_error(text: str) -> tuple[str, float]:
    """The message ``parse_yaml`` gives for ``text`` and the seconds it took."""
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "bad.yaml")
    return str(info.value), time.perf_counter() - started


# -- YAML ----------------------------------------------------------------------------------------------
def billion_laughs() -> str:
    """Nine levels of nine aliases: 9**9 strings once expanded, about 1 KB of text."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
        previous = name
    lines.append("data: *i")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_file_fails_fast_with_a_short_message():
    text = billion_laughs()
    assert len(text) < 1100
    message, seconds = config_error(text)
    assert seconds < 0.5
    assert message.startswith("bad.yaml: line ") and "aliases expand to more than 100000 values" in message
    assert "lol" not in message and "\n" not in message and len(message) < 200


def test_an_alias_that_contains_itself_is_refused():
    for text in ("a: &x [1, *x]\n", "a: &x {b: {c: *x}}\n"):
        message, _ = config_error(text)
        assert "bad.yaml: line 1: a: an alias refers to the value that contains it" in message


def test_anchors_and_merge_keys_within_the_limits_still_work():
    data = parse_yaml("base: &adam {name: Adam, args: {learning_rate: 1.0e-3}}\n"
                      "first: *adam\nsecond: {<<: *adam, name: Sgd}\n", "ok.yaml")
    assert data["first"] == {"name": "Adam", "args": {"learning_rate": 1e-3}}
    assert data["second"] == {"name": "Sgd", "args": {"learning_rate": 1e-3}}


@pytest.mark.parametrize("text, where", [
    ("a: " + "[" * 5000 + "]" * 5000, "bad.yaml: line 1: a[0][0]"),
    ("a: " + "{b: " * 200 + "1" + "}" * 200, "bad.yaml: line 1: a.b.b"),
    ("".join(f"{'  ' * depth}k:\n" for depth in range(200)) + "  " * 200 + "k: 1\n", "bad.yaml: line 32: k.k.k"),
], ids=["lists", "flow-mappings", "block-mappings"])
def test_deep_nesting_is_refused_before_the_stack_runs_out(text, where):
    message, seconds = config_error(text)
    assert message.startswith(where) and message.endswith("nested more than 32 levels deep")
    assert seconds < 2.0 and len(message) < 300


def test_nesting_through_aliases_counts_too():
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]" for i in range(1, 5)]
    message, _ = config_error("\n".join(lines) + "\n")
    assert message.startswith("bad.yaml: line 5: a4[0][0]")
    assert message.endswith(": its aliases nest values more than 32 levels deep")


def test_a_5000_digit_integer_is_refused_by_its_length_naming_file_and_key():
    message, seconds = config_error("training:\n  iterations: " + "7" * 5000 + "\n")
    assert message == ("bad.yaml: line 2: training.iterations: an integer of 5000 digits; integers must lie "
                       "within ±2**63 (about ±9.2e18)")
    assert seconds < 0.5


def test_integers_beyond_64_bits_are_refused_and_the_limit_itself_is_accepted():
    assert parse_yaml(f"seed: {2**63 - 1}\nother: -{2**63}\n", "ok.yaml")["seed"] == 2**63 - 1
    message, _ = config_error(f"data:\n  args: {{split: {2**63}}}\n")
    assert message == "bad.yaml: line 2: data.args.split: an integer of 19 digits, outside ±2**63 (about ±9.2e18)"
    message, _ = config_error("a: 0x" + "f" * 200 + "\n")
    assert "a: an integer of 200 digits" in message


def test_duplicate_keys_name_the_key_and_both_lines():
    message, _ = config_error("data: digits\nnetwork:\n  loss: CrossEntropyLoss\n  layers: [ReLU]\n"
                              "  loss: L2Loss\n")
    assert message == ("bad.yaml: line 5: network: duplicate key 'loss' (first on line 3, again on line 5); "
                       "give each key once")
    message, _ = config_error("a: {b: 1, b: 2}\n")
    assert "line 1: a: duplicate key 'b' (first on line 1, again on line 1)" in message


def test_config_files_must_be_regular_and_small(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"config.yaml: is a FIFO \(named pipe\), not a config file"):
        read_config_text(fifo)  # stat first, never opened: no hang
    with pytest.raises(ConfigError, match="/dev/zero: is a character device, not a config file"):
        read_config_text("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 120_000)
    with pytest.raises(ConfigError, match=r"big.yaml: is 1200000 bytes, more than the 1048576 bytes a config"):
        read_config_text(big)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"seed: \xff\xfe\n")
    with pytest.raises(ConfigError, match="binary.yaml: cannot read the config: not UTF-8 text"):
        read_config_text(binary)


# -- IDX and gzip ----------------------------------------------------------------------------------------
def idx_header(shape, code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def gzip_bomb(header: bytes, megabytes: int) -> bytes:
    """``header`` followed by ``megabytes`` MiB of zeros, gzip-compressed (about 1 KB per MiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    parts = [compressor.compress(header)] + [compressor.compress(zeros) for _ in range(megabytes)]
    return b"".join(parts + [compressor.flush()])


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip_bomb(idx_header((10,)), 256))  # 256 MiB of zeros behind a 10-label header
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match="IDX size mismatch: the gzip stream inflates to more than the 18 bytes"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20  # the 256 MiB were never inflated


def test_a_header_declaring_more_than_the_limit_is_refused_before_inflating(tmp_path):
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(idx_header((60000, 60000, 60000))))
    with pytest.raises(IDXError, match=r"declares shape \(60000, 60000, 60000\) of uint8, 216000000000000 bytes"):
        read_idx(path)


def test_gzip_members_in_a_row_and_exact_sizes_still_read(tmp_path):
    values = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_header(values.shape) + values.tobytes()
    path = tmp_path / "two-members"
    path.write_bytes(gzip.compress(raw[:7]) + gzip.compress(raw[7:]))
    np.testing.assert_array_equal(read_idx(path), values)
    path.write_bytes(gzip.compress(raw) + b"garbage!")
    with pytest.raises(IDXError, match="8 bytes that are not gzip follow the gzip stream"):
        read_idx(path)


def test_idx_reading_refuses_fifos_and_devices(tmp_path):
    fifo = tmp_path / "t10k-images-idx3-ubyte"
    os.mkfifo(fifo)
    with pytest.raises(IDXError, match=r"is a FIFO \(named pipe\), not a MNIST IDX file"):
        read_idx(fifo)
    with pytest.raises(IDXError, match="/dev/zero: is a character device"):
        read_idx("/dev/zero")
    (tmp_path / "t10k-labels-idx1-ubyte").symlink_to("/dev/zero")
    with pytest.raises(IDXError, match="t10k-images-idx3-ubyte: is a FIFO"):  # by name, not "missing"
        MNISTData(4, tmp_path)


# -- the command line ------------------------------------------------------------------------------------
@pytest.fixture
def no_debug(monkeypatch):
    """`corenet --debug` sets CORENET_DEBUG for the process: start with it off ("0") and let monkeypatch
    restore the previous state (unset) after the test."""
    monkeypatch.setenv("CORENET_DEBUG", "0")


@pytest.mark.parametrize("args, expected", [
    (("--seed", 2**32), "digits.yaml): seed: must be an integer in [0, 4294967295] (NumPy seeds are 32-bit), "
                        "got 4294967296"),
    (("--epochs", "inf"), "training.epochs: must be a finite number > 0 and <= 1e+09, got inf"),
    (("--epochs", "nan"), "training.epochs: must be a finite number > 0 and <= 1e+09, got nan"),
    (("--epochs", "-2"), "training.epochs: must be a finite number > 0 and <= 1e+09, got -2.0"),
    (("--iterations", 10**15), "training.iterations: must be an integer in [1, 1000000000000], got "
                               "1000000000000000"),
    (("--batch-size", 5000), "training.batch_size: 5000 is larger than the training set of digits (1198 "
                             "samples), so every batch would repeat samples; use at most 1198"),
], ids=["seed-2**32", "epochs-inf", "epochs-nan", "epochs-negative", "iterations-huge", "batch-larger-than-data"])
def test_bad_numbers_on_the_command_line_give_one_line_errors(args, expected, no_debug):
    result = corenet_cli("train", "-q", "--no-checkpoint", *args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1


@pytest.mark.parametrize("option", ["--seed", "--iterations", "--batch-size"])
def test_a_5000_digit_number_on_the_command_line_is_a_usage_error(option, no_debug):
    result = corenet_cli("train", "-q", "--no-checkpoint", option, "9" * 5000)
    assert result.exit_code == 2
    assert "Invalid value for" in result.output and "Traceback" not in result.output


def write_config(tmp_path, layers: str, training: str = "{iterations: 2, batch_size: 8}", data: str = "digits",
                 name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(f"""\
        data: {{name: {data}}}
        network:
          optimizer: {{name: Adam, args: {{learning_rate: 1.0e-3}}}}
          layers:
        """) + textwrap.indent(textwrap.dedent(layers), "    ") + f"training: {training}\n")
    return path


def test_yaml_limits_reach_the_command_line(tmp_path, no_debug):
    path = tmp_path / "huge.yaml"
    path.write_text("seed: " + "1" * 5000 + "\n")
    result = corenet_cli("train", path, "-q")
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: line 1: seed: an integer of 5000 digits; integers must lie within " \
                            f"±2**63 (about ±9.2e18)\n"
    path.write_text("data: " + "[" * 3000 + "]" * 3000 + "\n")
    result = corenet_cli("train", path, "-q")
    assert result.exit_code == 2 and "data[0][0]" in result.stderr and "nested more than 32 levels" in result.stderr
    assert "Traceback" not in result.output


def test_a_layer_too_large_for_memory_is_refused_before_allocating(tmp_path, no_debug):
    path = write_config(tmp_path, """\
        - Flatten
        - {name: FullyConnected, args: {input_size: 64, output_size: 1000000000000}}
        - SoftMax
    """)
    started = time.perf_counter()
    result = corenet_cli("train", path, "-q", "--no-checkpoint")
    assert time.perf_counter() - started < 30
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}: network.layers[1].args.output_size: FullyConnected: "
                                    f"output_size: 65 x 1000000000000 weights of float64 would take 472.9 TiB; "
                                    f"one layer's parameters may take at most ")


def test_a_plugin_layer_numpy_cannot_allocate_is_reported_with_numpys_size(tmp_path, no_debug):
    if "RNN" not in get_registry().layers:
        pytest.skip("corenet-recurrent is not installed")
    path = write_config(tmp_path, """\
        - Flatten
        - {name: RNN, args: {input_size: 64, hidden_size: 100000000, output_size: 10}}
        - SoftMax
    """)  # 71 PiB: far beyond any address space, so the allocation fails at once
    result = corenet_cli("train", path, "-q", "--no-checkpoint")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}: network.layers[1] (RNN): MemoryError: Unable to allocate 71.1 PiB")


def test_parameter_memory_is_checked_from_the_arguments(monkeypatch):
    monkeypatch.setattr(resources, "physical_memory", lambda: 4 << 20)  # a 4 MiB machine: 1 MiB per layer
    FullyConnected(100, 1000)  # 101 * 1000 * 8 bytes = 789 KiB fits
    with pytest.raises(resources.ResourceError, match=r"FullyConnected: output_size: 101 x 2000 weights of float64 "
                                                      r"would take 1.5 MiB; one layer's parameters may take at most "
                                                      r"1.0 MiB, a quarter of this machine's 4.0 MiB"):
        FullyConnected(100, 2000)
    with pytest.raises(resources.ResourceError, match="FullyConnected: input_size: 5001 x 100 weights"):
        FullyConnected(5000, 100)
    with pytest.raises(resources.ResourceError, match=r"Conv: num_kernels: 20000 x 1 x 3 x 3 weights"):
        Conv(1, (1, 3, 3), 20000)
    with pytest.raises(resources.ResourceError, match=r"Conv: convolution_shape: 2 x 1000 x 11 x 11 weights"):
        Conv(1, (1000, 11, 11), 2)
    corenet.set_default_dtype(np.float32)
    try:
        FullyConnected(100, 2000)  # 790 KiB in float32
    finally:
        corenet.set_default_dtype(np.float64)
    assert resources.format_bytes(512) == "512 bytes" and resources.format_bytes(3 << 40) == "3.0 TiB"


def test_a_5000_digit_integer_in_python_is_described_not_printed():
    with pytest.raises(ValueError, match=r"^input_size must be a positive integer below 2\*\*63, got an integer of "
                                         r"about 5001 digits$"):
        FullyConnected(10**5000, 3)
    with pytest.raises(ValueError, match=r"stride_shape entries must be positive integers below 2\*\*63, got "
                                         r"\(1, an integer of about 5001 digits\)"):
        Conv((1, 10**5000), (1, 3, 3), 2)
    with pytest.raises(ValueError, match="learning_rate must be a finite real number > 0, got an integer of about"):
        Sgd(10**5000)


# a third-party layer failing in its own way, wherever it is asked to
class Exploding(TrainableLayer):
    parameter_names = ()

    def __init__(self, where: str = "forward") -> None:
        super().__init__()
        if where == "build":
            raise RuntimeError("boom while building")
        self.where = where

    def initialize(self, weights_initializer, bias_initializer) -> None:
        if self.where == "initialize":
            raise AttributeError("boom in initialize")

    def forward(self, input_tensor):
        if self.where == "forward":
            raise RuntimeError("boom in forward")
        return input_tensor

    def backward(self, error_tensor):
        if self.where == "backward":
            raise KeyError("boom in backward")
        return error_tensor


EXPLODING_LAYERS = """\
    - Flatten
    - {{name: Exploding, args: {{where: {where}}}}}
    - {{name: FullyConnected, args: {{input_size: 64, output_size: 10}}}}
    - SoftMax
"""


@pytest.mark.parametrize("where, expected", [
    ("build", "network.layers[1] (Exploding): RuntimeError: boom while building"),
    ("initialize", "network.layers[1] (Exploding): AttributeError: boom in initialize"),
    ("forward", "network.layers[1] (Exploding): RuntimeError: boom in forward"),
    ("backward", "network.layers[1] (Exploding): KeyError: 'boom in backward'"),
])
def test_a_third_party_layer_that_raises_is_named_by_index_and_class(tmp_path, monkeypatch, no_debug, where,
                                                                      expected):
    monkeypatch.setitem(get_registry().layers, "Exploding", Exploding)
    path = write_config(tmp_path, EXPLODING_LAYERS.format(where=where))
    result = corenet_cli("train", path, "-q", "--no-checkpoint")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {path}: {expected}\n"
    debug = corenet_cli("--debug", "train", path, "-q", "--no-checkpoint")
    assert debug.exit_code == 2
    assert "Traceback (most recent call last)" in debug.stderr and "boom" in debug.stderr
    assert f"ConfigError: {path}: {expected}" in debug.stderr  # the chain ends with the one-line message


def test_the_layer_annotation_keeps_the_exception_type_for_api_users():
    net = NeuralNetwork(Sgd(0.1), He(), Constant(0.1))
    net.append_layer(ReLU())
    net.append_layer(Exploding("forward"))
    with pytest.raises(RuntimeError, match="boom in forward") as info:
        net.test(np.ones((2, 3)))
    assert info.value.layer_index == 1 and info.value.layer_class == "Exploding"


def test_an_unexpected_error_outside_the_layers_is_one_line_without_debug(tmp_path, monkeypatch, no_debug):
    class BrokenData(FixedBatch):
        def __init__(self, batch_size: int) -> None:
            super().__init__(np.ones((4, 4)), np.eye(4))

        def next(self):
            raise OSError("the disk went away")

    monkeypatch.setitem(get_registry().datasets, "broken", BrokenData)
    path = write_config(tmp_path, "- {name: FullyConnected, args: {input_size: 4, output_size: 4}}\n- SoftMax\n",
                        data="broken", training="{iterations: 2, batch_size: 4}")
    result = corenet_cli("train", path, "-q", "--no-checkpoint")
    assert result.exit_code == 1
    assert result.stderr == "error: OSError: the disk went away (run `corenet --debug ...` to see the traceback)\n"


def test_unexpected_errors_name_the_layer_they_came_from(capsys, no_debug):
    from corenet.commands.common import unexpected

    net = NeuralNetwork(Sgd(0.1), He(), Constant(0.1))
    net.append_layer(Exploding("forward"))
    try:
        net.test(np.ones((2, 3)))
    except RuntimeError as exc:
        code = unexpected(exc).exit_code
    assert code == 1
    assert capsys.readouterr().err == ("error: layer 0 (Exploding): RuntimeError: boom in forward (run `corenet "
                                       "--debug ...` to see the traceback)\n")


# -- CrossEntropyLoss needs probabilities ----------------------------------------------------------------
def network(*layers, loss=None) -> NeuralNetwork:
    np.random.seed(0)
    net = NeuralNetwork(Sgd(0.1), He(), Constant(0.1))
    for layer in layers:
        net.append_layer(layer)
    labels = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    net.data_layer = FixedBatch(np.random.standard_normal((6, 4)), labels)
    net.loss_layer = loss or CrossEntropyLoss()
    return net


def test_relu_before_cross_entropy_is_refused_before_any_update():
    net = network(FullyConnected(4, 3), ReLU())
    weights = net.layers[0].weights.copy()
    with pytest.raises(NetworkError, match=r"layer 1 \(ReLU\): CrossEntropyLoss takes probabilities .* the last "
                                           r"layer is ReLU and its rows sum to .* end the network with a SoftMax "
                                           r"layer"):
        net.train(3)
    np.testing.assert_array_equal(net.layers[0].weights, weights)
    assert net.loss == []


def test_cross_entropy_itself_keeps_accepting_unnormalised_inputs():
    prediction = np.abs(np.random.default_rng(0).random((5, 4))) + 0.1  # the course's test inputs
    labels = np.eye(4)[[0, 1, 2, 3, 0]]
    loss = CrossEntropyLoss()
    expected = -np.sum(labels * np.log(prediction + np.finfo(float).eps))
    assert np.isclose(loss.forward(prediction, labels), expected)
    np.testing.assert_allclose(loss.backward(labels), -labels / prediction)


class SoftMaxOfMyOwn(BaseLayer):
    """A learner's softmax under another name: passes by what it outputs."""

    def forward(self, x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.y = e / e.sum(axis=1, keepdims=True)
        return self.y

    def backward(self, error):
        return self.y * (error - np.sum(error * self.y, axis=1, keepdims=True))


def test_a_learners_own_softmax_passes_by_name_or_by_behaviour():
    own = type("SoftMax", (SoftMaxOfMyOwn,), {})  # a class of the learner's own named SoftMax
    for last in (own(), SoftMaxOfMyOwn(), SoftMax()):
        net = network(FullyConnected(4, 3), last)
        net.train(2)
        assert len(net.loss) == 2


def test_a_learners_own_cross_entropy_class_is_checked_by_name():
    class CrossEntropyLoss:  # noqa: N801 - the learner's class of the same name
        def forward(self, prediction, label):
            self.prediction = prediction
            return float(-np.sum(label * np.log(prediction + 1e-12)))

        def backward(self, label):
            return -label / (self.prediction + 1e-12)

    with pytest.raises(NetworkError, match="CrossEntropyLoss takes probabilities"):
        network(FullyConnected(4, 3), ReLU(), loss=CrossEntropyLoss()).train(1)


def test_a_config_ending_in_relu_is_refused_with_the_layer_key(tmp_path, no_debug):
    path = write_config(tmp_path, """\
        - Flatten
        - {name: FullyConnected, args: {input_size: 64, output_size: 10}}
        - ReLU
    """)
    result = corenet_cli("train", path, "-q", "--no-checkpoint")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: network.layers[2] (ReLU): CrossEntropyLoss takes probabilities")
    assert "end the network with a SoftMax layer" in result.stderr


# -- np.matrix, masked arrays --------------------------------------------------------------------------
MATRIX_LAYERS = {
    "FullyConnected": (4, 3), "ReLU": (), "SoftMax": (), "Flatten": (), "BatchNormalization": (4,),
    "Dropout": (0.5,), "TanH": (), "Sigmoid": (), "RNN": (4, 5, 3), "LSTM": (4, 5, 3),
}


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix itself is discouraged
@pytest.mark.parametrize("name", sorted(MATRIX_LAYERS))
def test_np_matrix_inputs_compute_like_arrays(name):
    layers = get_registry().layers
    if name not in layers:
        pytest.skip(f"no installed plugin provides {name}")
    np.random.seed(1)
    layer = layers[name](*MATRIX_LAYERS[name])
    twin = copy.deepcopy(layer)
    x = np.random.standard_normal((6, 4))
    np.random.seed(2)
    output = layer.forward(np.asmatrix(x))
    np.random.seed(2)
    expected = twin.forward(x)
    assert type(output) is np.ndarray
    np.testing.assert_array_equal(output, expected)
    error = np.random.standard_normal(expected.shape)
    back = layer.backward(np.asmatrix(error))
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, twin.backward(error))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_np_matrix_into_the_loss_and_masked_arrays_are_refused():
    labels = np.eye(3)[[0, 1]]
    prediction = np.full((2, 3), 1 / 3)
    assert CrossEntropyLoss().forward(np.asmatrix(prediction), np.asmatrix(labels)) == pytest.approx(2 * np.log(3))
    masked = np.ma.masked_array(np.ones((2, 3)), mask=[[0, 1, 0], [0, 0, 0]])
    with pytest.raises(ShapeError, match=r"ReLU\(\): got a masked array with masked entries.*array.filled\(0\)"):
        ReLU().forward(masked)
    np.testing.assert_array_equal(ReLU().forward(np.ma.masked_array(np.ones((2, 3)))), np.ones((2, 3)))


# -- float32 parameters stay float32 -----------------------------------------------------------------------
DTYPE_LAYERS = {  # name: (arguments, input shape)
    "FullyConnected": ((4, 3), (5, 4)), "Conv": (((1, 1), (2, 3, 3), 3), (2, 2, 5, 5)),
    "BatchNormalization": ((4,), (6, 4)), "RNN": ((4, 5, 3), (6, 4)), "LSTM": ((4, 5, 3), (6, 4)),
}


@pytest.mark.parametrize("name", sorted(DTYPE_LAYERS))
def test_a_float64_batch_leaves_float32_parameters_float32(name):
    layers = get_registry().layers
    if name not in layers:
        pytest.skip(f"no installed plugin provides {name}")
    arguments, shape = DTYPE_LAYERS[name]
    corenet.set_default_dtype(np.float32)
    try:
        layer = layers[name](*arguments)
        layer.optimizer = get_registry().optimizers["Adam"](1e-2)
        if hasattr(layer, "initialize"):
            layer.initialize(He(), Constant(0.1))
    finally:
        corenet.set_default_dtype(np.float64)
    names = layer.parameter_names
    assert names and all(getattr(layer, n).dtype == np.float32 for n in names)
    before = {n: getattr(layer, n).copy() for n in names}
    rng = np.random.default_rng(0)
    for _ in range(2):
        output = layer.forward(rng.standard_normal(shape))
        assert output.dtype == np.float64  # computed in the batch's dtype
        layer.backward(rng.standard_normal(output.shape))
        for n in names:
            assert getattr(layer, n).dtype == np.float32, f"{name}.{n} became {getattr(layer, n).dtype}"
    assert any(not np.array_equal(before[n], getattr(layer, n)) for n in names)  # it did learn
    output = layer.forward(rng.standard_normal(shape).astype(np.float32))
    assert output.dtype == np.float32


@pytest.mark.parametrize("make", [lambda: Sgd(0.1), lambda: SgdWithMomentum(0.1, 0.9), lambda: Adam(1e-2)],
                         ids=["Sgd", "SgdWithMomentum", "Adam"])
def test_optimizers_return_the_weights_dtype(make):
    from corenet_reg_l1l2.constraints import L2_Regularizer

    for regularized in (False, True):
        optimizer = make()
        if regularized:
            optimizer.add_regularizer(L2_Regularizer(1e-3))
        weights = np.ones((3, 2), dtype=np.float32)
        for _ in range(3):
            weights = optimizer.calculate_update(weights, np.full((3, 2), 0.5))  # float64 gradients
            assert weights.dtype == np.float32
        state = [value for value in vars(optimizer).values() if isinstance(value, np.ndarray)]
        assert all(value.dtype == np.float32 for value in state), [value.dtype for value in state]
    assert Sgd(0.5).calculate_update(1.0, 2.0) == 0.0  # plain numbers stay numbers


def test_fully_connected_computes_in_its_inputs_dtype():
    layer = FullyConnected(4, 3)  # float64 weights
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    output = layer.forward(x)
    assert output.dtype == np.float32
    np.testing.assert_allclose(output, x.astype(np.float64) @ layer.weights[:-1] + layer.weights[-1], rtol=1e-5)
    assert layer.backward(np.ones((2, 3), dtype=np.float64)).dtype == np.float32
    assert layer.weights.dtype == np.float64 and layer.gradient_weights.dtype == np.float32


# -- batch size against the training set ------------------------------------------------------------------
def test_a_batch_larger_than_the_training_set_is_refused_in_a_config(tmp_path):
    path = write_config(tmp_path, "- {name: FullyConnected, args: {input_size: 4, output_size: 3}}\n- SoftMax\n",
                        data="iris", training="{iterations: 2, batch_size: 100}")
    with pytest.raises(ConfigError, match=r"net.yaml: training.batch_size: 100 is larger than the training set of "
                                          r"iris \(99 samples\)"):
        build_data(load_config(path))
    assert build_data(load_config(path, {"training.batch_size": 99})).train_size == 99


def test_debug_does_not_outlive_the_tests_that_use_it():
    assert os.environ.get("CORENET_DEBUG") in (None, "0")


def test_evaluate_reports_an_unexpected_failure_in_one_line(tmp_path, monkeypatch, no_debug):
    import corenet.evaluation

    checkpoint = tmp_path / "iris.ckpt"
    assert corenet_cli("train", "iris", "-n", 5, "-q", "-o", checkpoint).exit_code == 0

    def broken(*args, **kwargs):
        raise RuntimeError("a plugin layer failed")

    monkeypatch.setattr(corenet.evaluation, "evaluate", broken)
    result = corenet_cli("evaluate", checkpoint)
    assert result.exit_code == 1
    assert result.stderr == ("error: RuntimeError: a plugin layer failed (run `corenet --debug ...` to see the "
                             "traceback)\n")
