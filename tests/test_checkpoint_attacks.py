"""Attacks on checkpoints (issue 13): nothing in a file can run code, rewrite a class, crash the loader,
exhaust memory or load a silently different network."""

from __future__ import annotations

import copy
import os
import pickle
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from checkpoint_support import (
    LAYER_SAMPLES,
    PROBE,
    class_rewrite_payload,
    envelope_bytes,
    global_call,
    object_pointer_payload,
    sample_network,
    small_net,
    text,
)

import corenet.checkpoint as checkpoint
from corenet.base import TrainableLayer
from corenet.components import default_state
from corenet.errors import CheckpointError
from corenet.layers.conv import Conv
from corenet.layers.fully_connected import FullyConnected
from corenet.network import load, save
from corenet.plugins import get_registry

TESTS = Path(__file__).resolve().parent


def refusal(path, content: bytes) -> str:
    """The CheckpointError message loading ``content`` gives (any other outcome fails the test)."""
    Path(path).unlink(missing_ok=True)  # a new file: truncating one costs milliseconds on ext4
    Path(path).write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load(path, None)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


def in_envelope(payload: bytes) -> bytes:
    """``payload`` as the payload of a well-formed checkpoint with a matching checksum."""
    import hashlib

    envelope = {"magic": checkpoint.MAGIC, "format": checkpoint.FORMAT_VERSION, "corenet": "0.1.0",
                "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}
    return pickle.dumps(envelope, protocol=4)


# -- the two attacks the issue reports -----------------------------------------------------------------
def test_the_object_pointer_dtype_is_refused_as_a_global(tmp_path):
    payload = object_pointer_payload()
    assert len(payload) < 162
    for content in (payload, in_envelope(payload)):
        message = refusal(tmp_path / "pointer.ckpt", content)
        assert "global not allowed: the file asks for numpy.ndarray" in message
        assert "nothing from the file was run" in message


def test_the_class_rewrite_is_refused_and_the_class_left_untouched(tmp_path):
    before = {cls: cls.parameter_names for cls in (TrainableLayer, FullyConnected, Conv)}
    for content in (class_rewrite_payload(), in_envelope(class_rewrite_payload()),
                    class_rewrite_payload("corenet.layers.conv", "Conv")):
        message = refusal(tmp_path / "rewrite.ckpt", content)
        assert "global not allowed: the file asks for corenet." in message
    assert {cls: cls.parameter_names for cls in before} == before
    net = small_net()  # networks built afterwards still learn and save their weights
    assert len(net.layers[0].parameter_names) == 1 and net.layers[0].parameter_optimizer("weights") is not None
    save(tmp_path / "after.ckpt", net)
    np.testing.assert_array_equal(load(tmp_path / "after.ckpt", None).test(PROBE), net.test(PROBE))


CONTROL = """
import pickle, sys
sys.path.insert(0, {tests!r})
from checkpoint_support import class_rewrite_payload, object_pointer_payload
from corenet.base import TrainableLayer
pickle.loads(class_rewrite_payload())
array = pickle.loads(object_pointer_payload())
print(TrainableLayer.parameter_names, array.dtype.hasobject, array.dtype.fields["f0"][0].hasobject)
"""


def test_control_both_attacks_are_live_under_plain_pickle():
    """The same bytes, unpickled by plain pickle in a separate process: the class is rewritten, and the
    array holds an object field NumPy no longer knows about (reading it would dereference 0x4141...)."""
    result = subprocess.run([sys.executable, "-c", CONTROL.format(tests=str(TESTS))], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["()", "False", "True"]


# -- every payload tested before (format 1's restricted unpickler) ------------------------------------
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
    time.sleep(0.05)  # give a spawned process the chance to betray itself
    assert not path.exists(), "a payload ran while loading"


def gadgets(marker) -> dict[str, bytes]:
    touch = f"open({str(marker)!r}, 'w').close()"
    hidden = small_net()
    hidden.layers[1].extra = Reduce(os.system, f"touch {marker}")
    return {
        "os.system": pickle.dumps(Reduce(os.system, f"touch {marker}"), protocol=4),
        "builtins.eval": pickle.dumps(Reduce(eval, touch), protocol=4),
        "builtins.exec": pickle.dumps(Reduce(exec, touch), protocol=2),
        "subprocess.Popen": pickle.dumps(Reduce(subprocess.Popen, ["touch", str(marker)]), protocol=4),
        "corenet.network.save": pickle.dumps(Reduce(save, str(marker), small_net()), protocol=4),
        "corenet.cli + subprocess.Popen": global_call("corenet.cli", "subprocess.Popen", ["touch", str(marker)]),
        "corenet.checkpoint + os.system": global_call("corenet.checkpoint", "os.system", f"touch {marker}"),
        "layer module + np.save": global_call("corenet.layers.fully_connected", "np.save", str(marker), "x"),
        "dotted path through a class": global_call("corenet.network", "NeuralNetwork.__init__.__globals__"),
        "protocol-0 GLOBAL": f"c{os.system.__module__}\nsystem\n(Vtouch {marker}\ntR.".encode(),
        "inside a format-1 network": pickle.dumps(hidden, protocol=5),
        "the README table's os.system": pickle.dumps(Reduce(os.system, ("echo this must never run",))),
        "numpy.load": global_call("numpy", "load", str(marker)),
        "copyreg extension": b"\x80\x02\x82\x01)R.",  # EXT1 code 1
        "persistent id": b"\x80\x04" + text("x") + b"Q.",  # BINPERSID
    }


@pytest.mark.parametrize("kind", list(gadgets(Path("x"))))
@pytest.mark.parametrize("wrapped", [False, True], ids=["file", "envelope"])
def test_code_running_payloads_are_refused_unrun(kind, wrapped, marker, tmp_path):
    payload = gadgets(marker)[kind]
    message = refusal(tmp_path / "evil.ckpt", in_envelope(payload) if wrapped else payload)
    if kind == "inside a format-1 network":
        assert "saved by an older corenet (format 1)" in message
    elif kind == "protocol-0 GLOBAL" and not wrapped:
        assert "not a corenet checkpoint" in message
    else:
        assert "global not allowed" in message


def test_a_refused_global_is_never_imported(tmp_path):
    sys.modules.pop("corenet.__main__", None)
    message = refusal(tmp_path / "main.ckpt", global_call("corenet.__main__", "app"))
    assert "global not allowed: the file asks for corenet.__main__.app" in message
    assert "corenet.__main__" not in sys.modules  # importing it would run the CLI


def test_the_unpickler_itself_admits_no_global():
    """Behind the opcode scan: find_class and persistent_load refuse everything."""
    import io

    unpickler = checkpoint.PlainUnpickler(io.BytesIO(b""), "f.ckpt")
    with pytest.raises(CheckpointError, match="global not allowed: the file asks for builtins.dict"):
        unpickler.find_class("builtins", "dict")
    with pytest.raises(CheckpointError, match="persistent reference not allowed"):
        unpickler.persistent_load("x")
    with pytest.raises(CheckpointError, match="holds a set"):
        checkpoint.check_plain("f.ckpt", {"a": [1, (2, {3})]})


# -- resource bombs ----------------------------------------------------------------------------------
def bombs() -> dict[str, tuple[bytes, str]]:
    deep = b"\x80\x04" + b"]" * 5000 + b"a" * 4999 + b"."  # lists nested 5000 deep
    fan = b"\x80\x04]" + b"2\x86" * 60 + b"."  # (x, x) 60 times over: 2**60 leaves from 120 bytes
    return {
        "nested 5000 deep": (deep, "nested deeper than 64"),
        "2**60 shared leaves": (fan, "more than 100000 items"),
        "a list holding itself": (b"\x80\x04]\x94h\x00a.", "nested deeper than 64"),
        "a 800000-bit integer": (b"\x80\x04\x8b" + (100_000).to_bytes(4, "little") + b"\x01" * 100_000 + b".",
                                 "integer of 799993 bits"),
        "a set": (b"\x80\x04\x8f\x94.", "opcode EMPTY_SET"),
        "a bytearray": (pickle.dumps(bytearray(b"x"), protocol=5), "opcode BYTEARRAY8"),
        "an out-of-band buffer": (b"\x80\x05\x97.", "opcode NEXT_BUFFER"),
    }


@pytest.mark.parametrize("kind", list(bombs()))
def test_resource_bombs_are_refused_quickly(kind, tmp_path):
    payload, expected = bombs()[kind]
    started = time.perf_counter()
    message = refusal(tmp_path / "bomb.ckpt", in_envelope(payload))
    assert expected in message and time.perf_counter() - started < 2


# -- crafted states for every registered class ---------------------------------------------------------
def saved_record(layer_name: str) -> dict:
    net, _ = sample_network(layer_name, "Adam", steps=2)
    return checkpoint.network_record(net, "net.ckpt")


def components_in(record: dict) -> list[tuple[str, dict]]:
    """(label, component record) for the network's optimizer, initializers, loss layer and its first layer
    with that layer's optimizer copies and their regularizers."""
    found = [(key, record[key]) for key in ("optimizer", "weights_initializer", "bias_initializer", "loss_layer")]
    layer = record["layers"][0]
    found.append(("layer 0", layer))
    for name, optimizer in layer["state"].get("parameter_optimizers", {}).items():
        found.append((f"layer 0 {name} optimizer", optimizer))
        if isinstance(optimizer["state"].get("regularizer"), dict):
            found.append((f"layer 0 {name} regularizer", optimizer["state"]["regularizer"]))
    return found


def fresh_state(component: dict) -> dict:
    cls = getattr(get_registry(), component["kind"])[component["name"]]
    return default_state(cls(*component["args"], **component["kwargs"]))


def is_array(value) -> bool:
    return isinstance(value, dict) and value.get("$type") == "ndarray"


def mutations(component: dict):
    """(description, mutate(state) -> None, expected message fragment) for one component's state."""
    fresh = fresh_state(component)
    state = component["state"]
    for key in state:
        yield f"without {key}", lambda s, k=key: s.pop(k), f"has no {key!r}"
        if fresh.get(key) is not None and key != "parameter_optimizers":
            wrong = 12345 if isinstance(fresh[key], str) else "not this"
            yield f"{key} of a wrong type", lambda s, k=key, w=wrong: s.__setitem__(k, w), key
        if is_array(state[key]):
            yield f"{key} huge", lambda s, k=key: s[k].__setitem__("shape", [2**31, 2**31]), "would need"
            yield f"{key} negative", lambda s, k=key: s[k].__setitem__("shape", [-1, 4]), "non-negative"
            yield f"{key} of dtype object", lambda s, k=key: s[k].__setitem__("dtype", "|O"), "is not allowed"
            yield f"{key} short", lambda s, k=key: s[k].__setitem__("data", s[k]["data"][:-1]), "the file holds"
            if state[key]["dtype"].startswith("<f") and state[key]["shape"] and 0 not in state[key]["shape"]:
                yield f"{key} NaN", lambda s, k=key: s[k].__setitem__(
                    "data", np.full(1, np.nan, s[k]["dtype"]).tobytes() + s[k]["data"][np.dtype(s[k]["dtype"])
                                                                                      .itemsize:]), "NaN or inf"
            if fresh.get(key) is not None and len(state[key]["shape"]) >= 1 and state[key]["shape"][0] > 1:
                def halve(s, k=key):
                    shape = list(s[k]["shape"])
                    s[k]["data"] = s[k]["data"][: len(s[k]["data"]) // shape[0]]
                    s[k]["shape"] = [1, *shape[1:]]

                yield f"{key} of another shape", halve, "must have shape"
    yield "an extra key", lambda s: s.__setitem__("sneaky", 1), "'sneaky'"


@pytest.mark.parametrize("layer_name", sorted(name for name in LAYER_SAMPLES if name in get_registry().layers))
def test_crafted_states_are_refused_with_one_line_errors(layer_name, tmp_path):
    record = saved_record(layer_name)
    path = tmp_path / "crafted.ckpt"
    checked = 0
    for label, component in components_in(record):
        for description, mutate, expected in mutations(component):
            crafted = copy.deepcopy(record)
            target = dict(components_in(crafted))[label]
            mutate(target["state"])
            message = refusal(path, envelope_bytes(crafted))
            assert expected in message, (label, description, message)
            checked += 1
    assert checked >= 8


def component_mutations():
    def set_in(key, value):
        return lambda layer: layer.__setitem__(key, value)

    return {
        "a layer named as an optimizer": (set_in("kind", "optimizers"), "a layer is expected here"),
        "an unknown layer": (set_in("name", "Teleport"), "the layer 'Teleport' is not installed here"),
        "a kind outside checkpoints": (set_in("kind", "datasets"), "a layer is expected here"),
        "arguments the constructor refuses": (set_in("args", [-4, 3]), "cannot construct FullyConnected(-4, 3)"),
        "arguments of a wrong type": (set_in("args", ["4", 3]), "cannot construct FullyConnected('4', 3)"),
        "a layer of 2**80 weights": (set_in("args", [2**40, 2**40]), "cannot construct FullyConnected"),
        "an unexpected keyword": (set_in("kwargs", {"colour": "red"}), "unexpected keyword argument 'colour'"),
        "args that are not a list": (set_in("args", {"a": 1}), "must be a list and two dicts"),
        "an extra field": (set_in("note", 1), "malformed component record"),
        "an unknown record type": (lambda layer: layer["state"].__setitem__(
            "weights", {"$type": "pointer", "to": 0}), "unknown record type 'pointer'"),
        "a dangling reference": (lambda layer: layer["state"].__setitem__(
            "weights", {"$type": "ref", "id": 10**6}), "which the file does not define before"),
        "a repeated id": (lambda layer: layer.__setitem__("id", 0), "bad or repeated object id"),
    }


@pytest.mark.parametrize("kind", list(component_mutations()))
def test_crafted_components_are_refused(kind, tmp_path):
    mutate, expected = component_mutations()[kind]
    record = checkpoint.network_record(small_net(), "net.ckpt")
    mutate(record["layers"][2])
    assert expected in refusal(tmp_path / "crafted.ckpt", envelope_bytes(record))


@pytest.mark.parametrize("change, expected", [
    (lambda r: r.__setitem__("attributes", {"train": 1}), "would replace NeuralNetwork.train"),
    (lambda r: r.__setitem__("attributes", {"_phase": "x"}), "saved attributes are malformed"),
    (lambda r: r.__setitem__("phase", "sleep"), "the phase must be 'train' or 'test'"),
    (lambda r: r.__setitem__("layers", {"0": 1}), "the saved layers are not a list"),
    (lambda r: r.pop("loss"), "the saved network record is malformed"),
    (lambda r: r.__setitem__("optimizer", r["layers"][0]), "a optimizer is expected here"),
    (lambda r: r["loss"].__setitem__("dtype", "<i8"), "the loss history must be a 1-D float64 array"),
])
def test_crafted_network_records_are_refused(change, expected, tmp_path):
    record = checkpoint.network_record(small_net(), "net.ckpt")
    change(record)
    assert expected in refusal(tmp_path / "crafted.ckpt", envelope_bytes(record))


# -- damage --------------------------------------------------------------------------------------------
def overwrite(path, data: bytes) -> None:
    """Write ``data`` over a file of the same size in place (truncating costs milliseconds on ext4)."""
    descriptor = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(descriptor, data, 0)
    finally:
        os.close(descriptor)


def test_3000_random_byte_flips_load_the_same_network_or_are_refused(tmp_path):
    net = small_net(trained=2)
    path = tmp_path / "net.ckpt"
    save(path, net)
    original = path.read_bytes()
    expected = net.test(PROBE)
    rng = random.Random(13)
    outcomes = {"refused": 0, "identical": 0}
    for _ in range(3000):
        damaged = bytearray(original)
        damaged[rng.randrange(len(damaged))] ^= rng.randrange(1, 256)
        overwrite(path, damaged)
        try:
            loaded = load(path, None)
        except CheckpointError as exc:
            assert str(exc).startswith(f"{path}: ")
            outcomes["refused"] += 1
            continue
        np.testing.assert_array_equal(loaded.test(PROBE), expected)
        assert loaded.loss == net.loss
        outcomes["identical"] += 1
    assert outcomes["refused"] > 2900, outcomes  # only the version string can change harmlessly


def test_truncation_at_every_97th_byte_is_refused(tmp_path):
    path = tmp_path / "net.ckpt"
    save(path, small_net())
    data = path.read_bytes()
    for cut in range(0, len(data), 97):
        message = refusal(path, data[:cut])
        assert any(word in message for word in ("truncated", "empty", "damaged")), (cut, message)
