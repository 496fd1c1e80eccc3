"""Saving and loading networks: atomic writes and a restricted unpickler.

A checkpoint is a plain pickle of a :class:`~corenet.network.NeuralNetwork`
(its data layer dropped). Loading admits only:

- the layer, optimizer, initializer, regularizer and loss classes registered by
  corenet and its installed plugins, the other classes defined in the same
  modules (helper state a layer may keep) and corenet's own model classes
  (``NeuralNetwork``, ``Phase``, the optimizer and initializer base classes);
- NumPy's array reconstruction globals (``_reconstruct``, ``scalar``,
  ``_frombuffer``, ``dtype``, ``ndarray``);
- builtin containers.

Every admitted global is an exact ``(module, name)`` pair looked up in a table
built from the registry: nothing is imported on the file's behalf and dotted
names (``corenet.cli`` + ``subprocess.Popen``) cannot reach through a module's
imports. Functions are never admitted (``corenet.network.save`` would be a
file-writing gadget). Anything else (``os.system``, ``builtins.eval``, ...) is
refused before it can run. ``trusted=True`` loads with plain pickle instead:
unsafe, only for files you made yourself.
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import sys
import tempfile
import warnings
from importlib import import_module
from pathlib import Path
from typing import Any

from corenet.errors import CheckpointError

#: Bumped when a saved network's layout changes incompatibly.
FORMAT_VERSION = 1

#: registry kinds whose classes (and their modules' classes) a network may hold
CHECKPOINT_KINDS = ("layers", "optimizers", "initializers", "regularizers", "losses")
#: core modules whose classes a network may hold even if nothing there is registered
CORE_MODULES = ("corenet.network", "corenet.base", "corenet.optimizers", "corenet.initializers",
                "corenet.losses")
#: the modules NumPy's pickles name (1.x and 2.x spellings) -> names admitted from them
_NUMPY_GLOBALS = {
    "numpy": ("dtype", "ndarray"),
    "numpy.core.multiarray": ("_reconstruct", "scalar"),
    "numpy._core.multiarray": ("_reconstruct", "scalar"),
    "numpy.core.numeric": ("_frombuffer",),
    "numpy._core.numeric": ("_frombuffer",),
}
_BUILTIN_CONTAINERS = ("list", "dict", "tuple", "set", "frozenset", "bytearray", "slice", "complex")


class CheckpointWarning(UserWarning):
    """A network was saved but :func:`load_network` will refuse it without ``trusted=True``."""


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """NumPy's reconstruction globals under every module name its pickles use (no deprecated imports)."""
    import numpy as np

    try:
        multiarray = import_module("numpy._core.multiarray")
        numeric = import_module("numpy._core.numeric")
    except ImportError:  # NumPy 1.x
        multiarray = import_module("numpy.core.multiarray")
        numeric = import_module("numpy.core.numeric")
    sources = {"numpy": np, "multiarray": multiarray, "numeric": numeric}
    table = {}
    for module, names in _NUMPY_GLOBALS.items():
        source = sources["numpy" if module == "numpy" else module.rsplit(".", 1)[1]]
        for name in names:
            table[(module, name)] = getattr(source, name)
    return table


def _classes_defined_in(module_name: str) -> dict[tuple[str, str], type]:
    """Every class whose home is ``module_name`` (re-exported imports excluded)."""
    module = sys.modules.get(module_name) or import_module(module_name)
    return {
        (module_name, value.__qualname__): value
        for value in vars(module).values()
        if isinstance(value, type) and value.__module__ == module_name
    }


