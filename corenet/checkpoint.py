"""Checkpoints: a network as plain data in a pickle container that can run nothing.

A checkpoint file (format 2) is a pickle of the *envelope*::

    {"magic": "corenet checkpoint", "format": 2, "corenet": "<version that saved it>",
     "sha256": "<hex digest of payload>", "payload": <bytes>}

and ``payload`` is a pickle of the network *record*: its optimizer, initializers, loss
layer and layers as components, its loss history, phase and other public attributes
(see :mod:`corenet.components` for how components, arrays and values are written).
Both pickles hold only dicts, lists, tuples, str, int, float, bool, None and bytes.

Reading admits no global at all, in three independent layers: the opcode stream is
scanned first and any opcode that could name a global or call something (GLOBAL,
STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, EXT, PERSID, buffers) refuses the file
before anything is unpickled; the unpickler's ``find_class`` and ``persistent_load``
always raise; and the result is walked and refused unless it is plain data within
depth and size limits. A checksum mismatch (bit rot, a partial copy) is reported
before the payload is read. Components are then rebuilt through the registry, every
array's size checked against its shape before it is allocated.

This module imports nothing from :mod:`corenet.network` (``network`` imports it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import pickletools
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corenet.components import Decoder, Encoder, state_of
from corenet.errors import CheckpointError
from corenet.files import atomic_write, file_kind, read_head, read_regular_file

MAGIC = "corenet checkpoint"
#: the envelope layout and record format this corenet writes and reads
FORMAT_VERSION = 2
#: largest checkpoint file read (bytes)
MAX_FILE_BYTES = 2 * 1024**3
#: limits on the unpickled structure (a real network uses a few thousand items)
MAX_ITEMS = 100_000
MAX_DEPTH = 64
MAX_OPCODES = 2_000_000
PICKLE_PROTOCOL = 4
#: pickle opcodes that only build plain data (everything else is refused unread)
PLAIN_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
    "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET",
    "NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
    "FLOAT", "BINFLOAT", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
    "SHORT_BINBYTES", "BINBYTES", "BINBYTES8",
    "EMPTY_LIST", "APPEND", "APPENDS", "LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS",
})
_STRING_OPCODES = frozenset({"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"})
#: what the record of a network holds, in the order it is written and read
NETWORK_COMPONENTS = {"optimizer": "optimizers", "weights_initializer": "initializers",
                      "bias_initializer": "initializers", "loss_layer": "losses"}
RECORD_KEYS = (*NETWORK_COMPONENTS, "layers", "loss", "phase", "attributes")
#: network attributes never saved as "attributes" (saved as their own entries, or never)
NOT_ATTRIBUTES = frozenset({*NETWORK_COMPONENTS, "layers", "loss", "data_layer"})
_PLAIN_TYPES = (type(None), bool, float, str, bytes)


@dataclass
class SavedNetwork:
    """What :func:`read_network` rebuilt from a file; :func:`corenet.network.load` assembles the network."""

    optimizer: Any
    weights_initializer: Any
    bias_initializer: Any
    loss_layer: Any
    layers: list
    loss: list[float]
    phase: str
    attributes: dict[str, Any] = field(default_factory=dict)
    saved_by: str = ""


# -- reading the container --------------------------------------------------------------------------
class PlainUnpickler(pickle.Unpickler):
    """An unpickler that admits no global and no persistent reference at all."""

    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str):
        raise CheckpointError(_global_refused(self._source, module, name))

    def persistent_load(self, pid):
        raise CheckpointError(f"{self._source}: persistent reference not allowed; not a corenet checkpoint")


def _global_refused(source: str, module: str, name: str) -> str:
    if (module, name) == ("corenet.network", "NeuralNetwork"):
        return (f"{source}: saved by an older corenet (format 1), whose files name Python classes; this corenet "
                f"reads format {FORMAT_VERSION}, which holds plain data and allows no global, so nothing from the "
                f"file was run. Re-train the network, or load it with corenet 0.1's loader")
    return (f"{source}: global not allowed: the file asks for {module}.{name}; a corenet checkpoint holds plain "
            f"data only, so nothing from the file was run")


def scan_opcodes(source: str, data: bytes) -> None:
    """Refuse ``data`` unless every pickle opcode in it only builds plain data and nothing follows STOP."""
    strings: list[str] = []  # the last strings pushed, to name a STACK_GLOBAL
    end = 0
    try:
        for count, (opcode, argument, position) in enumerate(pickletools.genops(data)):
            if count >= MAX_OPCODES:
                raise CheckpointError(f"{source}: more than {MAX_OPCODES} pickle opcodes; not a corenet checkpoint")
            name = opcode.name
            if name in _STRING_OPCODES:
                strings = [*strings[-1:], argument]
            if name in PLAIN_OPCODES:
                end = position
                continue
            if name in ("GLOBAL", "INST"):
                module, _, attribute = str(argument).partition(" ")
                raise CheckpointError(_global_refused(source, module, attribute))
            if name == "STACK_GLOBAL":
                module, attribute = strings if len(strings) == 2 else ("?", "?")
                raise CheckpointError(_global_refused(source, module, attribute))
            raise CheckpointError(f"{source}: global not allowed: the file uses the pickle opcode {name}, which a "
                                  f"corenet checkpoint never holds; nothing from the file was run")
    except CheckpointError:
        raise
    except Exception as exc:  # pickletools' ValueError for a cut or garbled stream
        text = str(exc)
        if "exhausted" in text or "remain" in text:
            raise CheckpointError(f"{source}: the file is truncated: it ends after {len(data)} bytes, in the "
                                  f"middle of the checkpoint") from None
        raise CheckpointError(f"{source}: cannot read the checkpoint ({text}); the file is damaged") from None
    if end + 1 != len(data):
        raise CheckpointError(f"{source}: {len(data) - end - 1} unexpected bytes after the checkpoint; "
                              f"the file is damaged")


def check_plain(source: str, value: Any) -> None:
    """Refuse anything but dict/list/tuple/str/int/float/bool/None/bytes, too deep or too many items."""
    stack = [(value, 0)]
    items = 0
    while stack:
        value, depth = stack.pop()
        items += 1
        if items > MAX_ITEMS or depth > MAX_DEPTH:
            limit = f"more than {MAX_ITEMS} items" if items > MAX_ITEMS else f"nested deeper than {MAX_DEPTH}"
            raise CheckpointError(f"{source}: the saved structure is {limit}; not a corenet checkpoint")
        kind = type(value)
        if kind in _PLAIN_TYPES:
            continue
        if kind is int:
            if abs(value) >= 2**64:
                raise CheckpointError(f"{source}: holds an integer of {value.bit_length()} bits; not a "
                                      f"corenet checkpoint")
            continue
        if kind is list or kind is tuple:
            stack.extend((item, depth + 1) for item in value)
            continue
        if kind is dict:
            for key, item in value.items():
                if type(key) not in (str, int):
                    raise CheckpointError(f"{source}: holds a dict key of type {type(key).__name__}; not a "
                                          f"corenet checkpoint")
                stack.append((item, depth + 1))
            continue
        raise CheckpointError(f"{source}: holds a {kind.__name__}, which a corenet checkpoint never holds")


def unpickle_plain(source: str, data: bytes) -> Any:
    """Unpickle ``data`` admitting plain data only (see the module docstring)."""
    scan_opcodes(source, data)
    try:
        value = PlainUnpickler(io.BytesIO(data), source).load()
    except CheckpointError:
        raise
    except Exception as exc:  # a stream pickletools accepted but the unpickler did not
        raise CheckpointError(f"{source}: cannot read the checkpoint ({type(exc).__name__}: {exc}); "
                              f"the file is damaged") from None
    check_plain(source, value)
    return value


def looks_like_checkpoint(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first 64 bytes) is a corenet checkpoint of any format."""
    if head[:2] == b"\x80\x04" and MAGIC.encode() in head:
        return True
    return head[:1] == b"\x80" and b"corenet.network" in head and b"NeuralNetwork" in head  # format 1


