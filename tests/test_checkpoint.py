"""Checkpoints: round trips, the layer config/state protocol, clear errors, safe targets, atomic saves."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from checkpoint_support import PROBE, envelope_bytes, registered, small_net
from corenet_reg_l1l2.constraints import L2_Regularizer

import corenet.checkpoint as checkpoint
import corenet.files as files
from corenet.base import BaseLayer, TrainableLayer
from corenet.data.synthetic import RandomData
from corenet.errors import CheckpointError
from corenet.initializers import Constant, He
from corenet.layers.activations import SoftMax
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork, load, save
from corenet.optimizers import Adam, SgdWithMomentum

REPO = Path(__file__).resolve().parents[1]


def record_of(net, source="net.ckpt") -> dict:
    return checkpoint.network_record(net, source)


# -- round trips ------------------------------------------------------------------------------------
def test_round_trip_keeps_predictions_optimizer_initializers_and_adam_state(tmp_path):
    net = small_net()
    before = net.test(PROBE)
    path = tmp_path / "net.ckpt"
    save(path, net)
    data = RandomData(4, 6, 3)
    loaded = load(path, data)
    assert loaded.data_layer is data
    np.testing.assert_array_equal(loaded.test(PROBE), before)
    assert type(loaded.optimizer) is Adam
    assert (loaded.optimizer.learning_rate, loaded.optimizer.mu, loaded.optimizer.rho) == (1e-2, 0.8, 0.99)
    assert type(loaded.optimizer.regularizer) is L2_Regularizer and loaded.optimizer.regularizer.alpha == 3e-3
    assert type(loaded.weights_initializer) is He
    assert type(loaded.bias_initializer) is Constant and loaded.bias_initializer.value == 0.25
    assert type(loaded.loss_layer) is CrossEntropyLoss
    assert loaded.loss == net.loss and len(loaded.loss) == 3
    for old, new in zip(net.layers, loaded.layers):
        assert type(old) is type(new)
        if old.trainable:
            adam_old, adam_new = old.parameter_optimizer("weights"), new.parameter_optimizer("weights")
            assert adam_new is not adam_old and adam_new.iteration == adam_old.iteration == 3
            np.testing.assert_array_equal(adam_new.first_moment, adam_old.first_moment)
            np.testing.assert_array_equal(adam_new.second_moment, adam_old.second_moment)
            assert adam_new.regularizer.alpha == 3e-3
            assert new.optimizer is not adam_new and new.optimizer.iteration == 0  # the untouched template


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


def test_loading_does_not_advance_numpys_global_generator(tmp_path):
    save(tmp_path / "net.ckpt", small_net())
    np.random.seed(3)
    expected = np.random.random_sample(3)
    np.random.seed(3)
    load(tmp_path / "net.ckpt", None)  # constructing FullyConnected draws random weights
    np.testing.assert_array_equal(np.random.random_sample(3), expected)


def test_metadata_phase_and_other_public_attributes_survive(tmp_path):
    net = small_net()
    net.metadata = {"config": "mine", "data": {"name": "iris", "args": {"split": 0.3}}, "seed": 7}
    net.notes = ("kept", 1, 2.5, None, b"raw")
    net.phase = "test"
    save(tmp_path / "net.ckpt", net)
    loaded = load(tmp_path / "net.ckpt", None)
    assert loaded.metadata == net.metadata and loaded.notes == net.notes
    assert loaded.phase == net.phase and all(layer.testing_phase for layer in loaded.layers)


def test_plain_pickle_of_a_network_still_works_and_drops_the_data_layer():
    net = small_net()
    assert net.__getstate__()["data_layer"] is None and net.data_layer is not None
    copy = pickle.loads(pickle.dumps(net))  # the exercise's own pickle test
    assert copy.data_layer is None
    np.testing.assert_array_equal(copy.test(PROBE), net.test(PROBE))


def test_the_file_holds_only_plain_data_and_its_checksum_matches(tmp_path):
    path = tmp_path / "net.ckpt"
    save(path, small_net())
    data = path.read_bytes()
    envelope = checkpoint.unpickle_plain(str(path), data)
    assert set(envelope) == {"magic", "format", "corenet", "sha256", "payload"}
    assert envelope["magic"] == "corenet checkpoint" and envelope["format"] == 2
    assert hashlib.sha256(envelope["payload"]).hexdigest() == envelope["sha256"]
    record = checkpoint.unpickle_plain(str(path), envelope["payload"])
    layer = record["layers"][0]
    assert {key: layer[key] for key in ("kind", "name", "plugin", "args", "kwargs")} == {
        "kind": "layers", "name": "FullyConnected", "plugin": "corenet", "args": [4, 5], "kwargs": {}}
    weights = layer["state"]["weights"]
    assert (weights["dtype"], weights["shape"], len(weights["data"])) == ("<f8", [5, 5], 200)
    assert b"numpy" not in data and b"corenet.base" not in data  # no module is named anywhere


# -- the layer protocol --------------------------------------------------------------------------------
class Scaled(BaseLayer):
    """A plugin author's layer with no checkpoint code: arguments recorded, public state saved."""

    transient = ("last_input",)

    def __init__(self, size: int, factor: float = 2.0, *, offset: float = 0.0) -> None:
        super().__init__()
        self.scale = np.full(size, factor)
        self.shift = offset
        self.calls = 0
        self.last_input = None  # transient: not saved
        self._scratch = np.zeros(1000)  # private: not saved

    def forward(self, input_tensor):
        self.calls += 1
        self.last_input = input_tensor
        return input_tensor * self.scale + self.shift

    def backward(self, error_tensor):
        return error_tensor * self.scale


