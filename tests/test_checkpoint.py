"""Checkpoints: round trips, a restricted unpickler that runs nothing, clear errors, atomic saves."""

from __future__ import annotations

import collections
import copyreg
import errno
import io
import os
import pickle
import struct
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from corenet_reg_l1l2.constraints import L2_Regularizer

import corenet.checkpoint as checkpoint
from corenet.base import BaseLayer
from corenet.data.synthetic import RandomData
from corenet.errors import CheckpointError
from corenet.initializers import Constant, He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork, load, save
from corenet.optimizers import Adam


def small_net(seed: int = 0, trained: int = 3) -> NeuralNetwork:
    np.random.seed(seed)
    optimizer = Adam(1e-2, 0.8, 0.99)
    optimizer.add_regularizer(L2_Regularizer(3e-3))
    net = NeuralNetwork(optimizer, He(), Constant(0.25))
    net.loss_layer = CrossEntropyLoss()
    for layer in (FullyConnected(4, 5), ReLU(), FullyConnected(5, 3), SoftMax()):
        net.append_layer(layer)
    net.data_layer = RandomData(4, 6, 3)
    net.train(trained)
    return net


# -- pickle payloads that would run code ------------------------------------------------------------
def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def global_call(module: str, name: str, *args) -> bytes:
    """A protocol-4 pickle calling ``module.name(*args)`` (strings or lists of strings) on load."""
    out = b"\x80\x04" + _text(module) + _text(name) + b"\x93("  # STACK_GLOBAL, MARK
    for arg in args:
        if isinstance(arg, list):
            out += b"](" + b"".join(_text(item) for item in arg) + b"e"  # EMPTY_LIST, MARK, APPENDS
        else:
            out += _text(arg)
    return out + b"tR."  # TUPLE, REDUCE, STOP


class Reduce:
    """Pickles as a call of ``func(*args)``: the classic pickle code-execution gadget."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "a payload ran while loading"


def _gadgets(marker) -> dict[str, tuple[bytes, str]]:
    """Payload name -> (pickle bytes, what the refusal must say)."""
    touch = f"open({str(marker)!r}, 'w').close()"
    system = os.system.__module__  # posix (nt on Windows)
    return {
        "os.system": (pickle.dumps(Reduce(os.system, f"touch {marker}"), protocol=4),
                      f"refused to load {system}.system"),
        "builtins.eval": (pickle.dumps(Reduce(eval, touch), protocol=4), "refused to load builtins.eval"),
        "builtins.exec": (pickle.dumps(Reduce(exec, touch), protocol=2), "refused to load builtins.exec"),
        "subprocess.Popen": (pickle.dumps(Reduce(subprocess.Popen, ["touch", str(marker)]), protocol=4),
                             "refused to load subprocess.Popen"),
        "corenet.network.save": (pickle.dumps(Reduce(save, str(marker), small_net()), protocol=4),
                                 "refused to load corenet.network.save"),
        "corenet.cli + subprocess.Popen": (global_call("corenet.cli", "subprocess.Popen",
                                                       ["touch", str(marker)]),
                                           "refused to load corenet.cli.subprocess.Popen"),
        "corenet.checkpoint + os.system": (global_call("corenet.checkpoint", "os.system", f"touch {marker}"),
                                           "refused to load corenet.checkpoint.os.system"),
        "layer module + np.save": (global_call("corenet.layers.fully_connected", "np.save", str(marker), "x"),
                                   "refused to load corenet.layers.fully_connected.np.save"),
        "dotted path through a class": (global_call("corenet.network", "NeuralNetwork.__init__.__globals__"),
                                        "refused to load corenet.network.NeuralNetwork.__init__.__globals__"),
        "protocol-0 GLOBAL": (f"c{system}\nsystem\n(Vtouch {marker}\ntR.".encode(),
                              "not a corenet checkpoint"),
    }


@pytest.mark.parametrize("kind", list(_gadgets("x")))
def test_code_running_payloads_are_refused_unrun(kind, marker, tmp_path):
    payload, expected = _gadgets(marker)[kind]
    path = tmp_path / "evil.ckpt"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError) as info:
        load(path, None)
    assert str(info.value).startswith(f"{path}: {expected}")


@pytest.mark.parametrize("kind", ["os.system", "corenet.cli + subprocess.Popen", "corenet.network.save"])
def test_the_payloads_are_live_under_plain_pickle(kind, tmp_path):
    """Control: the same bytes do run code with plain pickle (what trusted=True uses)."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(_gadgets(marker)[kind][0])
    with pytest.raises(CheckpointError, match="not a NeuralNetwork"):
        load(path, None, trusted=True)
    deadline = time.monotonic() + 10  # Popen runs touch in the background
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists()