def read_record(filename) -> tuple[dict, str]:
    """The checked network record of a checkpoint file, and the corenet version that saved it."""
    source = str(filename)
    data = read_regular_file(filename, limit=MAX_FILE_BYTES, what="checkpoint", error=CheckpointError)
    if not data:
        raise CheckpointError(f"{source}: the file is empty, not a saved network")
    if data[:1] != b"\x80" or len(data) < 2 or not 2 <= data[1] <= 5:
        raise CheckpointError(f"{source}: not a corenet checkpoint (it does not start like one)")
    envelope = unpickle_plain(source, data)
    expected = {"magic", "format", "corenet", "sha256", "payload"}
    if type(envelope) is not dict or envelope.get("magic") != MAGIC:
        what = type(envelope).__name__
        raise CheckpointError(f"{source}: not a corenet checkpoint (a pickle of a {what} without corenet's header)")
    version = envelope.get("format")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{source}: saved in checkpoint format {version!r} (by corenet "
                              f"{envelope.get('corenet')!r}); this corenet reads format {FORMAT_VERSION}")
    if set(envelope) != expected or not all(type(envelope[key]) is str for key in ("corenet", "sha256")) \
            or type(envelope["payload"]) is not bytes:
        raise CheckpointError(f"{source}: the checkpoint's header is malformed; the file is damaged")
    payload = envelope["payload"]
    if hashlib.sha256(payload).hexdigest() != envelope["sha256"]:
        raise CheckpointError(f"{source}: the checksum does not match the contents: the file is damaged "
                              f"(bit rot, an incomplete copy or an edit); nothing was loaded")
    record = unpickle_plain(source, payload)
    if type(record) is not dict or set(record) != set(RECORD_KEYS):
        raise CheckpointError(f"{source}: the saved network record is malformed; the file was made by hand")
    return record, envelope["corenet"]