class Plain:
    """A layer that is not a BaseLayer: rebuilt from the attributes named like its parameters."""

    def __init__(self, gain: float) -> None:
        self.gain = gain
        self.trainable = False
        self.testing_phase = False

    def forward(self, input_tensor):
        return input_tensor * self.gain

    def backward(self, error_tensor):
        return error_tensor * self.gain


class Hidden:
    """Keeps its argument under another name: needs get_config()."""

    def __init__(self, gain: float) -> None:
        self.factor = gain

    def forward(self, input_tensor):
        return input_tensor * self.factor

    def backward(self, error_tensor):
        return error_tensor * self.factor


class Custom(BaseLayer):
    """Overrides the whole protocol."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.table = {"a": np.arange(size, dtype=np.float64)}

    def get_config(self):
        return {"size": len(self.table["a"])}

    def get_state(self):
        return {"values": self.table["a"] * 2}

    def set_state(self, state):
        if set(state) != {"values"}:
            raise KeyError(f"unexpected keys {sorted(state)}")
        self.table = {"a": state["values"] / 2}

    def forward(self, input_tensor):
        return input_tensor + self.table["a"]

    def backward(self, error_tensor):
        return error_tensor


def net_with(*layers) -> NeuralNetwork:
    net = small_net(trained=0)
    for layer in layers:
        net.layers.insert(1, layer)
    return net


def test_a_plugin_layer_without_checkpoint_code_round_trips(tmp_path):
    layer = Scaled(5, 3.0, offset=0.5)
    layer.forward(np.ones((2, 5)))
    with registered(Scaled):
        net = net_with(layer)
        record = record_of(net)["layers"][1]
        assert (record["args"], record["kwargs"]) == ([5, 3.0], {"offset": 0.5})
        assert set(record["state"]) == {"scale", "shift", "calls", "trainable", "testing_phase"}
        save(tmp_path / "net.ckpt", net)
        restored = load(tmp_path / "net.ckpt", None).layers[1]
    assert type(restored) is Scaled and restored.calls == 1 and restored.shift == 0.5
    np.testing.assert_array_equal(restored.scale, layer.scale)
    assert restored.last_input is None and restored._scratch.shape == (1000,)


def test_a_layer_not_derived_from_baselayer_is_rebuilt_from_its_attributes(tmp_path):
    with registered(Plain):
        save(tmp_path / "net.ckpt", net_with(Plain(1.5)))
        assert load(tmp_path / "net.ckpt", None).layers[1].gain == 1.5


def test_a_class_hiding_its_arguments_is_told_what_to_add(tmp_path):
    with registered(Hidden), pytest.raises(CheckpointError) as info:
        save(tmp_path / "net.ckpt", net_with(Hidden(1.5)))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'net.ckpt'}: layer 1 (Hidden): Hidden takes the argument(s) gain")
    assert "self.gain = gain" in message and "get_config()" in message
    assert not (tmp_path / "net.ckpt").exists()


def test_get_config_get_state_and_set_state_override_the_defaults(tmp_path):
    with registered(Custom):
        net = net_with(Custom(5))
        record = record_of(net)["layers"][1]
        assert (record["args"], record["kwargs"], list(record["state"])) == ([], {"size": 5}, ["values"])
        save(tmp_path / "net.ckpt", net)
        restored = load(tmp_path / "net.ckpt", None).layers[1]
    np.testing.assert_array_equal(restored.table["a"], np.arange(5.0))


def test_half_the_state_protocol_is_refused(tmp_path):
    class OnlyGet(Scaled):
        def get_state(self):
            return {}

    with registered(OnlyGet), pytest.raises(CheckpointError, match="get_state.*set_state.*but not the other"):
        save(tmp_path / "net.ckpt", net_with(OnlyGet(5)))


def test_an_unregistered_layer_cannot_be_saved(tmp_path):
    with pytest.raises(CheckpointError) as info:
        save(tmp_path / "net.ckpt", net_with(Scaled(5)))
    assert "layer 1 (Scaled): Scaled is not registered by corenet or an installed plugin" in str(info.value)


def test_an_attribute_that_is_not_data_is_named(tmp_path):
    layer = Scaled(5)
    layer.callback = print
    with registered(Scaled), pytest.raises(CheckpointError) as info:
        save(tmp_path / "net.ckpt", net_with(layer))
    assert "layer 1 (Scaled): callback holds" in str(info.value) and "transient" in str(info.value)


def test_an_attribute_created_after_construction_is_refused_at_load(tmp_path):
    layer = Scaled(5)
    layer.late = 3  # a new instance has no 'late': the file cannot be rebuilt faithfully
    with registered(Scaled):
        save(tmp_path / "net.ckpt", net_with(layer))
        with pytest.raises(CheckpointError, match=r"layer 1 \(Scaled\): the saved state has 'late', which a "
                                                  r"Scaled does not keep"):
            load(tmp_path / "net.ckpt", None)


class Sharing(Scaled):
    """Holds one array under two names and one sub-layer twice."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.alias = self.scale
        inner = FullyConnected(2, 2)
        self.children = [inner, inner]