def test_payload_hidden_inside_a_real_network_is_refused(marker, tmp_path):
    net = small_net()
    net.layers[1].extra = Reduce(os.system, f"touch {marker}")
    path = tmp_path / "hidden.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", checkpoint.CheckpointWarning)
        save(path, net)
    with pytest.raises(CheckpointError, match=r"refused to load posix\.system|refused to load nt\.system"):
        load(path, None)


def test_refusal_names_the_global_and_imports_nothing(tmp_path):
    path = tmp_path / "main.ckpt"
    path.write_bytes(global_call("corenet.__main__", "app"))
    sys.modules.pop("corenet.__main__", None)
    with pytest.raises(CheckpointError, match=r"refused to load corenet\.__main__\.app"):
        load(path, None)
    assert "corenet.__main__" not in sys.modules  # importing it would run the CLI


@pytest.mark.parametrize("module, name", [("corenet.network", "save"), ("corenet.network", "load"),
                                          ("corenet.plugins", "Registry"), ("corenet.testrun", "GroupResult"),
                                          ("corenet.checkpoint", "RestrictedUnpickler"),
                                          ("numpy", "load"), ("numpy.lib.npyio", "load"),
                                          ("builtins", "getattr")])
def test_only_model_classes_are_admitted(module, name):
    assert (module, name) not in checkpoint.admitted_globals()


def test_admitted_classes_cover_registered_components_and_their_helpers():
    from corenet.plugins import get_registry

    table = checkpoint.admitted_globals()
    registry = get_registry()
    for kind in ("layers", "optimizers", "initializers", "regularizers", "losses"):
        for cls in getattr(registry, kind).values():
            assert table[(cls.__module__, cls.__qualname__)] is cls
    assert table[("corenet.network", "NeuralNetwork")] is NeuralNetwork
    assert all(isinstance(obj, type) or module.startswith("numpy") for (module, _), obj in table.items())


# -- round trips ---------------------------------------------------------------------------------------
def test_round_trip_keeps_predictions_optimizer_initializers_and_adam_state(tmp_path):
    net = small_net()
    probe = np.random.RandomState(5).uniform(size=(7, 4))
    before = net.test(probe)
    path = tmp_path / "net.ckpt"
    save(path, net)
    data = RandomData(4, 6, 3)
    loaded = load(path, data)
    assert loaded.data_layer is data
    np.testing.assert_array_equal(loaded.test(probe), before)
    assert type(loaded.optimizer) is Adam
    assert (loaded.optimizer.learning_rate, loaded.optimizer.mu, loaded.optimizer.rho) == (1e-2, 0.8, 0.99)
    assert type(loaded.optimizer.regularizer) is L2_Regularizer and loaded.optimizer.regularizer.alpha == 3e-3
    assert type(loaded.weights_initializer) is He
    assert type(loaded.bias_initializer) is Constant and loaded.bias_initializer.value == 0.25
    assert loaded.loss == net.loss and len(loaded.loss) == 3
    for old, new in zip(net.layers, loaded.layers):
        assert type(old) is type(new)
        if old.trainable:
            adam_old, adam_new = old.parameter_optimizer("weights"), new.parameter_optimizer("weights")
            assert adam_new.iteration == adam_old.iteration == 3
            np.testing.assert_array_equal(adam_new.first_moment, adam_old.first_moment)
            np.testing.assert_array_equal(adam_new.second_moment, adam_old.second_moment)
            assert adam_new.regularizer.alpha == 3e-3