@contextlib.contextmanager
def _random_state_kept():
    """Constructors draw from NumPy's global generator: loading must not advance it."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def read_network(filename) -> SavedNetwork:
    """Read and rebuild every component of the network saved in ``filename`` (see the module docstring)."""
    from corenet.plugins import get_registry

    source = str(filename)
    record, saved_by = read_record(filename)
    decoder = Decoder(get_registry())
    with _random_state_kept():
        parts = {}
        for key, kind in NETWORK_COMPONENTS.items():
            value = record[key]
            where = f"{source}: the network's {key.replace('_', ' ')}"
            parts[key] = None if value is None else decoder.component(value, where, kind)
        layers = record["layers"]
        if type(layers) is not list:
            raise CheckpointError(f"{source}: the saved layers are not a list; the file was made by hand")
        parts["layers"] = [decoder.component(layer, f"{source}: layer {index}", "layers")
                           for index, layer in enumerate(layers)]
        loss = decoder.value(record["loss"], f"{source}: the loss history")
        if not isinstance(loss, np.ndarray) or loss.dtype != np.float64 or loss.ndim != 1:
            raise CheckpointError(f"{source}: the loss history must be a 1-D float64 array")
        attributes = record["attributes"]
        if type(attributes) is not dict or not all(type(k) is str and k.isidentifier() and not k.startswith("_")
                                                   and k not in NOT_ATTRIBUTES for k in attributes):
            raise CheckpointError(f"{source}: the network's saved attributes are malformed")
        attributes = {key: decoder.value(value, f"{source}: the network's {key}") for key, value in attributes.items()}
    if record["phase"] not in ("train", "test"):
        raise CheckpointError(f"{source}: the phase must be 'train' or 'test', got {record['phase']!r}")
    return SavedNetwork(loss=[float(value) for value in loss], phase=record["phase"], attributes=attributes,
                        saved_by=saved_by, **parts)


# -- writing ----------------------------------------------------------------------------------------
def network_record(net, source: str) -> dict:
    """The plain-data record of ``net`` (any object with a network's attributes; see the module docstring)."""
    from corenet.plugins import get_registry

    encoder = Encoder(get_registry())
    record: dict[str, Any] = {}
    for key in NETWORK_COMPONENTS:
        value = getattr(net, key, None)
        record[key] = None if value is None else encoder.component(value, f"{source}: the network's "
                                                                          f"{key.replace('_', ' ')}")
    record["layers"] = [encoder.component(layer, f"{source}: layer {index} ({type(layer).__name__})")
                        for index, layer in enumerate(net.layers)]
    try:
        loss = np.array(net.loss, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: cannot save the loss history: {exc}") from None
    record["loss"] = encoder.array(loss, f"{source}: the loss history")
    phase = getattr(net, "phase", "train")
    record["phase"] = str(getattr(phase, "value", phase))
    record["attributes"] = {
        name: encoder.value(value, f"{source}: the network's attribute {name}")
        for name, value in sorted(vars(net).items())
        if not name.startswith("_") and name not in NOT_ATTRIBUTES and name not in getattr(net, "transient", ())
    }
    return record


def encode(net, source: str = "checkpoint") -> bytes:
    """The bytes of a checkpoint file for ``net``."""
    from corenet import __version__

    record = network_record(net, source)
    check_plain(source, record)  # what is written can be read back
    payload = pickle.dumps(record, protocol=PICKLE_PROTOCOL)
    envelope = {"magic": MAGIC, "format": FORMAT_VERSION, "corenet": __version__,
                "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}
    return pickle.dumps(envelope, protocol=PICKLE_PROTOCOL)


def check_target(filename, *, force: bool = False, what: str = "corenet checkpoint", is_ours=None) -> None:
    """Refuse to save over anything but a missing path, an empty file or a ``what`` (``is_ours(head)``).

    Folders, FIFOs, devices and sockets are always refused; a symbolic link and any
    other existing file only without ``force``.
    """
    is_ours = looks_like_checkpoint if is_ours is None else is_ours
    path = Path(filename)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise CheckpointError(f"{path}: cannot save, folder {path.parent} does not exist") from None
        return
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot save: {exc.strerror or exc}") from None
    if stat.S_ISLNK(info.st_mode):
        if force:
            return
        raise CheckpointError(f"{path}: is a symbolic link (to {os.readlink(path)}); saving would replace the "
                              f"link with a file. Save to the link's target, or pass force=True (CLI: --force)")
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"{path}: cannot save, it is a folder")
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path}: is {file_kind(info.st_mode)}; a {what} is only saved to a regular file "
                              f"(not even with --force)")
    if info.st_size == 0 or force:
        return
    try:
        head = read_head(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot check what the existing file is: {exc.strerror or exc}") from None
    if not is_ours(head):
        raise CheckpointError(f"{path}: exists and is not a {what} ({_describe(head)}); refusing to replace it. "
                              f"Save to another path, or pass force=True (CLI: --force) to replace it")


def _describe(head: bytes) -> str:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "it does not start like one"
    return "it looks like a text file" if text.isprintable() or "\n" in text else "it does not start like one"


def save_network(filename, net, *, force: bool = False) -> None:
    """Write ``net`` to ``filename`` in format 2: checked target, temp file, fsync, rename."""
    data = encode(net, str(filename))
    check_target(filename, force=force)
    atomic_write(filename, data, error=CheckpointError)


# -- safetensors export -------------------------------------------------------------------------------
SAFETENSORS_DTYPES = {"<f8": "F64", "<f4": "F32", "<f2": "F16", "<i8": "I64", "<i4": "I32", "<i2": "I16",
                      "|i1": "I8", "<u8": "U64", "<u4": "U32", "<u2": "U16", "|u1": "U8", "|b1": "BOOL"}


def network_tensors(net) -> dict[str, np.ndarray]:
    """``layers.<index>.<name>`` -> every top-level array of each layer's state except gradients."""
    tensors = {}
    for index, layer in enumerate(net.layers):
        state = state_of(layer, f"layer {index} ({type(layer).__name__})")
        for name, value in state.items():
            if isinstance(value, np.ndarray) and not name.startswith("gradient"):
                tensors[f"layers.{index}.{name}"] = value
    return tensors


def _is_safetensors(head: bytes) -> bool:
    return len(head) > 9 and head[8:9] == b"{"


def export_safetensors(net, filename, *, force: bool = False) -> None:
    """Write the weights of ``net`` in the safetensors layout (for other tools; not loadable as a network).

    Layout: an 8-byte little-endian header length, a JSON header mapping each tensor name
    (``layers.<index>.<attribute>``) to its dtype, shape and byte offsets, then the raw
    little-endian bytes. Written like a checkpoint (checked target, atomic).
    """
    from corenet import __version__

    header: dict[str, Any] = {"__metadata__": {"producer": f"corenet {__version__}",
                                               "layers": ",".join(type(layer).__name__ for layer in net.layers)}}
    blobs, offset = [], 0
    for name, array in network_tensors(net).items():
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype.str not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{filename}: {name} has dtype {array.dtype}, which safetensors cannot hold")
        data = np.ascontiguousarray(array, dtype=dtype).tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[dtype.str], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    check_target(filename, force=force, what="safetensors file", is_ours=_is_safetensors)
    atomic_write(filename, len(text).to_bytes(8, "little") + text + b"".join(blobs), error=CheckpointError)