def test_shared_objects_stay_shared(tmp_path):
    with registered(Sharing):
        net = net_with(Sharing(5))
        record = record_of(net)["layers"][1]["state"]
        assert record["scale"] == {"$type": "ref", "id": record["alias"]["id"]}  # attributes go in name order
        assert record["children"][1] == {"$type": "ref", "id": record["children"][0]["id"]}
        save(tmp_path / "net.ckpt", net)
        restored = load(tmp_path / "net.ckpt", None).layers[1]
    assert restored.alias is restored.scale and restored.children[0] is restored.children[1]
    assert type(restored.children[0]) is FullyConnected


def test_a_layer_appended_twice_is_one_layer_after_loading(tmp_path):
    from corenet.layers.activations import ReLU

    net = small_net()
    shared = ReLU()
    net.layers[1:2] = [shared]
    net.layers.insert(3, shared)
    save(tmp_path / "net.ckpt", net)
    loaded = load(tmp_path / "net.ckpt", None)
    assert loaded.layers[1] is loaded.layers[3] and type(loaded.layers[1]) is ReLU


def test_saving_from_another_thread_never_removes_a_temporary_file_being_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = Path("net.ckpt")  # relative, while the temporary file's name is absolute
    save(path, small_net())
    real_fsync, seen = os.fsync, []

    def fsync_and_look(descriptor):  # while this save's temporary file exists, another save cleans up
        seen.append(files.stale_temporaries(path))
        real_fsync(descriptor)

    monkeypatch.setattr(files.os, "fsync", fsync_and_look)
    save(path, small_net(seed=2))
    assert seen[0] == [] and _leftovers(tmp_path) == []