def admitted_globals() -> dict[tuple[str, str], Any]:
    """The exact ``(module, name) -> object`` table a restricted load may use."""
    from corenet.plugins import get_registry

    registry = get_registry()
    table: dict[tuple[str, str], Any] = {}
    modules = set(CORE_MODULES)
    for kind in CHECKPOINT_KINDS:
        for cls in getattr(registry, kind).values():
            table[(cls.__module__, cls.__qualname__)] = cls
            modules.add(cls.__module__)
    for module_name in sorted(modules):
        table.update(_classes_defined_in(module_name))
    table.update(_numpy_globals())
    builtins = sys.modules["builtins"]
    table.update({("builtins", name): getattr(builtins, name) for name in _BUILTIN_CONTAINERS})
    return table


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` answers only from :func:`admitted_globals`; never imports."""

    def __init__(self, file, source: str, admitted: dict[tuple[str, str], Any] | None = None) -> None:
        super().__init__(file)
        self._source = source
        self._admitted = admitted_globals() if admitted is None else admitted
        #: ``module.name`` of the first refused global (None while nothing was refused)
        self.refused: str | None = None

    def find_class(self, module: str, name: str):
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names in protocol 0-2 files
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return self._admitted[(module, name)]
        except KeyError:
            pass
        self.refused = f"{module}.{name}"
        raise CheckpointError(
            f"{self._source}: refused to load {module}.{name}: a checkpoint may hold only the layer, "
            f"optimizer, initializer, regularizer and loss classes of corenet and its installed plugins, "
            f"and NumPy arrays, never functions or other objects; nothing from the file was run. "
            f"If it was saved with a plugin that is not installed here, install that plugin; if you made "
            f"the file yourself and trust it, load it with trusted=True (CLI: --trust)"
        )

    def persistent_load(self, pid):
        raise CheckpointError(f"{self._source}: refused a persistent reference; not a corenet checkpoint")


# -- saving ---------------------------------------------------------------------------------------
def _file_mode(target: Path) -> int:
    """The target's current permission bits, or what a new file gets under the umask."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_bytes(filename, payload: bytes) -> None:
    """Write ``payload`` to ``filename`` via a temp file in the same folder, fsync and rename.

    A crash, a full disk or an exception (Ctrl-C included) at any point leaves
    either the old file or the complete new one, and no temporary file behind.
    """
    target = Path(filename)
    folder = target.parent
    if not folder.is_dir():
        raise CheckpointError(f"{target}: cannot save, folder {folder} does not exist")
    if target.is_dir():
        raise CheckpointError(f"{target}: cannot save, it is a folder")
    mode = _file_mode(target)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise CheckpointError(f"{target}: cannot save: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as exc:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise CheckpointError(
                f"{target}: cannot save ({exc.strerror or exc}); the previous file, if any, is unchanged"
            ) from exc
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform allows it)."""
    try:
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


def save_network(filename, net) -> None:
    """Pickle ``net`` to ``filename`` atomically (see :func:`atomic_write_bytes`).

    Warns with :class:`CheckpointWarning` if the network holds a class that a
    restricted :func:`load_network` would refuse (e.g. a layer defined in a script).
    """
    from corenet.network import NeuralNetwork

    if not isinstance(net, NeuralNetwork):
        raise TypeError(f"save expects a NeuralNetwork, got {type(net).__name__}")
    try:
        payload = pickle.dumps(net, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{filename}: cannot save the network: {exc}") from exc
    check = RestrictedUnpickler(io.BytesIO(payload), str(filename))
    try:
        check.load()
    except CheckpointError:
        warnings.warn(
            f"{filename}: saved, but corenet.load will refuse it without trusted=True: it holds "
            f"{check.refused}, which is not a class registered by corenet or an installed plugin",
            CheckpointWarning,
            stacklevel=3,
        )
    atomic_write_bytes(filename, payload)


# -- loading --------------------------------------------------------------------------------------
def _read(source: str, filename) -> bytes:
    try:
        payload = Path(filename).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{source}: no such checkpoint file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{source}: is a folder, not a checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"{source}: cannot read checkpoint: {exc.strerror or exc}") from exc
    if not payload:
        raise CheckpointError(f"{source}: the file is empty, not a saved network")
    if payload[:1] != b"\x80" or len(payload) < 2 or payload[1] < 2:
        raise CheckpointError(f"{source}: not a corenet checkpoint (it does not start like a pickle file)")
    return payload


def _unpickle(source: str, payload: bytes, trusted: bool):
    stream = io.BytesIO(payload)
    try:
        obj = pickle.Unpickler(stream).load() if trusted else RestrictedUnpickler(stream, source).load()
    except CheckpointError:
        raise
    except EOFError:
        raise CheckpointError(
            f"{source}: the file is truncated: it ends after {len(payload)} bytes, in the middle of "
            f"the saved network"
        ) from None
    except Exception as exc:  # any error inside pickle/NumPy: damaged, foreign or incompatible
        truncated = "truncated" in str(exc)
        what = "the file is truncated" if truncated else "the file is damaged or not a corenet checkpoint"
        raise CheckpointError(
            f"{source}: cannot read the saved network ({type(exc).__name__}: {exc}); {what}"
        ) from exc
    if stream.tell() != len(payload):
        raise CheckpointError(
            f"{source}: {len(payload) - stream.tell()} unexpected bytes after the saved network; "
            f"the file is damaged or not a corenet checkpoint"
        )
    return obj


def load_network(filename, *, trusted: bool = False):
    """Unpickle a network from ``filename``; see the module docstring for what is admitted."""
    from corenet.network import NeuralNetwork

    source = str(filename)
    net = _unpickle(source, _read(source, filename), trusted)
    if not isinstance(net, NeuralNetwork):
        raise CheckpointError(f"{source}: holds a {type(net).__name__}, not a NeuralNetwork")
    version = net.__dict__.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: saved in checkpoint format {version!r}, this corenet reads format "
            f"{FORMAT_VERSION}; load and re-save it with the corenet version that wrote it"
        )
    missing = [name for name in ("layers", "loss", "optimizer", "loss_layer") if name not in net.__dict__]
    if missing or not isinstance(net.layers, list):
        raise CheckpointError(
            f"{source}: the saved network is incomplete (missing {', '.join(missing) or 'a list of layers'})"
        )
    return net