def test_training_continues_after_load_exactly_as_without_saving(tmp_path):
    net = small_net()
    path = tmp_path / "net.ckpt"
    save(path, net)
    loaded = load(path, RandomData(4, 6, 3))
    np.random.seed(11)
    net.train(5)
    np.random.seed(11)
    loaded.train(5)
    assert loaded.loss == net.loss
    np.testing.assert_array_equal(loaded.layers[0].weights, net.layers[0].weights)


def test_getstate_drops_the_data_layer_and_setstate_restores_none():
    net = small_net()
    state = net.__getstate__()
    assert state["data_layer"] is None and net.data_layer is not None
    copy = pickle.loads(pickle.dumps(net))  # the spec's plain pickle still works
    assert copy.data_layer is None
    assert b"RandomData" not in pickle.dumps(net)


def test_trusted_opt_in_loads_with_plain_pickle(tmp_path):
    net = small_net()
    net.layers[1].history = collections.OrderedDict(a=1)  # not a corenet class
    path = tmp_path / "trusted.ckpt"
    with pytest.warns(checkpoint.CheckpointWarning, match="collections.OrderedDict"):
        save(path, net)
    with pytest.raises(CheckpointError, match=r"refused to load collections\.OrderedDict.*trusted=True"):
        load(path, None)
    loaded = load(path, None, trusted=True)
    assert loaded.layers[1].history == {"a": 1}


class ScriptLayer(BaseLayer):
    """A layer defined outside any plugin (as in a user's script)."""

    def forward(self, input_tensor):
        return input_tensor

    def backward(self, error_tensor):
        return error_tensor


def test_unregistered_layer_warns_on_save_and_needs_trust(tmp_path):
    net = small_net()
    net.layers.insert(1, ScriptLayer())
    path = tmp_path / "script.ckpt"
    with pytest.warns(checkpoint.CheckpointWarning, match="ScriptLayer"):
        save(path, net)
    with pytest.raises(CheckpointError, match="ScriptLayer"):
        load(path, None)
    assert isinstance(load(path, None, trusted=True).layers[1], ScriptLayer)


def test_registered_network_saves_without_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(tmp_path / "ok.ckpt", small_net())


# -- damaged and foreign files ----------------------------------------------------------------------
def test_truncated_at_every_byte_is_refused_clearly(tmp_path):
    payload = pickle.dumps(small_net(trained=1), protocol=pickle.HIGHEST_PROTOCOL)
    path = tmp_path / "cut.ckpt"
    for cut in range(len(payload)):
        path.write_bytes(payload[:cut])
        with pytest.raises(CheckpointError) as info:
            load(path, None)
        message = str(info.value)
        assert message.startswith(str(path)), (cut, message)
        words = ("truncated", "empty", "not a corenet checkpoint", "damaged")
        assert any(word in message for word in words), (cut, message)
    path.write_bytes(payload)
    assert isinstance(load(path, None), NeuralNetwork)


@pytest.mark.parametrize("content, expected", [
    (b"", "empty"),
    (b"hello, I am a text file\n", "not a corenet checkpoint"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "not a corenet checkpoint"),
    (pickle.dumps({"weights": np.ones(3)}, protocol=4), "holds a dict, not a NeuralNetwork"),
    (pickle.dumps(Adam(1e-3), protocol=4), "holds a Adam, not a NeuralNetwork"),
    (pickle.dumps([1, 2, 3], protocol=0), "not a corenet checkpoint"),
    (b"\x80\x05\xff\xfe\xfd", "damaged"),
    (bytes(range(256)) * 4, "not a corenet checkpoint"),
])
def test_foreign_files_are_refused_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load(path, None)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load(tmp_path / "absent.ckpt", None)
    with pytest.raises(CheckpointError, match="folder"):
        load(tmp_path, None)


def test_trailing_bytes_are_refused(tmp_path):
    path = tmp_path / "net.ckpt"
    save(path, small_net())
    path.write_bytes(path.read_bytes() + b"extra")
    with pytest.raises(CheckpointError, match="5 unexpected bytes after the saved network"):
        load(path, None)