class FastFullyConnected(FullyConnected):
    """Another implementation of FullyConnected (different private workspace, same public state)."""

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__(input_size, output_size)
        self._fast_buffers = {}


def test_a_checkpoint_names_the_layer_not_the_implementation(tmp_path):
    net = small_net()
    expected = net.test(PROBE)
    save(tmp_path / "reference.ckpt", net)
    with registered(FastFullyConnected, label="fast", names=["FullyConnected"]):
        fast = load(tmp_path / "reference.ckpt", None)
        assert type(fast.layers[0]) is FastFullyConnected
        np.testing.assert_array_equal(fast.test(PROBE), expected)
        save(tmp_path / "fast.ckpt", fast)
    reference = load(tmp_path / "fast.ckpt", None)
    assert type(reference.layers[0]) is FullyConnected
    np.testing.assert_array_equal(reference.test(PROBE), expected)


# -- non-finite weights -------------------------------------------------------------------------------
def test_non_finite_weights_are_refused_at_save_and_at_load(tmp_path):
    net = small_net()
    net.layers[2].weights[1, 1] = np.nan
    with pytest.raises(CheckpointError, match=r"layer 2 \(FullyConnected\): weights holds NaN or inf"):
        save(tmp_path / "net.ckpt", net)
    record = record_of(small_net())
    bad = np.asarray(small_net().layers[2].weights)
    bad[0, 0] = np.inf
    record["layers"][2]["state"]["weights"]["data"] = bad.tobytes()
    (tmp_path / "net.ckpt").write_bytes(envelope_bytes(record))
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "net.ckpt", None)
    assert str(info.value).startswith(f"{tmp_path / 'net.ckpt'}: layer 2 (FullyConnected): weights holds NaN or inf")


# -- damaged, foreign and older files ------------------------------------------------------------------
@pytest.mark.parametrize("content, expected", [
    (b"", "the file is empty"),
    (b"hello, I am a text file\n", "not a corenet checkpoint (it does not start like one)"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "not a corenet checkpoint"),
    (pickle.dumps({"weights": [1.0, 2.0]}, protocol=4), "not a corenet checkpoint (a pickle of a dict without"),
    (pickle.dumps([1, 2, 3], protocol=0), "not a corenet checkpoint"),
    (pickle.dumps(np.ones(3), protocol=4), "global not allowed"),
    (b"\x80\x05\xff\xfe\xfd", "damaged"),
    (bytes(range(256)) * 4, "not a corenet checkpoint"),
])
def test_foreign_files_are_refused_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load(path, None)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value)


def test_a_format_1_file_is_named_as_such_without_being_unpickled(tmp_path, monkeypatch):
    path = tmp_path / "old.ckpt"
    path.write_bytes(pickle.dumps(small_net(), protocol=5))  # what corenet 0.1 wrote
    monkeypatch.setattr(checkpoint.PlainUnpickler, "load", lambda self: pytest.fail("unpickled"))
    with pytest.raises(CheckpointError) as info:
        load(path, None)
    assert str(info.value) == (
        f"{path}: saved by an older corenet (format 1), whose files name Python classes; this corenet reads "
        f"format 2, which holds plain data and allows no global, so nothing from the file was run. Re-train "
        f"the network, or load it with corenet 0.1's loader")


