"""YAML configs: shipped examples, validation messages with key paths, building networks."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from corenet.config import (
    ConfigError,
    available_configs,
    build_data,
    build_network,
    iterations_for,
    load_config,
    parse_yaml,
)
from corenet.initializers import Constant, He
from corenet.layers.fully_connected import FullyConnected
from corenet.optimizers import Adam

GOOD = """
seed: 3
data: {name: iris}
network:
  optimizer:
    name: Adam
    args: {learning_rate: 5e-3, mu: 0.9, rho: 0.999}
    regularizer: {name: L2_Regularizer, args: {alpha: 1e-4}}
  weights_initializer: He
  bias_initializer: {name: Constant, args: {value: 0.1}}
  loss: CrossEntropyLoss
  layers:
    - {name: FullyConnected, args: {input_size: 4, output_size: 8}}
    - ReLU
    - {name: FullyConnected, args: {input_size: 8, output_size: 3}}
    - SoftMax
training: {iterations: 20, batch_size: 10}
"""

CONV = """
data: {name: digits}
network:
  optimizer: {name: Adam, args: {learning_rate: 1.0e-3}}
  layers:
    - {name: Conv, args: {stride_shape: [1, 1], convolution_shape: [1, 3, 3], num_kernels: 4}}
    - ReLU
    - Flatten
    - {name: FullyConnected, args: {input_size: 256, output_size: 10}}
    - SoftMax