def test_other_format_version_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "future.ckpt"
    import corenet.network

    monkeypatch.setattr(corenet.network, "FORMAT_VERSION", 99)
    save(path, small_net())
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match=r"future\.ckpt: saved in checkpoint format 99, .* format 1"):
        load(path, None)
    # an older file: the network's state has no format_version
    stream = io.BytesIO()
    pickler = pickle.Pickler(stream, protocol=4)
    state = dict(small_net().__dict__, data_layer=None)
    pickler.dispatch_table = {NeuralNetwork: lambda net: (copyreg.__newobj__, (NeuralNetwork,), state)}
    pickler.dump(small_net())
    path.write_bytes(stream.getvalue())
    with pytest.raises(CheckpointError, match="format None"):
        load(path, None)


# -- atomic saves ---------------------------------------------------------------------------------------
def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("step, error", [("fsync", OSError(errno.ENOSPC, "No space left on device")),
                                         ("replace", OSError(errno.EIO, "Input/output error")),
                                         ("fsync", KeyboardInterrupt()),
                                         ("dumps", pickle.PicklingError("cannot pickle"))])
def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, step, error):
    path = tmp_path / "net.ckpt"
    good = small_net(seed=1)
    save(path, good)
    original = path.read_bytes()

    def fail(*args, **kwargs):
        raise error

    target = {"fsync": (checkpoint.os, "fsync"), "replace": (checkpoint.os, "replace"),
              "dumps": (checkpoint.pickle, "dumps")}[step]
    monkeypatch.setattr(*target, fail)
    expected = KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else CheckpointError
    with pytest.raises(expected) as info:
        save(path, small_net(seed=2, trained=5))
    monkeypatch.undo()
    if expected is CheckpointError:
        assert str(path) in str(info.value)
    assert path.read_bytes() == original
    assert _leftovers(tmp_path) == []
    np.testing.assert_array_equal(load(path, None).layers[0].weights, good.layers[0].weights)


def test_disk_full_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "net.ckpt"
    save(path, small_net(seed=1))
    original = path.read_bytes()
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, stream):
            self.stream = stream

        def write(self, data):
            self.stream.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.stream, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

    monkeypatch.setattr(checkpoint.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    with pytest.raises(CheckpointError, match="No space left on device.*previous file.*unchanged"):
        save(path, small_net(seed=2))
    assert path.read_bytes() == original and _leftovers(tmp_path) == []


def test_save_creates_a_normal_file_and_refuses_bad_targets(tmp_path):
    path = tmp_path / "net.ckpt"
    save(path, small_net())
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(CheckpointError, match="does not exist"):
        save(tmp_path / "missing" / "net.ckpt", small_net())
    with pytest.raises(CheckpointError, match="it is a folder"):
        save(tmp_path, small_net())
    with pytest.raises(TypeError, match="NeuralNetwork"):
        save(tmp_path / "x.ckpt", {"not": "a network"})


def test_plugin_layers_and_float32_round_trip_without_warnings(tmp_path):
    from corenet.config import load_config
    from corenet.dtype import get_default_dtype, set_default_dtype
    from corenet.training import prepare

    previous = get_default_dtype()
    set_default_dtype(np.float32)
    try:
        net, data = prepare(load_config("digits-regularized", {"dtype": "float32"}))  # Conv, BatchNorm, Dropout
    finally:
        set_default_dtype(previous)
    net.train(3)
    images = data.get_test_set()[0][:20]
    before = net.test(images)
    assert before.dtype == np.float32
    path = tmp_path / "digits.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(path, net)
    loaded = load(path, data)
    np.testing.assert_array_equal(loaded.test(images), before)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in net.layers]


def test_recurrent_layers_round_trip(tmp_path):
    from corenet.plugins import get_registry

    layers = get_registry().layers
    if "LSTM" not in layers or "RNN" not in layers:
        pytest.skip("corenet-recurrent is not installed")
    np.random.seed(0)
    net = NeuralNetwork(Adam(1e-3), He(), Constant(0.0))
    net.loss_layer = CrossEntropyLoss()
    for layer in (layers["RNN"](3, 5, 4), layers["LSTM"](4, 6, 2), SoftMax()):
        net.append_layer(layer)
    net.data_layer = RandomData(3, 7, 2)
    net.train(2)
    sequence = np.random.RandomState(1).uniform(size=(7, 3))
    before = net.test(sequence)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(tmp_path / "rnn.ckpt", net)
    np.testing.assert_array_equal(load(tmp_path / "rnn.ckpt", None).test(sequence), before)