def test_other_format_versions_and_a_bad_checksum(tmp_path):
    record = record_of(small_net())
    path = tmp_path / "net.ckpt"
    path.write_bytes(envelope_bytes(record, format_version=3))
    with pytest.raises(CheckpointError, match=r"saved in checkpoint format 3 .*this corenet reads format 2"):
        load(path, None)
    path.write_bytes(envelope_bytes(record, sha256="0" * 64))
    with pytest.raises(CheckpointError, match="the checksum does not match the contents: the file is damaged"):
        load(path, None)


def test_trailing_bytes_are_refused(tmp_path):
    path = tmp_path / "net.ckpt"
    save(path, small_net())
    path.write_bytes(path.read_bytes() + b"extra")
    with pytest.raises(CheckpointError, match="5 unexpected bytes after the checkpoint"):
        load(path, None)


def test_a_component_whose_plugin_is_missing_is_named(tmp_path):
    with registered(Scaled):
        save(tmp_path / "net.ckpt", net_with(Scaled(4)))
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "net.ckpt", None)
    assert str(info.value) == (f"{tmp_path / 'net.ckpt'}: layer 1: the layer 'Scaled' is not installed here "
                               f"(it was saved with corenet-test-plugin); install the plugin that provides it")


# -- what is read -----------------------------------------------------------------------------------
def test_missing_file_folder_fifo_and_devices_are_refused_without_reading(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load(tmp_path / "absent.ckpt", None)
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        load(tmp_path, None)
    with pytest.raises(CheckpointError, match="is a character device, not a checkpoint file"):
        load("/dev/zero", None)  # never read until memory runs out
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_error_of(lambda: load(fifo, None))), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO hung")
    assert "is a FIFO (named pipe), not a checkpoint file; only regular files are read" in outcome[0]


def _error_of(function) -> str:
    try:
        function()
    except CheckpointError as exc:
        return str(exc)
    return "no error"


def test_oversized_files_are_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "net.ckpt"
    save(path, small_net())
    monkeypatch.setattr(checkpoint, "MAX_FILE_BYTES", 1000)
    with pytest.raises(CheckpointError, match=r"is \d+ bytes, more than the 1000 bytes a checkpoint may have"):
        load(path, None)


# -- what save replaces -----------------------------------------------------------------------------
def test_save_refuses_what_is_not_a_checkpoint_unless_forced(tmp_path):
    config = tmp_path / "digits.yaml"
    config.write_text("data: digits\n")
    with pytest.raises(CheckpointError) as info:
        save(config, small_net())
    assert str(info.value) == (f"{config}: exists and is not a corenet checkpoint (it looks like a text file); "
                               f"refusing to replace it. Save to another path, or pass force=True (CLI: --force) "
                               f"to replace it")
    assert config.read_text() == "data: digits\n"
    save(config, small_net(), force=True)
    assert isinstance(load(config, None), NeuralNetwork)
    binary = tmp_path / "photo.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    with pytest.raises(CheckpointError, match="it does not start like one"):
        save(binary, small_net())


def test_save_replaces_checkpoints_of_either_format_and_empty_files(tmp_path):
    old = tmp_path / "old.ckpt"
    old.write_bytes(pickle.dumps(small_net(), protocol=5))  # format 1
    save(old, small_net())
    save(old, small_net(seed=2))  # format 2
    empty = tmp_path / "empty.ckpt"
    empty.touch()
    save(empty, small_net())
    assert load(old, None).loss == small_net(seed=2).loss and load(empty, None).layers


def test_save_refuses_folders_fifos_devices_and_symlinks(tmp_path):
    net = small_net()
    with pytest.raises(CheckpointError, match="cannot save, it is a folder"):
        save(tmp_path, net)
    with pytest.raises(CheckpointError, match="cannot save, folder .*missing does not exist"):
        save(tmp_path / "missing" / "net.ckpt", net)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target, kind in ((fifo, r"a FIFO \(named pipe\)"), ("/dev/null", "a character device")):
        for force in (False, True):
            with pytest.raises(CheckpointError, match=f"is {kind}; a corenet checkpoint is only saved to a regular"):
                save(target, net, force=force)
    real = tmp_path / "real.ckpt"
    save(real, net)
    link = tmp_path / "link.ckpt"
    link.symlink_to(real)
    with pytest.raises(CheckpointError, match="is a symbolic link .*replace the link with a file"):
        save(link, small_net(seed=3))
    save(link, small_net(seed=3), force=True)
    assert not link.is_symlink() and load(real, None).loss == net.loss
    with pytest.raises(TypeError, match="NeuralNetwork"):
        save(tmp_path / "x.ckpt", {"not": "a network"})