training: {iterations: 5}
"""


def write(tmp_path, text: str, name: str = "config.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_for(tmp_path, text: str, old: str | None = None, new: str | None = None) -> str:
    if old is not None:
        assert old in text, old
        text = text.replace(old, new)
    with pytest.raises(ConfigError) as info:  # names when read, argument values when built
        config = load_config(write(tmp_path, text))
        build_data(config)
        build_network(config)
    return str(info.value)


# -- shipped configs -------------------------------------------------------------------------------
def test_shipped_configs_are_found_by_name_and_valid():
    configs = available_configs()
    assert {"digits", "iris", "lenet-mnist", "digits-regularized"} <= set(configs)
    digits = load_config("digits")
    core = {"Conv", "ReLU", "Pooling", "Flatten", "FullyConnected", "SoftMax"}
    assert {layer.name for layer in digits.layers} == core  # the default needs no plugin
    assert digits.regularizer is None and digits.optimizer.name == "Adam"
    assert load_config(None).name == "digits"  # the default
    regularized = load_config("digits-regularized")  # corenet-lenet's, with the plugins it depends on
    assert {"Conv", "BatchNormalization", "Dropout"} <= {layer.name for layer in regularized.layers}
    assert regularized.regularizer.name == "L2_Regularizer"
    assert load_config("iris").data.name == "iris"
    lenet = load_config("lenet-mnist", {"data.args.path": "/nowhere"})
    assert lenet.model.name == "LeNet" and lenet.data.name == "mnist"


def test_config_by_path(tmp_path):
    config = load_config(write(tmp_path, GOOD, "mine.yaml"))
    assert config.name == "mine" and config.seed == 3 and config.iterations == 20 and config.batch_size == 10


def test_unknown_config_name_lists_the_named_ones():
    with pytest.raises(ConfigError, match=r"'digts' \(did you mean 'digits'\?\); named configs: .*iris"):
        load_config("digts")


# -- the four mistakes the issue names ---------------------------------------------------------------
def test_unknown_layer_name(tmp_path):
    message = error_for(tmp_path, CONV, "name: Conv,", "name: Conv2D,")
    assert "network.layers[0].name: unknown layer 'Conv2D'" in message
    assert "did you mean 'Conv'" in message and "FullyConnected" in message and "Pooling" in message


def test_missing_required_argument(tmp_path):
    message = error_for(tmp_path, CONV, ", num_kernels: 4", "")
    assert "network.layers[0].args.num_kernels: missing required argument of " \
           "Conv(stride_shape, convolution_shape, num_kernels)" in message


def test_wrong_argument_type(tmp_path):
    message = error_for(tmp_path, CONV, "num_kernels: 4", "num_kernels: four")
    # the constructors' own checks, reported at the key path of the argument they name
    assert "network.layers[0].args.num_kernels: Conv: num_kernels must be a positive integer, got 'four'" \
        in message
    message = error_for(tmp_path, CONV, "input_size: 256", "input_size: 25.6")
    assert "network.layers[3].args.input_size: FullyConnected: input_size must be a positive integer, got 25.6" \
        in message
    message = error_for(tmp_path, GOOD, "learning_rate: 5e-3", "learning_rate: fast")
    assert "network.optimizer.args.learning_rate: Adam: learning_rate must be a finite real number > 0, " \
           "got 'fast'" in message
    message = error_for(tmp_path, GOOD, "output_size: 8}", "output_size: true}")
    assert "network.layers[0].args.output_size: FullyConnected: output_size must be a positive integer, got True" \
        in message
    message = error_for(tmp_path, GOOD, "rho: 0.999", "rho: 1.5")
    assert "network.optimizer.args.rho: Adam: rho must be a real number in [0, 1), got 1.5" in message


def test_unknown_top_level_key(tmp_path):
    message = error_for(tmp_path, GOOD, "network:", "netwrok:")
    assert "netwrok: unknown key 'netwrok' (did you mean 'network'?); valid keys: description, seed" \
        in message


# -- more mistakes -------------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, expected", [
    ("training: {iterations: 20,", "training: {iteratons: 20,",
     "training.iteratons: unknown key 'iteratons' (did you mean 'iterations'?); valid keys in training"),
    ("{input_size: 4, output_size: 8}", "{input_size: 4, outputs: 8}",
     "network.layers[0].args.outputs: FullyConnected has no argument 'outputs' "
     "(did you mean 'output_size'?); arguments: FullyConnected(input_size, output_size)"),
    ("name: Adam", "name: Adamm", "network.optimizer.name: unknown optimizer 'Adamm'; available: Adam, Sgd"),
    ("name: L2_Regularizer", "name: L3_Regularizer",
     "network.optimizer.regularizer.name: unknown regularizer 'L3_Regularizer'"),
    ("weights_initializer: He", "weights_initializer: Hee",
     "network.weights_initializer.name: unknown initializer"),
    ("loss: CrossEntropyLoss", "loss: {name: CrossEntropyLoss, args: {eps: 1}}",
     "network.loss.args.eps: CrossEntropyLoss has no argument 'eps'; CrossEntropyLoss takes no arguments"),
    ("data: {name: iris}", "data: {name: iris, args: {batch_size: 3}}",
     "data.args.batch_size: set by corenet (from training.batch_size)"),
    ("data: {name: iris}", "data: {name: cifar}",
     "data.name: unknown dataset 'cifar'; available: digits, iris"),
    ("data: {name: iris}", "data: {name: iris, args: {random: maybe}}",
     "data.args.random: IrisData: random must be True or False, got 'maybe'"),
    ("seed: 3", "seed: -1", "seed: must be an integer in [0, 4294967295] (NumPy seeds are 32-bit), got -1"),
    ("seed: 3", "seed: yes", "seed: expected an integer, got True (a boolean)"),
    ("batch_size: 10", "batch_size: 0", "training.batch_size: must be an integer in [1, 1000000000000], got 0"),
    ("iterations: 20,", "iterations: 20, epochs: 2,",
     "training: give either iterations or epochs, not both"),
    ("training: {iterations: 20, batch_size: 10}", "training: {batch_size: 10}",
     "training: needs iterations"),
    ("    - ReLU\n", "    - 7\n",
     "network.layers[1]: must be a name or a mapping with name and args, got an integer"),
    ("    - ReLU\n", "    - {args: {}}\n",
     "network.layers[1].name: missing; layers: BatchNormalization, Conv"),
    ("    - ReLU\n", "    - {name: ReLU, arg: {}}\n",
     "network.layers[1].arg: unknown key 'arg' (did you mean 'args'?)"),
    ("  weights_initializer: He\n", "  model: LeNet\n",
     "network.optimizer: not allowed together with network.model"),
    ("seed: 3", "seed: 3\ndtype: float16", "dtype: must be one of float32, float64, got 'float16'"),
])
def test_mistakes_name_the_key_path(tmp_path, old, new, expected):
    message = error_for(tmp_path, GOOD, old, new)
    assert message.startswith(str(tmp_path / "config.yaml") + ": ")
    assert expected in message


def test_model_config_mistakes(tmp_path):
    text = "data: {name: mnist, args: {path: x}}\nnetwork: {model: LeNett}\ntraining: {epochs: 1}\n"
    message = error_for(tmp_path, text)
    assert "network.model: unknown model 'LeNett'; available: LeNet (did you mean 'LeNet'?)" in message
    text = text.replace("{model: LeNett}", "{model: LeNet, args: {size: 3}}")
    message = error_for(tmp_path, text)
    assert "network.args.size: LeNet has no argument 'size'; LeNet takes no arguments" in message


def test_mnist_without_path_uses_the_data_folder_and_says_how_to_fill_it(tmp_path, empty_data_folder):
    from corenet.config import build_data

    config = load_config(write(tmp_path, "data: {name: mnist}\nnetwork: {model: LeNet}\ntraining: {epochs: 1}\n"))
    assert "path" not in config.data.args  # optional now: the default is corenet's data folder
    with pytest.raises(ConfigError) as info:
        build_data(config)
    message = str(info.value)
    assert f"no MNIST files in corenet's data folder {empty_data_folder / 'mnist'}" in message
    assert "corenet data fetch mnist" in message and "--data FOLDER" in message


def test_yaml_syntax_error_names_line(tmp_path):
    message = error_for(tmp_path, "data: {name: iris\nnetwork: [\n")
    assert "config.yaml: line" in message and "not valid YAML" in message
    assert "a config must be a mapping" in error_for(tmp_path, "- just\n- a list\n")
    assert "the config is empty" in error_for(tmp_path, "# nothing\n")


def test_scientific_notation_without_a_dot_is_a_float():
    assert parse_yaml("a: 5e-4\nb: 1E3\nc: -2.5e+2\nd: 1e\n", "x") == {"a": 5e-4, "b": 1000.0, "c": -250.0,
                                                                      "d": "1e"}


def test_overrides_set_and_remove_keys(tmp_path):
    path = write(tmp_path, GOOD)
    config = load_config(path, {"seed": 9, "training.epochs": 2, "training.iterations": None})
    assert config.seed == 9 and config.iterations is None and config.epochs == 2.0
    data = build_data(config)
    assert iterations_for(config, data) == 2 * -(-data.train_size // 10)  # an epoch: every batch, the last partial


def test_epochs_train_exactly_that_many_epochs(tmp_path):
    """``epochs: 20`` on 99 samples in batches of 16 is 20 epochs of 7 batches, and the run reports 20."""
    from corenet.training import prepare

    config = load_config("iris", {"training.epochs": 20, "training.iterations": None})
    net, data = prepare(config)
    assert data.train_size == 99 and config.batch_size == 16
    assert iterations_for(config, data) == 140
    config = load_config("iris", {"training.epochs": 2.5, "training.iterations": None})
    assert iterations_for(config, prepare(config)[1]) == round(2.5 * 7)


# -- building -------------------------------------------------------------------------------------------
def test_build_network_from_config(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    network = build_network(config)
    assert isinstance(network.optimizer, Adam) and network.optimizer.learning_rate == 5e-3
    assert network.optimizer.regularizer.alpha == 1e-4
    assert isinstance(network.weights_initializer, He)
    assert isinstance(network.bias_initializer, Constant) and network.bias_initializer.value == 0.1
    assert [type(layer).__name__ for layer in network.layers] == ["FullyConnected", "ReLU", "FullyConnected",
                                                                  "SoftMax"]
    np.testing.assert_array_equal(network.layers[0].weights[-1], 0.1)  # bias row from Constant(0.1)
    assert network.layers[0].parameter_optimizer("weights").regularizer.alpha == 1e-4
    conv = build_network(load_config(write(tmp_path, CONV, "conv.yaml"))).layers[0]
    assert conv.stride_shape in ((1, 1), [1, 1]) and conv.weights.shape == (4, 1, 3, 3)


def test_constructor_errors_are_reported_at_the_key_path(tmp_path):
    config = load_config(write(tmp_path, GOOD.replace("input_size: 4,", "input_size: -4,")))
    with pytest.raises(ConfigError, match=r"network\.layers\[0\]\.args\.input_size: FullyConnected: "
                                          r"input_size must be a positive integer, got -4"):
        build_network(config)


def test_layer_size_mismatch_is_reported_at_the_layer_key(tmp_path):
    from corenet.training import train

    config = load_config(write(tmp_path, GOOD.replace("input_size: 8,", "input_size: 7,")))
    with pytest.raises(ConfigError, match=r"network\.layers\[2\] \(FullyConnected\): .*input features"):
        train(config)


def test_layers_must_be_a_list(tmp_path):
    message = error_for(tmp_path, GOOD.split("  layers:")[0] + "  layers: ReLU\ntraining: {iterations: 2}\n")
    assert "network.layers: must be a non-empty list of layers, got a string" in message
    assert isinstance(FullyConnected(1, 1), FullyConnected)


def test_missing_plugin_is_named(monkeypatch):
    from corenet.plugins import get_registry

    monkeypatch.delitem(get_registry().layers, "Dropout")
    with pytest.raises(ConfigError) as info:
        load_config("digits-regularized")
    assert "network.layers[5].name: unknown layer 'Dropout'" in str(info.value)
    assert "Dropout comes with the plugin corenet-dropout: corenet install ./plugins/dropout" in str(info.value)


def test_override_into_a_bare_name(tmp_path):
    text = "data: mnist\nnetwork: {model: LeNet}\ntraining: {epochs: 1}\n"
    config = load_config(write(tmp_path, text), {"data.args.path": "/some/folder", "training.batch_size": 8})
    assert config.data.name == "mnist" and config.data.args["path"] == "/some/folder"
    assert config.data.args["batch_size"] == 8


def test_missing_plugin_config_names_the_plugin():
    import os
    import subprocess
    import sys

    env = {**os.environ, "CORENET_LOAD_PLUGINS": ""}
    result = subprocess.run([sys.executable, "-m", "corenet", "train", "lenet-mnist", "-q"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no config file or named config 'lenet-mnist'" in result.stderr
    assert "comes with the plugin corenet-lenet" in result.stderr


class _Echo:
    """A layer whose constructor accepts anything for ``size`` and refuses ``mode`` without naming it."""

    def __init__(self, size: int, mode: str = "a", *, scale: float = 1.0) -> None:
        if mode not in ("a", "b"):
            raise ValueError("only two modes exist")
        self.size, self.mode, self.scale = size, mode, scale

    def forward(self, input_tensor):
        return input_tensor

    def backward(self, error_tensor):
        return error_tensor


def _echo_config(args: str) -> str:
    return GOOD.replace("    - ReLU\n", f"    - {{name: Echo, args: {args}}}\n", 1)


def test_arguments_are_bound_not_type_checked(tmp_path, monkeypatch):
    from corenet.plugins import get_registry

    monkeypatch.setitem(get_registry().layers, "Echo", _Echo)
    config = load_config(write(tmp_path, _echo_config("{size: [1, two], scale: 3}")))
    echo = config.layers[1]
    assert echo.args == {"size": (1, "two"), "scale": 3}  # YAML lists become tuples; the class decides
    layer = echo.build()
    assert layer.size == (1, "two") and layer.scale == 3
    message = error_for(tmp_path, _echo_config("{scale: 2}"))
    assert "network.layers[1].args.size: missing required argument of _Echo(size, mode, scale)" in message
    message = error_for(tmp_path, _echo_config("{size: 1, scael: 2}"))
    assert "network.layers[1].args.scael: _Echo has no argument 'scael' (did you mean 'scale'?); " \
           "arguments: _Echo(size, mode, scale)" in message
    message = error_for(tmp_path, _echo_config("{size: 1, mode: c}"))  # the error names no argument
    assert "network.layers[1]: _Echo refused its arguments: only two modes exist" in message