def test_save_keeps_the_permissions(tmp_path):
    path = tmp_path / "net.ckpt"
    save(path, small_net())
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o600)
    save(path, small_net())
    assert path.stat().st_mode & 0o777 == 0o600


# -- atomic saves --------------------------------------------------------------------------------------
def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _raise(error):
    def fail(*args, **kwargs):
        raise error

    return fail


@pytest.mark.parametrize("step, error", [
    ("write", OSError(errno.ENOSPC, "No space left on device")),
    ("fsync", OSError(errno.ENOSPC, "No space left on device")),
    ("replace", OSError(errno.EIO, "Input/output error")),
    ("write", KeyboardInterrupt()),
    ("fsync", KeyboardInterrupt()),
    ("dumps", pickle.PicklingError("cannot pickle")),
])
def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, step, error):
    path = tmp_path / "net.ckpt"
    good = small_net(seed=1)
    save(path, good)
    original = path.read_bytes()
    other = small_net(seed=2, trained=5)
    target = {"write": (files.os, "write"), "fsync": (files.os, "fsync"), "replace": (files.os, "replace"),
              "dumps": (checkpoint.pickle, "dumps")}[step]
    monkeypatch.setattr(*target, _raise(error))
    expected = type(error) if isinstance(error, (KeyboardInterrupt, pickle.PicklingError)) else CheckpointError
    with pytest.raises(expected) as info:
        save(path, other)
    monkeypatch.undo()
    if expected is CheckpointError:
        assert str(info.value) == (f"{path}: cannot save ({error.strerror}); the previous file, if any, is "
                                   f"unchanged")
    assert path.read_bytes() == original and _leftovers(tmp_path) == []
    np.testing.assert_array_equal(load(path, None).layers[0].weights, good.layers[0].weights)


def test_a_disk_filling_up_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "net.ckpt"
    save(path, small_net(seed=1))
    original = path.read_bytes()
    real_write = os.write
    calls = []

    def half_then_full(descriptor, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(descriptor, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "write", half_then_full)
    with pytest.raises(CheckpointError, match="No space left on device.*previous file.*unchanged"):
        save(path, small_net(seed=2))
    monkeypatch.undo()
    assert len(calls) == 2 and path.read_bytes() == original and _leftovers(tmp_path) == []


KILLED_SAVER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {tests!r})
    import corenet.files as files
    from checkpoint_support import small_net
    from corenet.network import save

    real_write = os.write

    def slow_write(descriptor, data):
        real_write(descriptor, bytes(data[: len(data) // 2]))
        print("writing", flush=True)
        time.sleep(60)

    files.os.write = slow_write
    save({path!r}, small_net(seed=2, trained=5))
""")


def test_kill_9_during_a_save_keeps_the_previous_file_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "net.ckpt"
    save(path, small_net(seed=1))
    original = path.read_bytes()
    script = KILLED_SAVER.format(tests=str(REPO / "tests"), path=str(path))
    saver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert saver.stdout.readline().strip() == "writing"
        saver.send_signal(signal.SIGKILL)
    finally:
        saver.wait(30)
    assert saver.returncode == -signal.SIGKILL
    assert path.read_bytes() == original
    leftover = _leftovers(tmp_path)
    assert len(leftover) == 1 and leftover[0].startswith(f".net.ckpt.{saver.pid}.")
    np.testing.assert_array_equal(load(path, None).test(PROBE), small_net(seed=1).test(PROBE))
    save(path, small_net(seed=3))
    assert _leftovers(tmp_path) == []


def test_only_temporary_files_of_gone_writers_are_cleaned_up(tmp_path):
    path = tmp_path / "net.ckpt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    names = {f".net.ckpt.{dead}.abc123.tmp": False,  # its writer is gone: removed
             f".net.ckpt.{os.getpid()}.old.tmp": False,  # ours, not being written: removed
             ".net.ckpt.legacy9.tmp": False,  # written by corenet 0.1 (no pid): removed
             f".net.ckpt.{os.getppid()}.live.tmp": True,  # a running writer's: kept
             ".other.ckpt.1.x.tmp": True, "net.ckpt.tmp": True}  # not this target's
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
    save(path, small_net())
    assert sorted(_leftovers(tmp_path)) == sorted(name for name, kept in names.items() if kept)


# -- safetensors export ------------------------------------------------------------------------------
def read_safetensors(path) -> dict[str, np.ndarray]:
    """A reader written from the safetensors layout description."""
    data = Path(path).read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    header.pop("__metadata__")
    dtypes = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "BOOL": "|b1"}
    body = data[8 + length:]
    return {name: np.frombuffer(body[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
            for name, info in header.items() for start, end in [info["data_offsets"]]}


def test_export_safetensors_writes_every_layer_weight(tmp_path):
    from corenet.config import load_config
    from corenet.training import prepare

    net, _ = prepare(load_config("digits"))  # Conv, BatchNormalization (moving statistics), Dropout, FC
    net.train(2)
    path = tmp_path / "digits.safetensors"
    checkpoint.export_safetensors(net, path)
    assert int.from_bytes(path.read_bytes()[:8], "little") % 8 == 0
    tensors = read_safetensors(path)
    expected = {f"layers.{index}.{name}": getattr(layer, name) for index, layer in enumerate(net.layers)
                for name in ("weights", "bias", "moving_mean", "moving_variance") if hasattr(layer, name)}
    assert set(tensors) == set(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(tensors[name], array)
    with pytest.raises(CheckpointError, match="exists and is not a safetensors file"):
        checkpoint.export_safetensors(net, REPO / "pyproject.toml")
    checkpoint.export_safetensors(net, path)  # replacing its own kind is fine


def test_the_safetensors_library_reads_the_export(tmp_path):
    numpy_reader = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed")
    net = small_net()
    checkpoint.export_safetensors(net, tmp_path / "net.safetensors")
    tensors = numpy_reader.load_file(str(tmp_path / "net.safetensors"))
    assert set(tensors) == {"layers.0.weights", "layers.2.weights"}
    np.testing.assert_array_equal(tensors["layers.2.weights"], net.layers[2].weights)


# -- layers from plugins, float32 ----------------------------------------------------------------------
def test_plugin_layers_and_float32_round_trip(tmp_path):
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
    save(tmp_path / "digits.ckpt", net)
    loaded = load(tmp_path / "digits.ckpt", data)
    np.testing.assert_array_equal(loaded.test(images), before)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
    assert all(layer.weights.dtype == np.float32 for layer in loaded.layers if layer.trainable)


def test_momentum_state_and_trainable_layers_without_optimizer(tmp_path):
    np.random.seed(0)
    net = NeuralNetwork(SgdWithMomentum(1e-2, 0.9), He(), Constant(0.1))
    net.loss_layer = CrossEntropyLoss()
    net.append_layer(FullyConnected(4, 3))
    net.append_layer(SoftMax())
    net.data_layer = RandomData(4, 6, 3)
    net.train(2)
    bare = FullyConnected(3, 3)  # a trainable layer that never got an optimizer
    net.layers.insert(1, bare)
    save(tmp_path / "net.ckpt", net)
    loaded = load(tmp_path / "net.ckpt", None)
    assert isinstance(loaded.layers[1], TrainableLayer) and loaded.layers[1].optimizer is None
    np.testing.assert_array_equal(loaded.layers[0].parameter_optimizer("weights").velocity,
                                  net.layers[0].parameter_optimizer("weights").velocity)
